"""The /v1 API against its own OpenAPI document, read from the running service: every answer here
is one the document lists for its route and method, 405s name the methods the document lists, and
what the document calls a valid preset or init image is accepted."""
import re

import pytest

from service_support import generate_body

ENVELOPE = {"code", "message", "details", "correlation_id"}


@pytest.fixture
def service(start_service):
    return start_service("--max-body-bytes", "65536")


@pytest.fixture
def document(service):
    response = service.get("/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def assert_listed(document, path, method, response):
    """The response's status is one the document lists for `method path`; errors are the
    envelope."""
    listed = document["paths"][path][method]["responses"]
    assert str(response.status_code) in listed, (method, path, response.status_code, response.text)
    if response.status_code >= 400:
        assert set(response.json()) == ENVELOPE, response.text
    return response


def generate_schema(document):
    body = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    return body["schema"]["oneOf"][0]["properties"]


def test_bad_signed_url_and_event_positions_are_documented_answers(service, document):
    for query in ({"expires": "soon", "sig": "x"}, {"expires": "-1", "sig": "x"},
                  {"expires": "1", "sig": "x"}, {}):
        response = service.get("/v1/files/dreamforge/a.png", params=query)
        assert_listed(document, "/v1/files/{key}", "get", response)
        if "DREAMFORGE_STORAGE_URL" not in service.env:  # with S3 every answer is 404
            assert response.status_code == (422 if query.get("expires") in ("soon", "-1") else 403)

    job = service.create_job(generate_body())
    events = f"/v1/jobs/{job['id']}/events"
    for headers, params in (({"Last-Event-ID": "abc"}, {}), ({}, {"after": "-5"}),
                            ({}, {"after": "x"})):
        response = service.get(events, headers=headers, params=params)
        assert assert_listed(document, "/v1/jobs/{id}/events", "get", response).status_code == 422
    missing = service.get("/v1/jobs/no-such-job/events")
    assert assert_listed(document, "/v1/jobs/{id}/events", "get", missing).status_code == 404


def test_an_idempotent_replay_is_a_documented_answer(service, document):
    headers = {"Idempotency-Key": "conformance"}
    created = service.post("/v1/jobs", generate_body(), headers=headers)
    assert assert_listed(document, "/v1/jobs", "post", created).status_code == 202
    replayed = service.post("/v1/jobs", generate_body(), headers=headers)
    assert assert_listed(document, "/v1/jobs", "post", replayed).status_code == 200
    assert replayed.json()["id"] == created.json()["id"]
    assert replayed.headers["Idempotent-Replayed"] == "true"
    replay = document["paths"]["/v1/jobs"]["post"]["responses"]["200"]
    assert "Idempotent-Replayed" in replay["headers"]
    other_body = service.post("/v1/jobs", generate_body(seed=1), headers=headers)
    assert assert_listed(document, "/v1/jobs", "post", other_body).status_code == 409


def test_canceling_a_finished_job_is_a_documented_answer(service, document):
    job = service.create_job(generate_body())
    service.wait_for_job(job["id"])
    finished = service.post(f"/v1/jobs/{job['id']}/cancel")
    assert assert_listed(document, "/v1/jobs/{id}/cancel", "post", finished).status_code == 200
    assert finished.json()["cancel"] == "already_finished"
    missing = service.post("/v1/jobs/no-such-job/cancel")
    assert assert_listed(document, "/v1/jobs/{id}/cancel", "post", missing).status_code == 404


def test_malformed_refused_and_oversized_bodies_are_documented_answers(service, document):
    as_json = {"Content-Type": "application/json"}
    malformed = service.post("/v1/jobs", data="{", headers=as_json)
    assert assert_listed(document, "/v1/jobs", "post", malformed).status_code == 400
    as_text = service.post("/v1/jobs", data='{"prompt": "x"}',
                           headers={"Content-Type": "text/plain"})
    assert assert_listed(document, "/v1/jobs", "post", as_text).status_code == 415
    oversized = service.post("/v1/jobs", data="{" + " " * 70000 + "}", headers=as_json)
    assert assert_listed(document, "/v1/jobs", "post", oversized).status_code == 413
    bad_limit = service.get("/v1/jobs", params={"limit": "0"})
    assert assert_listed(document, "/v1/jobs", "get", bad_limit).status_code == 422


def test_other_methods_get_405_naming_the_documented_ones(service, document):
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[a-z_]+\}", "x", path)
        documented = {method.upper() for method in operations}
        if "GET" in documented:
            documented.add("HEAD")
        for method in ("OPTIONS", "PUT", "DELETE", "PATCH", "POST", "GET"):
            if method in documented:
                continue
            response = service.http.request(method, service.url(concrete), timeout=30)
            assert response.status_code == 405, (method, path, response.status_code)
            assert response.json()["code"] == "method_not_allowed"
            allowed = {name.strip() for name in response.headers["Allow"].split(",")}
            assert allowed == documented, (method, path, response.headers["Allow"])


def test_presets_and_init_images_the_document_allows_are_accepted(service, document):
    properties = generate_schema(document)
    presets = properties["preset"]["enum"]
    pattern = properties["init_image"]["pattern"]
    assert properties["init_image"]["contentEncoding"] == "base64"

    # "0" is what the document now calls invalid, and the service refuses it.
    assert "0" not in presets and re.search(pattern, "0") is None
    for field in ("preset", "init_image"):
        refused = service.post("/v1/jobs", generate_body(**{field: "0"}))
        assert assert_listed(document, "/v1/jobs", "post", refused).status_code == 422
        assert refused.json()["details"]["fields"][0]["field"] == field

    example = properties["init_image"]["examples"][0]
    assert re.search(pattern, example)
    for preset in presets:
        body = generate_body(preset=preset, init_image=example, denoise=0.5)
        accepted = service.post("/v1/jobs", body)
        assert_listed(document, "/v1/jobs", "post", accepted)
        assert accepted.status_code == 202, accepted.text
    done = service.wait_for_job(accepted.json()["id"])
    assert done["status"] == "succeeded", done["error"]
