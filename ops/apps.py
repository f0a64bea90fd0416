from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: preparing the database and running the whole system on one machine."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from config.api.authentication import token_cache_connect

        token_cache_connect()
