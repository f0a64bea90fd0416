from django.urls import path

from runs import views

urlpatterns = [
    path("runs", views.RunListApi.as_view(), name="run-list"),
    path("runs/<str:run_id>", views.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<str:run_id>/steps", views.RunStepsApi.as_view(), name="run-steps"),
]
