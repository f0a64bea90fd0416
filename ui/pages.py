"""Project-wide pages: login/logout (Django's auth views in our layout). Error pages are
project plumbing: config/error_pages.py."""

from __future__ import annotations

from django.contrib.auth import views as auth_views


class LoginPage(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutPage(auth_views.LogoutView):
    """POST only (Django's rule): a link cannot log anyone out."""
