from django.urls import path

from dags import views

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
        "dag-executions/<str:execution_id>/sub-steps",
        views.ExecutionSubStepsApi.as_view(),
        name="execution-sub-steps",
    ),
]
