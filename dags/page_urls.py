"""The DAG pages (the API's routes are in dags/urls.py)."""

from django.urls import path

from dags import cost_pages, pages

app_name = "dags"

urlpatterns = [
    path("dags", pages.dag_list_page, name="list"),
    path("costs", cost_pages.costs_page, name="costs"),
    path("costs/export.csv", cost_pages.costs_csv, name="costs-csv"),
    path("dags/new", pages.new_dag_page, name="new"),
    path("dags/schedule-preview", pages.dag_schedule_preview, name="schedule-preview"),
    path("dags/<str:dag_id>", pages.dag_detail_page, name="detail"),
    path("dags/<str:dag_id>/execute", pages.dag_execute, name="execute"),
    path("dags/<str:dag_id>/schedule", pages.dag_schedule_save, name="schedule"),
    path("dags/<str:dag_id>/schedule/toggle", pages.dag_schedule_toggle, name="schedule-toggle"),
    path("dags/<str:dag_id>/delete", pages.dag_delete, name="delete"),
]
