from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import views
from ops import views as ops_views
from ui import pages

api_v1 = [
    path("", include([path("", views.ApiIndexApi.as_view(), name="api-index")])),
    path("", include("goals.urls")),
    path("", include("runs.urls")),
    path("", include("agents.urls")),
    path("", include("dags.urls")),
    path("", include("tools.urls")),
    path("", include("artifacts.urls")),
]

urlpatterns = [
    path("health", ops_views.HealthApi.as_view(), name="health"),
    path("health/ready", ops_views.ReadinessApi.as_view(), name="health-ready"),
    path("api/v1/", include(api_v1)),
    # JSON first, so that errors (401) are JSON too; `?format=yaml` for YAML.
    path(
        "api/schema/",
        SpectacularAPIView.as_view(renderer_classes=[OpenApiJsonRenderer, OpenApiYamlRenderer]),
        name="api-schema",
    ),
    path(
        "api/docs/",
        # The page and the schema describe the API and hold no data: anyone may read them and
        # then authorize with a token (any user's, not only staff).
        SpectacularSwaggerView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
    # The browser UI: pages of each app, served from the site root.
    path("login", pages.LoginPage.as_view(), name="login"),
    path("logout", pages.LogoutPage.as_view(), name="logout"),
    path("", include("ops.urls")),
    path("", include("dags.page_urls")),
    path("", include("dags.execution.page_urls")),
    path("", include("goals.page_urls")),
    path("", include("runs.page_urls")),
    path("", include("ops.agent_page_urls")),
    path("", include("ops.tool_page_urls")),
    path("", include("artifacts.page_urls")),
    # Everything else: 404, as JSON under /api/ and /health (the body clients expect), else a page.
    re_path(r"^(?!static/).*$", views.route_not_found),
]

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
