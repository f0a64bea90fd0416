"""The run pages (the API's routes are in runs/urls.py)."""

from django.urls import path

from runs import pages

app_name = "runs"

urlpatterns = [
    path("runs", pages.run_list_page, name="list"),
    path("runs/<str:run_id>", pages.run_detail_page, name="detail"),
    path("runs/<str:run_id>/live", pages.run_live_partial, name="live"),
    path("runs/<str:run_id>/steps/<int:step_no>", pages.run_step_partial, name="step"),
    path("runs/<str:run_id>/cancel", pages.run_cancel_action, name="cancel"),
]
