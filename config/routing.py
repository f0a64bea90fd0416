"""WebSocket routes. Apps add their consumers here (live execution and run events)."""

websocket_urlpatterns: list = []
