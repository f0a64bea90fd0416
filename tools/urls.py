# The tools API (`GET /api/v1/tools`) is added with the tool registry.
urlpatterns: list = []
