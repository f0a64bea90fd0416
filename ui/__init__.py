"""The browser UI's project-wide parts: template tags and filters, the dashboard, login and
error pages. Pages of each app live beside its API views (`dags/pages.py`, ...)."""
