from django.urls import path

from ops import dashboard, system

urlpatterns = [
    path("", dashboard.dashboard_page, name="dashboard"),
    path("dashboard/recent", dashboard.recent_executions_partial, name="dashboard-recent"),
    path("dashboard/readiness", dashboard.readiness_partial, name="dashboard-readiness"),
    path("system", system.system_page, name="system"),
    path("system/checks", system.system_checks_partial, name="system-checks"),
]
