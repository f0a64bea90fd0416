"""The artifacts pages (the API's routes are in artifacts/urls.py)."""

from django.urls import path

from artifacts import pages

app_name = "artifacts"

urlpatterns = [
    path("artifacts", pages.artifact_list_page, name="list"),
    path("artifacts/<path:name>", pages.artifact_page, name="file"),
]
