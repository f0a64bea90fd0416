from django.urls import path

from dags import event_views, views
from dags.execution import views as execution_views
from dags.planning import views as planning_views

urlpatterns = [
    path("dags", views.DagListApi.as_view(), name="dag-list"),
    path("dags/scheduled", views.ScheduledDagListApi.as_view(), name="dag-scheduled"),
    path("dags/<str:dag_id>", views.DagDetailApi.as_view(), name="dag-detail"),
    path("dags/<str:dag_id>/executions", views.DagExecutionsApi.as_view(), name="dag-executions"),
    path("dag/<str:dag_id>", views.DagDeleteAliasApi.as_view(), name="dag-delete-alias"),
    path("dag-executions", views.ExecutionListApi.as_view(), name="execution-list"),
    path(
        "dag-executions/<str:execution_id>",
        views.ExecutionDetailApi.as_view(),
        name="execution-detail",
    ),
    path(
        "dag-executions/<str:execution_id>/events",
        event_views.execution_events_stream,
        name="execution-events",
    ),
    path(
        "dag-executions/<str:execution_id>/sub-steps",
        views.ExecutionSubStepsApi.as_view(),
        name="execution-sub-steps",
    ),
    path("execute-dag", execution_views.ExecuteDagApi.as_view(), name="execute-dag"),
    path("dag-run", execution_views.DagRunApi.as_view(), name="dag-run"),
    path(
        "resume-dag/<str:execution_id>",
        execution_views.ResumeDagApi.as_view(),
        name="resume-dag",
    ),
    path(
        "dag-executions/<str:execution_id>/cancel",
        execution_views.CancelExecutionApi.as_view(),
        name="execution-cancel",
    ),
    path(
        "dag-executions/<str:execution_id>/costs",
        execution_views.ExecutionCostsApi.as_view(),
        name="execution-costs",
    ),
    path("dags/<str:dag_id>/costs", execution_views.DagCostsApi.as_view(), name="dag-costs"),
    path("costs/summary", execution_views.CostSummaryApi.as_view(), name="cost-summary"),
    path("create-dag", planning_views.CreateDagApi.as_view(), name="create-dag"),
    path(
        "create-and-execute-dag",
        planning_views.CreateAndExecuteDagApi.as_view(),
        name="create-and-execute-dag",
    ),
    path("dag-experiments", planning_views.DagExperimentsApi.as_view(), name="dag-experiments"),
]
