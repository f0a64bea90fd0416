"""The goal pages (the API's routes are in goals/urls.py)."""

from django.urls import path

from goals import pages

app_name = "goals"

urlpatterns = [
    path("goals", pages.goal_list_page, name="list"),
    path("goals/new", pages.goal_new_page, name="new"),
    path("goals/schedule-preview", pages.goal_schedule_preview, name="schedule-preview"),
    path("goals/<str:goal_id>", pages.goal_detail_page, name="detail"),
    path("goals/<str:goal_id>/edit", pages.goal_edit_page, name="edit"),
    path("goals/<str:goal_id>/run", pages.goal_run_action, name="run"),
    path("goals/<str:goal_id>/pause", pages.goal_pause_action, name="pause"),
    path("goals/<str:goal_id>/resume", pages.goal_resume_action, name="resume"),
    path("goals/<str:goal_id>/delete", pages.goal_delete_action, name="delete"),
]
