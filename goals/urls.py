from django.urls import path

from goals import views

urlpatterns = [
    path("goals", views.GoalListCreateApi.as_view(), name="goal-list"),
    path("goals/<str:goal_id>", views.GoalDetailApi.as_view(), name="goal-detail"),
    path("goals/<str:goal_id>/pause", views.GoalPauseApi.as_view(), name="goal-pause"),
    path("goals/<str:goal_id>/resume", views.GoalResumeApi.as_view(), name="goal-resume"),
    path("goals/<str:goal_id>/run", views.GoalRunApi.as_view(), name="goal-run"),
]
