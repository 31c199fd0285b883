"""The /v1 job API end to end: a real `dreamforge serve`, a tiny model, real HTTP clients."""
import base64
import concurrent.futures
import hashlib
import io
import json
import re
import time

import requests
from PIL import Image

from service_support import comfy_graph, generate_body


def test_batch_of_three_gives_three_artifacts_with_distinct_seeds_and_metadata(start_service):
    service = start_service()
    job = service.create_job(generate_body(count=3, seed=100))
    assert job["status"] == "queued" and job["count"] == 3
    done = service.wait_for_job(job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert [item["seed"] for item in done["items"]] == [100, 101, 102]
    assert all(item["status"] == "succeeded" and item["progress"] == 1 for item in done["items"])
    assert done["progress"] == 1
    step = done["steps"][0]
    assert step["status"] == "succeeded" and step["device"] == "cpu"
    assert step["memory_kind"] == "process_rss"
    assert step["peak_gpu_mem_used"] >= step["gpu_mem_used_before"] > 0

    listing = service.get(f"/v1/jobs/{job['id']}/artifacts").json()
    artifacts = listing["artifacts"]
    assert sorted(a["seed"] for a in artifacts) == [100, 101, 102]
    assert sorted(a["item_index"] for a in artifacts) == [0, 1, 2]
    assert len({a["key"] for a in artifacts}) == 3
    for artifact in artifacts:
        assert artifact["key"].startswith(f"dreamforge/default/jobs/{job['id']}/")
        assert artifact["key"].endswith(f"_{artifact['item_index']}_64x64_{artifact['seed']}.png")
        response = service.get(artifact["url"])
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
        image = Image.open(io.BytesIO(response.content))
        assert image.size == (64, 64)
        assert f"Seed: {artifact['seed']}" in image.text["parameters"]
        assert "a lighthouse at dusk" in image.text["parameters"]
        assert artifact["metadata"]["prompt"] == "a lighthouse at dusk"


def test_signed_urls_refuse_tampering_and_expire(start_service):
    service = start_service("--url-ttl", "1")
    job = service.create_job(generate_body())
    service.wait_for_job(job["id"])
    url = service.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"][0]["url"]
    on_service = url.startswith("/")  # else the object store's presigned URL
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    response = service.get(tampered)
    assert response.status_code == 403
    if on_service:
        assert response.json()["code"] == "forbidden"
    assert service.get(url.split("?")[0]).status_code == 403
    if on_service:
        assert service.get(url.replace("/jobs/", "/jobs/../")).status_code in (403, 404, 422)
    time.sleep(2.2)
    expired = service.get(url)
    assert expired.status_code == 403 and "expired" in expired.text


def test_event_stream_is_ordered_and_resumes_without_gaps_or_duplicates(start_service):
    service = start_service()
    job = service.create_job(generate_body(count=2, steps=4))
    first = service.events(job["id"], stop_after=5)  # then the connection drops
    rest = service.events(job["id"], last_event_id=first[-1][0])
    combined = first + rest
    whole = service.events(job["id"])  # the job is over: the whole history, then the end
    assert [e[0] for e in combined] == [e[0] for e in whole]
    ids = [e[0] for e in combined]
    assert ids == sorted(set(ids))
    assert combined[0][1] == "job_queued" and combined[-1][1] == "job_finished"
    assert combined[-1][2]["data"]["status"] == "succeeded"
    per_item = [e for e in combined if e[1] in ("item_started", "progress", "item_finished", "artifact")]
    assert {e[2]["item_index"] for e in per_item} == {0, 1}
    progress = [e[2]["progress"] for e in combined]
    assert progress == sorted(progress) and progress[-1] == 1
    steps = [e[2]["data"]["step"] for e in combined if e[1] == "progress" and e[2]["item_index"] == 0]
    assert steps == [1, 2, 3, 4]
    # "after" works like Last-Event-ID, and resuming after the end ends at once.
    assert service.events(job["id"], last_event_id=ids[-1]) == []


def test_idempotency_key_under_fifty_concurrent_posts_gives_one_job(start_service):
    service = start_service()
    body = generate_body(prompt="the same request fifty times")

    def post(_):
        return requests.post(service.url("/v1/jobs"), json=body, timeout=30,
                             headers={"Idempotency-Key": "retry-safe-1"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))
    assert sorted({r.status_code for r in responses}) in ([200, 202], [202])
    assert sum(r.status_code == 202 for r in responses) == 1
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in responses if r.status_code == 200)
    jobs = service.get("/v1/jobs?limit=200").json()["jobs"]
    assert len(jobs) == 1

    other = service.post("/v1/jobs", generate_body(prompt="something else"),
                         headers={"Idempotency-Key": "retry-safe-1"})
    assert other.status_code == 409
    assert other.json()["code"] == "conflict" and other.json()["details"]["job_id"] == jobs[0]["id"]


def test_cancel_running_and_queued_jobs(start_service):
    service = start_service()
    # Far more work than a fast machine gets through before the cancel is noticed (the worker
    # looks every 300 ms): the job is still running whatever the speed of the machine.
    running = service.create_job(generate_body(steps=150, count=100, prompt="long job"))
    queued = service.create_job(generate_body(prompt="waits behind the long job"))
    for _, kind, _ in service.iter_events(running["id"]):
        if kind == "progress":
            break
    canceled_queued = service.post(f"/v1/jobs/{queued['id']}/cancel")
    assert canceled_queued.status_code == 202 and canceled_queued.json()["status"] == "canceled"
    response = service.post(f"/v1/jobs/{running['id']}/cancel")
    assert response.status_code == 202 and response.json()["cancel"] == "requested"
    done = service.wait_for_job(running["id"], timeout=60)
    assert done["status"] == "canceled" and done["error"]["code"] == "canceled"
    stopped = next((item for item in done["items"] if item["status"] != "succeeded"), None)
    assert stopped and stopped["status"] == "canceled" and stopped["step"] < 150  # mid-image
    last = service.events(running["id"])[-1]
    assert last[1] == "job_finished" and last[2]["data"]["status"] == "canceled"
    assert service.get(f"/v1/jobs/{queued['id']}").json()["status"] == "canceled"
    again = service.post(f"/v1/jobs/{running['id']}/cancel")
    assert again.status_code == 200 and again.json()["cancel"] == "already_finished"
    # The worker carries on with new work after a cancel.
    after = service.create_job(generate_body(prompt="after the cancel"))
    assert service.wait_for_job(after["id"])["status"] == "succeeded"


def test_list_filters_and_paginates_newest_first(start_service):
    service = start_service()
    ids = []
    for i in range(5):
        job = service.create_job(generate_body(prompt=f"job {i}"))
        service.post(f"/v1/jobs/{job['id']}/cancel")
        ids.append(job["id"])
    seen, cursor = [], None
    while True:
        page = service.get("/v1/jobs?limit=2" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Newest first by creation time; jobs created within the same millisecond (a fast machine) are
    # in the order of their ids, which are random below the millisecond.
    created = {i: service.get(f"/v1/jobs/{i}").json()["created_at"] for i in ids}
    assert seen == sorted(ids, key=lambda i: (created[i], i), reverse=True)
    canceled = service.get("/v1/jobs?status=canceled&limit=200").json()["jobs"]
    assert {j["id"] for j in canceled} <= set(ids)
    bad = service.get("/v1/jobs?status=sleeping")
    assert bad.status_code == 422 and bad.json()["details"]["fields"][0]["field"] == "status"


def test_models_list_and_detail_with_parameters_schema(start_service):
    service = start_service()
    models = service.get("/v1/models").json()["models"]
    assert [m["id"] for m in models] == ["tiny"]
    detail = service.get("/v1/models/tiny").json()
    assert detail["family"] == "sd1" and detail["test_model"] is True
    schema = detail["parameters_schema"]
    assert schema["properties"]["count"]["maximum"] == 100
    assert schema["properties"]["width"]["multipleOf"] == 8
    assert "euler" in schema["properties"]["sampler"]["enum"]
    missing = service.get("/v1/models/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_bad_requests_get_envelopes_and_the_server_keeps_serving(start_service):
    service = start_service("--max-body-bytes", "20000")
    headers = {"X-Request-ID": "trace-123", "Content-Type": "application/json"}
    response = service.post("/v1/jobs", data="{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request" and response.json()["correlation_id"] == "trace-123"
    assert response.headers["X-Request-ID"] == "trace-123"

    response = service.post("/v1/jobs", generate_body(width="wide", steps=0, count=101, colour="red"))
    assert response.status_code == 422
    envelope = response.json()
    assert envelope["code"] == "validation" and envelope["correlation_id"]
    fields = {f["field"] for f in envelope["details"]["fields"]}
    assert fields == {"width", "steps", "count", "colour"}

    assert service.post("/v1/jobs", generate_body(width=100)).json()["details"]["fields"][0]["field"] == "width"
    unknown_model = service.post("/v1/jobs", generate_body(model_id="no-such-model"))
    assert unknown_model.status_code == 422 and unknown_model.json()["code"] == "model_not_found"
    assert service.post("/v1/jobs", generate_body(denoise=0.5)).status_code == 422
    assert service.post("/v1/jobs", generate_body(init_image="not base64!")).status_code == 422
    assert service.post("/v1/jobs", [1, 2]).status_code == 422

    oversize = service.post("/v1/jobs", generate_body(prompt="x" * 30000))
    assert oversize.status_code == 413 and oversize.json()["code"] == "payload_too_large"
    huge_header = service.get("/v1/jobs", headers={"X-Padding": "y" * 20000})
    assert huge_header.status_code == 431
    not_found = service.get("/v1/nothing-here")
    assert not_found.status_code == 404 and not_found.json()["code"] == "not_found"
    wrong_method = service.http.delete(service.url("/v1/jobs"))
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"
    assert service.get("/v1/jobs/does-not-exist").status_code == 404

    assert service.get("/healthz").json()["status"] == "ok"
    job = service.create_job(generate_body())
    assert service.wait_for_job(job["id"])["status"] == "succeeded"


def test_image_to_image_job_from_a_base64_init_image(start_service):
    service = start_service()
    buffer = io.BytesIO()
    Image.new("RGB", (80, 48), (200, 40, 40)).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    job = service.create_job(generate_body(init_image="data:image/png;base64," + encoded, denoise=0.6,
                                           width=64, height=64, format="jpeg"))
    assert "init_image" not in job["spec"] and job["spec"]["denoise"] == 0.6
    done = service.wait_for_job(job["id"])
    assert done["status"] == "succeeded", done["error"]
    artifact = service.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"][0]
    assert artifact["content_type"] == "image/jpeg"
    image = Image.open(io.BytesIO(service.get(artifact["url"]).content))
    assert image.format == "JPEG" and image.size == (64, 64)


def test_workflow_jobs_run_comfyui_graphs_and_report_node_errors(start_service):
    service = start_service()
    job = service.create_job({"type": "workflow", "workflow": comfy_graph(seed=77), "count": 2})
    done = service.wait_for_job(job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert [i["seed"] for i in done["items"]] == [77, 78]
    artifacts = service.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"]
    assert sorted(a["seed"] for a in artifacts) == [77, 78]
    assert all("/9/" in a["key"] for a in artifacts)

    broken = comfy_graph(ckpt="missing-model")
    response = service.post("/v1/jobs", {"type": "workflow", "workflow": broken})
    assert response.status_code == 422
    details = response.json()["details"]
    assert "4" in details["node_errors"]
    assert details["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"


def test_logs_progress_readiness_metrics_and_openapi(start_service):
    service = start_service()
    job = service.create_job(generate_body(count=2))
    service.wait_for_job(job["id"])
    answer = service.get(f"/v1/jobs/{job['id']}/logs")
    assert answer.headers["Content-Type"].startswith("application/x-ndjson")
    logs = [json.loads(line) for line in answer.text.splitlines()]
    kinds = [line["type"] for line in logs if "type" in line]
    assert kinds[0] == "job_queued" and kinds[-1] == "job_finished" and "progress" not in kinds
    progress = service.get(f"/v1/jobs/{job['id']}/progress").json()
    assert progress["progress"] == 1 and len(progress["items"]) == 2

    ready = service.get("/readyz")
    assert ready.status_code == 200
    passed = {name for name, check in ready.json()["checks"].items() if check["ok"]}
    assert passed == {"database", "queue", "storage", "runner", "devices"}

    metrics = service.get("/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.text
    assert 'dreamforge_jobs{status="succeeded"} 1' in text
    assert "dreamforge_queue_depth 0" in text
    assert 'dreamforge_jobs_finished_total{status="succeeded"} 1' in text
    assert 'dreamforge_batch_items_total{status="succeeded"} 2' in text
    assert 'dreamforge_runner_memory_bytes{device="cpu",phase="peak"}' in text
    assert "dreamforge_job_duration_seconds_bucket" in text
    assert "dreamforge_http_requests_total{" in text

    document = service.get("/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    for path, method in [("/v1/jobs", "post"), ("/v1/jobs", "get"), ("/v1/jobs/{id}", "get"),
                         ("/v1/jobs/{id}/events", "get"), ("/v1/jobs/{id}/cancel", "post"),
                         ("/v1/jobs/{id}/artifacts", "get"), ("/v1/jobs/{id}/logs", "get"),
                         ("/v1/jobs/{id}/progress", "get"), ("/v1/models", "get"),
                         ("/v1/models/{id}", "get"), ("/healthz", "get"), ("/readyz", "get"),
                         ("/metrics", "get")]:
        assert method in document["paths"][path], (path, method)


def test_api_and_worker_as_separate_processes(start_service, tmp_path):
    worker = start_service(command="worker")
    api = start_service(command="api", model=False)
    job = api.create_job(generate_body(count=2))
    events = api.events(job["id"])
    assert events[-1][1] == "job_finished" and events[-1][2]["data"]["status"] == "succeeded"
    assert len(api.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"]) == 2
    assert "runner" not in api.get("/readyz").json()["checks"]
    assert worker.process.poll() is None
    if "DREAMFORGE_DATABASE_URL" in api.env:
        # On PostgreSQL the worker's events reach the API as the database's news (LISTEN/NOTIFY).
        news = re.search(r"^dreamforge_database_news_total (\d+)", api.get("/metrics").text, re.M)
        assert news and int(news.group(1)) > 0
