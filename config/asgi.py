"""ASGI entry point served by daphne: HTTP goes to Django, WebSockets to Channels consumers."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.asgi_http import http_application

# Django must be set up before anything imports models (consumers, routing).
django_http_app = http_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from config.heap import freeze_startup_objects  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Import every view now rather than on the first request, then keep what start-up made out of
# the collector's full passes (see config.heap).
get_resolver().url_patterns  # noqa: B018
freeze_startup_objects()
