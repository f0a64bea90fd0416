from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import views

api_v1 = [
    path("", include("goals.urls")),
    path("", include("runs.urls")),
    path("", include("agents.urls")),
    path("", include("dags.urls")),
    path("", include("tools.urls")),
    path("", include("artifacts.urls")),
]

urlpatterns = [
    path("health", views.HealthApi.as_view(), name="health"),
    path("health/ready", views.ReadinessApi.as_view(), name="health-ready"),
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
    # Everything else: the original's JSON 404 (never a redirect or an HTML page).
    re_path(r"^(?!static/).*$", views.route_not_found),
]

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.route_not_found"
handler500 = "config.views.server_error"
