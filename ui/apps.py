from django.apps import AppConfig


class UiConfig(AppConfig):
    """The browser UI's shared parts: layout filters, dashboard, list controls, error pages."""

    name = "ui"
    verbose_name = "Browser UI"
