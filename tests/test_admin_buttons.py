"""Buttons on the admin's change pages: POST with CSRF, the same services as the API, a real
worker behind them, and messages that keep ids as they are."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from config.admin_tools import admin_url
from dags.models import Dag, DagExecution
from tests.factories import AgentFactory, DagExecutionFactory, DagFactory, UserFactory
from tests.fakes.openai_server import ChatReply


def button_url(model, obj, name: str) -> str:
    return admin_url(model, "change", obj.pk).replace("/change/", f"/press/{name}/")


@pytest.fixture
def root(db) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def csrf_post(client: Client, page: str, url: str):
    """Load the change page (as a browser does), then POST its button with the page's token."""
    page_response = client.get(page)
    assert page_response.status_code == 200
    token = page_response.cookies["csrftoken"].value
    return client.post(url, {"csrfmiddlewaretoken": token}, follow=True)


@pytest.mark.django_db(transaction=True)
def test_execute_button_runs_the_dag_on_a_worker(root, fake_llm, celery_worker_thread):
    AgentFactory(name="InferenceAgent", prompt_template="Answer.", active=True)
    fake_llm.responder = lambda request: ChatReply(content="done", cost=0.001)
    dag = DagFactory()
    page = admin_url(Dag, "change", dag.pk)

    assert "Execute now" in root.get(page).content.decode()
    response = csrf_post(root, page, button_url(Dag, dag, "execute"))

    execution = DagExecution.objects.get(dag=dag)
    assert f"Execution {execution.id} of DAG {dag.id} started." in response.content.decode()
    deadline = time.monotonic() + 30
    while execution.status != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
        execution.refresh_from_db()
    assert execution.status == "completed"


def test_cancel_then_resume_buttons_follow_the_status(root, monkeypatch):
    from dags.execution import dispatch

    # No worker in this test: the resumed nodes' queue messages are not sent.
    monkeypatch.setattr(dispatch, "nodes_send", lambda ids, suffix: None)
    execution = DagExecutionFactory(status="running")
    page = admin_url(DagExecution, "change", execution.pk)
    html = root.get(page).content.decode()
    assert ">Cancel</button>" in html and ">Resume</button>" not in html

    response = csrf_post(root, page, button_url(DagExecution, execution, "cancel"))

    execution.refresh_from_db()
    assert execution.status == "cancelled"
    text = response.content.decode()
    assert f"Execution {execution.id} cancelled." in text  # the id keeps its lower case
    assert ">Resume</button>" in text and ">Cancel</button>" not in text

    response = csrf_post(root, page, button_url(DagExecution, execution, "resume"))
    execution.refresh_from_db()
    assert execution.status == "running"
    assert f"Execution {execution.id} resumed (retry 1)." in response.content.decode()

    refused = csrf_post(root, page, button_url(DagExecution, execution, "resume"))
    assert "Cannot resume execution with status &#x27;running&#x27;" in refused.content.decode()


def test_buttons_need_post_csrf_and_the_change_permission(db):
    execution = DagExecutionFactory(status="running")
    url = button_url(DagExecution, execution, "cancel")
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_dagexecution"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)

    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no CSRF token
    page = client.get(admin_url(DagExecution, "change", execution.pk))
    assert page.status_code == 200 and ">Cancel</button>" not in page.content.decode()
    token = page.cookies["csrftoken"].value
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 403
    execution.refresh_from_db()
    assert execution.status == "running"


def test_the_execution_list_dag_column_has_a_header_and_sorts(root, db):
    DagExecutionFactory(dag=DagFactory(dag_title="Beta"))
    DagExecutionFactory(dag=DagFactory(dag_title="Alpha"))
    listing = admin_url(DagExecution, "changelist")

    html = root.get(listing).content.decode()
    assert "DAG LINK" not in html.upper().replace("DAG_LINK", "")
    index = html.index(">DAG<")
    assert "sortable" in html[index - 400 : index]
    ordered = root.get(listing + "?o=2").content.decode()
    assert ordered.index("Alpha") < ordered.index("Beta")
