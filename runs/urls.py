from django.urls import path

from runs import event_views, views

urlpatterns = [
    path("runs", views.RunListApi.as_view(), name="run-list"),
    path("runs/<str:run_id>", views.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<str:run_id>/steps", views.RunStepsApi.as_view(), name="run-steps"),
    path("runs/<str:run_id>/events", event_views.run_events_stream, name="run-events"),
    path("runs/<str:run_id>/outputs", views.RunOutputsApi.as_view(), name="run-outputs"),
]
