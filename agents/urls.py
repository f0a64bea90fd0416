from django.urls import path

from agents import views
from agents.task.views import TaskApi

urlpatterns = [
    path("agents", views.AgentListCreateApi.as_view(), name="agent-list"),
    path("agents/resolve/<str:name>", views.AgentResolveApi.as_view(), name="agent-resolve"),
    path("agents/<str:agent_id>", views.AgentDetailApi.as_view(), name="agent-detail"),
    path(
        "agents/<str:agent_id>/activate",
        views.AgentActivateApi.as_view(),
        name="agent-activate",
    ),
    path("task", TaskApi.as_view(), name="task"),
]
