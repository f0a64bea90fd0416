"""The agent pages and the task page (the API's routes are in agents/urls.py)."""

from django.urls import path

from ops import agent_pages as pages
from ops import task_pages

app_name = "agents"

urlpatterns = [
    path("agents", pages.agent_list_page, name="list"),
    path("agents/new", pages.agent_new_page, name="new"),
    path("agents/prompt-preview", pages.agent_prompt_preview, name="prompt-preview"),
    path("agents/<str:agent_id>", pages.agent_detail_page, name="detail"),
    path("agents/<str:agent_id>/edit", pages.agent_edit_page, name="edit"),
    path("agents/<str:agent_id>/activate", pages.agent_activate, name="activate"),
    path("agents/<str:agent_id>/delete", pages.agent_delete, name="delete"),
    path("agents/<str:agent_id>/test", pages.agent_test, name="test"),
    path("task", task_pages.task_page, name="task"),
    path("task/new", task_pages.task_reset, name="task-reset"),
    path("task/download", task_pages.task_download, name="task-download"),
]
