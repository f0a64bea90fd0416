"""Project package: settings, URLs, ASGI/Celery entry points and the API plumbing."""

from config.celery import app as celery_app

__all__ = ("celery_app",)
