import pytest
from rest_framework.test import APIClient

from tests.factories import TokenFactory, UserFactory


@pytest.fixture
def api(db) -> APIClient:
    """A staff client: files put in the folder by hand have no record, so only staff see them
    (the ownership tests use their own clients)."""
    staff = UserFactory(username="operator", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=staff).key}")
    return client
