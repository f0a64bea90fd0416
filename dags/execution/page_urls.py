"""The execution pages (the API's routes are in dags/urls.py)."""

from django.urls import path

from dags.execution import pages

app_name = "executions"

urlpatterns = [
    path("executions", pages.execution_list_page, name="list"),
    path("executions/<str:execution_id>", pages.execution_detail_page, name="detail"),
    path("executions/<str:execution_id>/live", pages.execution_live_partial, name="live"),
    path(
        "executions/<str:execution_id>/steps/<str:task_id>",
        pages.execution_step_partial,
        name="step",
    ),
    path(
        "executions/<str:execution_id>/artifacts/<path:name>",
        pages.execution_artifact_page,
        name="artifact",
    ),
    path("executions/<str:execution_id>/resume", pages.execution_resume_action, name="resume"),
    path("executions/<str:execution_id>/cancel", pages.execution_cancel_action, name="cancel"),
    path("executions/<str:execution_id>/rerun", pages.execution_rerun_action, name="rerun"),
    path("executions/<str:execution_id>/delete", pages.execution_delete_action, name="delete"),
]
