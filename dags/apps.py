from django.apps import AppConfig


class DagsConfig(AppConfig):
    name = "dags"
    verbose_name = "DAGs"
