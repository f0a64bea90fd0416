from django.urls import path

from artifacts import views

urlpatterns = [
    path("artifacts", views.ArtifactListApi.as_view(), name="artifact-list"),
    path("artifacts/<path:name>", views.ArtifactDetailApi.as_view(), name="artifact-detail"),
]
