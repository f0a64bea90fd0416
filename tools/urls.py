from django.urls import path

from tools import views

urlpatterns = [
    path("tools", views.ToolListApi.as_view(), name="tool-list"),
]
