"""POST /api/v1/task: multipart prompt + files to an agent, through the chat-completions fake."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.seeding import agents_seed, default_agent
from agents.tests.llm_helpers import fast_retries, text_pdf
from tests.factories import AgentFactory
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db

URL = "/api/v1/task"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(autouse=True)
def _setup(settings, db):
    fast_retries(settings, retries=0)
    agents_seed()


def _text_file(name: str = "notes.txt", text: str = "Ünïcode notes: the quick brown fox."):
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/plain")


def _post(api, **data):
    return api.post(URL, data=data, format="multipart")


def test_paraphrase_with_a_text_and_a_pdf_file(api, fake_llm):
    fake_llm.enqueue(
        ChatReply(content="A fox, quick and brown.", prompt_tokens=40, completion_tokens=8)
    )
    pdf = SimpleUploadedFile(
        "report.pdf", text_pdf("Quarterly revenue rose 12 percent."), "application/pdf"
    )

    response = api.post(
        URL,
        data={
            "taskName": "ParaphrasePro",
            "prompt": "Paraphrase these.",
            "params": json.dumps({"temperature": 0.3, "max_tokens": 500}),
            "file": _text_file(),
            "attachment": pdf,
        },
        format="multipart",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert list(body) == [
        "taskName",
        "agentName",
        "agentVersion",
        "inputFiles",
        "response",
        "usage",
        "params",
        "costUsd",
    ]
    assert body["taskName"] == "ParaphrasePro"
    assert (body["agentName"], body["agentVersion"]) == ("ParaphrasePro", "1.0.0")
    assert sorted(body["inputFiles"], key=lambda f: f["filename"]) == [
        {"filename": "notes.txt", "mimeType": "text/plain"},
        {"filename": "report.pdf", "mimeType": "application/pdf"},
    ]
    assert body["response"] == "A fox, quick and brown."
    assert body["usage"] == {"promptTokens": 40, "completionTokens": 8, "totalTokens": 48}
    assert body["params"] == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "max_tokens": 500,
        "temperature": 0.3,
        "reasoning_effort": "medium",
    }
    # 40 x 0.15 + 8 x 0.60 USD per million tokens.
    assert body["costUsd"] == "0.0000108"

    request = fake_llm.requests[0]
    system, user = request["messages"]
    assert system == {
        "role": "system",
        "content": default_agent("ParaphrasePro").prompt_template,
    }
    assert user["role"] == "user"
    assert user["content"].startswith("Paraphrase these.")
    # The decoded text reached the model, not base64.
    assert "--- File: notes.txt ---\nÜnïcode notes: the quick brown fox." in user["content"]
    assert "--- File: report.pdf ---\nQuarterly revenue rose 12 percent." in user["content"]
    assert (request["temperature"], request["max_tokens"]) == (0.3, 500)


def test_defaults_are_used_and_echoed(api, fake_llm, settings):
    settings.DEFAULT_MAX_TOKENS = 4321
    settings.DEFAULT_TEMPERATURE = 0.6
    settings.DEFAULT_REASONING_EFFORT = "low"

    response = _post(api, taskName="InferenceAgent", prompt="Hello")

    assert response.status_code == 200, response.content
    assert response.json()["params"] == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "max_tokens": 4321,
        "temperature": 0.6,
        "reasoning_effort": "low",
    }
    assert response.json()["inputFiles"] == []
    assert fake_llm.requests[0]["messages"][1]["content"] == "Hello"


def test_images_are_sent_as_image_parts(api, fake_llm):
    image = SimpleUploadedFile("dot.png", PNG, content_type="image/png")

    response = _post(api, taskName="InferenceAgent", prompt="Describe", files=[image, _text_file()])

    assert response.status_code == 200, response.content
    content = fake_llm.requests[0]["messages"][1]["content"]
    assert content[0]["type"] == "text"
    assert content[0]["text"].startswith("Describe\n\n--- File: notes.txt ---")
    assert content[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }
    assert {"filename": "dot.png", "mimeType": "image/png"} in response.json()["inputFiles"]


def test_images_are_left_out_for_a_provider_without_image_input(api, fake_llm, settings):
    settings.OLLAMA_BASE_URL = fake_llm.base_url
    AgentFactory(name="LocalVision", provider="ollama", model="llava:7b", active=True)
    image = SimpleUploadedFile("dot.png", PNG, content_type="image/png")

    response = _post(api, taskName="LocalVision", prompt="Describe", file=image)

    assert response.status_code == 200, response.content
    content = fake_llm.requests[0]["messages"][1]["content"]
    assert isinstance(content, str)
    assert "dot.png" in content and "takes no images" in content
    assert response.json()["params"]["provider"] == "ollama"
    assert response.json()["costUsd"] == "0"


def test_agent_template_placeholders_are_rendered(api, fake_llm):
    AgentFactory(name="Dated", prompt_template="Today is {{currentDate}}.", active=True)

    assert _post(api, taskName="Dated", prompt="Hi").status_code == 200

    assert fake_llm.requests[0]["messages"][0]["content"].startswith("Today is 20")


# --- errors -----------------------------------------------------------------------------------
def test_a_url_encoded_form_is_accepted(api, fake_llm):
    fake_llm.enqueue(ChatReply(content="Rephrased."))
    body = (
        "taskName=ParaphrasePro&prompt=Say+it+%C3%BCnother+way.&params=%7B%22max_tokens%22%3A+77%7D"
    )

    response = api.generic(
        "POST", URL, body, content_type="application/x-www-form-urlencoded; charset=utf-8"
    )

    assert response.status_code == 200, response.content
    assert response.json()["response"] == "Rephrased."
    assert response.json()["inputFiles"] == []
    request = fake_llm.requests[0]
    assert request["max_tokens"] == 77
    assert request["messages"][-1]["content"].startswith("Say it ünother way.")


@pytest.mark.parametrize("params", [{"temperature": 0.25}, json.dumps({"temperature": 0.25})])
def test_a_json_body_is_accepted_with_params_as_object_or_text(api, fake_llm, params):
    fake_llm.enqueue(ChatReply(content="Done."))

    response = api.post(
        URL, data={"taskName": "InferenceAgent", "prompt": "Hello", "params": params}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["params"]["temperature"] == 0.25
    assert fake_llm.requests[0]["temperature"] == 0.25


@pytest.mark.parametrize(
    "data",
    [
        {"taskName": 5, "prompt": "x"},
        {"taskName": "InferenceAgent", "prompt": ["x"]},
        ["taskName", "prompt"],
    ],
)
def test_a_json_body_with_fields_that_are_not_text_is_400(api, fake_llm, data):
    response = api.post(URL, data=data, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": "taskName and prompt are required fields"}
    assert fake_llm.call_count == 0


def test_json_params_that_are_not_an_object_are_400(api, fake_llm):
    response = api.post(
        URL, data={"taskName": "InferenceAgent", "prompt": "x", "params": [1]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["validation_errors"][0]["message"] == "params must be a JSON object"


def test_an_oversized_url_encoded_form_is_413(api, fake_llm, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api.generic(
        "POST",
        URL,
        "taskName=ParaphrasePro&prompt=" + "p" * 5000,
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 413
    assert "form fields" in response.json()["error"]
    assert fake_llm.call_count == 0


def test_another_body_type_is_415(api, fake_llm):
    response = api.generic("POST", URL, "taskName=x", content_type="text/plain")

    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["message"]
    assert fake_llm.call_count == 0


@pytest.mark.parametrize(
    "data",
    [
        {"prompt": "x"},
        {"taskName": "ParaphrasePro"},
        {"taskName": "", "prompt": "x"},
        {"taskName": "ParaphrasePro", "prompt": "   "},
    ],
)
def test_missing_fields_are_400(api, fake_llm, data):
    response = _post(api, **data)

    assert response.status_code == 400
    assert response.json() == {"error": "taskName and prompt are required fields"}
    assert fake_llm.call_count == 0


def test_params_that_are_not_json_are_400(api, fake_llm):
    response = _post(api, taskName="ParaphrasePro", prompt="x", params="{max_tokens: 5")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Validation error"
    assert body["details"][0]["path"] == ["params"]
    assert "not valid JSON" in body["details"][0]["message"]
    assert body["validation_errors"] == body["details"]
    assert fake_llm.call_count == 0


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"temperature": 2.5}, ["temperature"]),
        ({"temperature": "hot"}, ["temperature"]),
        ({"max_tokens": 0}, ["max_tokens"]),
        ({"max_tokens": 1.5}, ["max_tokens"]),
        ({"max_tokens": True}, ["max_tokens"]),
        ({"reasoning_effort": "extreme"}, ["reasoning_effort"]),
        (["not", "an", "object"], []),
    ],
)
def test_bad_param_values_are_400(api, fake_llm, params, path):
    response = _post(api, taskName="ParaphrasePro", prompt="x", params=json.dumps(params))

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Validation error"
    assert [issue["path"] for issue in body["details"]] == [path]
    assert body["validation_errors"] == body["details"]
    assert fake_llm.call_count == 0


def test_unknown_agent_is_404(api, fake_llm):
    response = _post(api, taskName="NoSuchAgent", prompt="x")

    assert response.status_code == 404
    assert response.json() == {"error": "No active agent found with name: NoSuchAgent"}


def test_inactive_agent_is_404(api, fake_llm):
    AgentFactory(name="Sleeping", active=False)

    response = _post(api, taskName="Sleeping", prompt="x")

    assert response.status_code == 404
    assert response.json() == {"error": "No active agent found with name: Sleeping"}


def test_provider_failure_is_502_with_the_providers_message(api, fake_llm):
    fake_llm.enqueue(ChatReply(status=500, error_message="upstream model crashed"))

    response = _post(api, taskName="ParaphrasePro", prompt="x")

    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "Task execution failed"
    assert "upstream model crashed" in body["message"]
    assert "openai" in body["message"] and "gpt-4o-mini" in body["message"]


def test_rejected_key_is_502(api, fake_llm):
    fake_llm.enqueue(ChatReply(status=401, error_message="Incorrect API key provided"))

    response = _post(api, taskName="ParaphrasePro", prompt="x")

    assert response.status_code == 502
    assert "Incorrect API key provided" in response.json()["message"]
    assert fake_llm.call_count == 1


def test_missing_key_is_503(api, fake_llm, settings):
    settings.OPENAI_API_KEY = ""

    response = _post(api, taskName="ParaphrasePro", prompt="x")

    assert response.status_code == 503
    assert response.json()["error"] == "Task execution failed"
    assert "OPENAI_API_KEY" in response.json()["message"]


def test_a_file_over_the_per_file_limit_is_413(api, fake_llm, settings):
    settings.TASK_MAX_FILE_BYTES = 1000
    big = SimpleUploadedFile("big.txt", b"x" * 1500, content_type="text/plain")

    response = _post(api, taskName="ParaphrasePro", prompt="x", file=big)

    assert response.status_code == 413
    assert response.json()["error"] == (
        "The file 'big.txt' is larger than the limit of 1000 bytes per file"
    )
    assert response.json()["limitBytes"] == 1000
    assert fake_llm.call_count == 0


def test_a_request_over_the_total_limit_is_413(api, fake_llm, settings):
    settings.TASK_MAX_REQUEST_BYTES = 4 * 1024
    files = [
        SimpleUploadedFile(f"part{i}.txt", b"y" * 3000, content_type="text/plain") for i in range(2)
    ]

    response = _post(api, taskName="ParaphrasePro", prompt="x", files=files)

    assert response.status_code == 413
    assert "limit of 4 KiB" in response.json()["error"]
    assert fake_llm.call_count == 0


def test_files_over_the_total_limit_are_413_without_a_content_length(settings):
    # The handler counts bytes itself too, for bodies whose length is not declared.
    from agents.task.views import TaskUploadLimits
    from config.api.exceptions import ApiError

    settings.TASK_MAX_REQUEST_BYTES = 100
    settings.TASK_MAX_FILE_BYTES = 100
    limits = TaskUploadLimits()
    limits.handle_raw_input(None, {}, 0, b"b")
    for name in ("a.txt", "b.txt"):
        limits.new_file("file", name, "text/plain", None)
        if name == "a.txt":
            limits.receive_data_chunk(b"z" * 60, 0)
    with pytest.raises(ApiError) as caught:
        limits.receive_data_chunk(b"z" * 60, 0)
    assert caught.value.status_code == 413
    assert "per request" in caught.value.body["error"]


def test_too_many_files_is_413(api, fake_llm, settings):
    settings.TASK_MAX_FILES = 2
    files = [_text_file(f"n{i}.txt") for i in range(3)]

    response = _post(api, taskName="ParaphrasePro", prompt="x", files=files)

    assert response.status_code == 413
    assert response.json()["error"] == "Too many files: at most 2 per request"


def test_oversized_form_fields_are_413(api, fake_llm, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = _post(api, taskName="ParaphrasePro", prompt="p" * 5000)

    assert response.status_code == 413
    assert "form fields" in response.json()["error"]


def test_unsupported_binary_file_is_400(api, fake_llm):
    blob = SimpleUploadedFile("archive.zip", b"PK\x03\x04\x00\x00\xff\xfe" * 20, "application/zip")

    response = _post(api, taskName="ParaphrasePro", prompt="x", file=blob)

    assert response.status_code == 400
    assert "Unsupported attachment 'archive.zip'" in response.json()["error"]
    assert fake_llm.call_count == 0


def test_damaged_pdf_is_400(api, fake_llm):
    broken = SimpleUploadedFile("broken.pdf", b"%PDF-1.4\nthis is not a pdf", "application/pdf")

    response = _post(api, taskName="ParaphrasePro", prompt="x", file=broken)

    assert response.status_code == 400
    assert "Could not read the PDF 'broken.pdf'" in response.json()["error"]


def test_fake_image_is_400(api, fake_llm):
    fake = SimpleUploadedFile("photo.jpg", b"\x00\x01 not really a jpeg", "image/jpeg")

    response = _post(api, taskName="ParaphrasePro", prompt="x", file=fake)

    assert response.status_code == 400
    assert "photo.jpg" in response.json()["error"]


def test_authentication_is_required(anon_client, fake_llm):
    response = anon_client.post(URL, data={"taskName": "ParaphrasePro", "prompt": "x"})

    assert response.status_code == 401
    assert fake_llm.call_count == 0


def test_a_file_above_djangos_in_memory_size_is_accepted(api, fake_llm, settings):
    # Files over FILE_UPLOAD_MAX_MEMORY_SIZE are spooled to disk, and file parts never count
    # toward DATA_UPLOAD_MAX_MEMORY_SIZE: a 3 MiB file is fine under the default limits.
    line = "All work and no play makes a long document.\n"
    text = line * (3 * 1024 * 1024 // len(line) + 1)
    assert len(text) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    assert len(text) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = _post(api, taskName="ParaphrasePro", prompt="x", file=_text_file("long.txt", text))

    assert response.status_code == 200, response.content
    assert fake_llm.requests[0]["messages"][1]["content"].endswith(text)


def test_default_per_file_limit_is_10_mib(api, fake_llm):
    big = SimpleUploadedFile("huge.txt", b"a" * (10 * 1024 * 1024 + 1), content_type="text/plain")

    response = _post(api, taskName="ParaphrasePro", prompt="x", file=big)

    assert response.status_code == 413
    assert response.json()["error"] == (
        "The file 'huge.txt' is larger than the limit of 10 MiB per file"
    )
