"""The tools page (the API's routes are in tools/urls.py)."""

from django.urls import path

from ops import tool_pages as pages

app_name = "tools"

urlpatterns = [
    path("tools", pages.tool_list_page, name="list"),
]
