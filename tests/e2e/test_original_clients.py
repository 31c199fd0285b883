"""Clients written against the original Dream Forge API (the FastAPI service of the design
documents) work unchanged: the client below is written from that API's contract alone, and runs a
job, follows it, reads its log, progress and artifacts, and lists models."""
import json
import re
import time

import requests

from e2e_support import run_dreamforge
from service_support import failing_graph, generate_body

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class OriginalClient:
    """What a client of the original API does, and nothing of Dream Forge's own shapes."""

    def __init__(self, base_url):
        self.base = base_url
        self.http = requests.Session()

    def submit(self, body):
        response = self.http.post(f"{self.base}/v1/jobs", json=body, timeout=30)
        assert response.status_code in (200, 202), response.text
        return response.json()["job"]

    def job(self, job_id):
        response = self.http.get(f"{self.base}/v1/jobs/{job_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def jobs(self, **params):
        response = self.http.get(f"{self.base}/v1/jobs", params=params, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["jobs"]

    def logs(self, job_id, **params):
        response = self.http.get(f"{self.base}/v1/jobs/{job_id}/logs", params=params, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.text.splitlines() if line]

    def progress(self, job_id):
        return self.http.get(f"{self.base}/v1/jobs/{job_id}/progress", timeout=30).json()

    def progress_stream(self, job_id):
        """(event, data) frames of the SSE stream until it ends."""
        frames, event = [], {}
        with self.http.get(f"{self.base}/v1/jobs/{job_id}/progress/stream", stream=True,
                           timeout=120) as response:
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for line in response.iter_lines(decode_unicode=True):
                if line == "":
                    if "data" in event:
                        frames.append((event.get("event", "message"), json.loads(event["data"])))
                    event = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    event[field] = value.lstrip(" ")
        return frames

    def artifacts(self, job_id):
        return self.http.get(f"{self.base}/v1/jobs/{job_id}/artifacts", timeout=30).json()["artifacts"]

    def models(self):
        return self.http.get(f"{self.base}/v1/models", timeout=30).json()["models"]

    def model(self, model_id):
        return self.http.get(f"{self.base}/v1/models/{model_id}", timeout=30).json()


def wait_until_done(client, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_an_original_client_runs_and_follows_a_job(start_service):
    service = start_service()
    client = OriginalClient(service.base_url)

    job = client.submit(generate_body(count=2))
    assert {"id", "status", "type", "created_at"} <= set(job)
    assert job["status"] == "queued" and job["type"] == "generate"
    assert ISO_Z.match(job["created_at"])

    frames = client.progress_stream(job["id"])
    progress = [data for event, data in frames if event == "progress"]
    assert progress and progress[-1]["progress"] == 1
    assert all(0 <= data["progress"] <= 1 for data in progress)
    streamed_codes = [data["code"] for event, data in frames if event == "log"]
    assert "artifact.written" in streamed_codes and streamed_codes[-1] == "job.finish"

    done = wait_until_done(client, job["id"])
    assert done["status"] == "succeeded"
    assert done["summary"] == {"count": 2, "completed": 2}
    assert done["error_code"] is None and done["error_message"] is None
    assert [(s["name"], s["status"]) for s in done["steps"]] == [("generate", "succeeded")]

    listed = client.jobs(status="succeeded", limit=1)
    assert [j["id"] for j in listed] == [job["id"]]
    assert requests.get(f"{service.base_url}/v1/jobs", params={"limit": 201}, timeout=30).status_code == 422

    logs = client.logs(job["id"])
    codes = [line["code"] for line in logs]
    assert codes.index("step.start") < codes.index("artifact.written") < codes.index("step.finish")
    assert codes[-1] == "job.finish"
    assert all({"ts", "level", "code", "message", "job_id"} <= set(line) for line in logs)
    assert all(ISO_Z.match(line["ts"]) and line["job_id"] == job["id"] for line in logs)
    written = [line for line in logs if line["code"] == "artifact.written"]
    assert sorted(line["item_index"] for line in written) == [0, 1]
    assert all(line["step_id"] == "generate" for line in written)
    assert client.logs(job["id"], tail=2) == logs[-2:]
    assert client.logs(job["id"], since_ts=logs[-1]["ts"])[-1] == logs[-1]
    assert client.logs(job["id"], since_ts="2999-01-01T00:00:00Z") == []
    assert requests.get(f"{service.base_url}/v1/jobs/{job['id']}/logs", params={"since_ts": "yesterday"},
                        timeout=30).status_code == 422

    state = client.progress(job["id"])
    assert state["progress"] == 1
    assert sorted(item["item_index"] for item in state["items"]) == [0, 1]
    assert all(item["progress"] == 1 for item in state["items"])
    assert [stage["name"] for stage in state["stages"]] == ["generate"]
    assert sum(stage["weight"] for stage in state["stages"]) == 1

    artifacts = client.artifacts(job["id"])
    assert len(artifacts) == 2
    for artifact in artifacts:
        assert {"id", "format", "width", "height", "seed", "item_index", "s3_key", "url",
                "expires_at"} <= set(artifact)
        assert artifact["format"] == "png" and artifact["width"] == 64
        assert ISO_Z.match(artifact["expires_at"])
        image = requests.get(service.url(artifact["url"]), timeout=30)
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


def test_an_original_client_lists_models_and_sees_a_failed_jobs_error(start_service):
    service = start_service()
    client = OriginalClient(service.base_url)
    models = client.models()
    for model in models:
        assert {"id", "name", "kind", "version", "installed", "enabled", "parameters_schema"} <= set(model)
    detail = client.model("tiny")
    assert {"capabilities", "source_uri", "local_path", "files_json"} <= set(detail)

    again = client.submit(generate_body(seed=3))
    replay = requests.post(f"{service.base_url}/v1/jobs", json=generate_body(seed=3), timeout=30,
                           headers={"Idempotency-Key": "original-1"})
    assert replay.status_code == 202
    replayed = requests.post(f"{service.base_url}/v1/jobs", json=generate_body(seed=3), timeout=30,
                             headers={"Idempotency-Key": "original-1"})
    assert replayed.status_code == 200 and replayed.json()["job"]["id"] == replay.json()["job"]["id"]
    wait_until_done(client, again["id"])

    failing = client.submit({"type": "workflow", "workflow": failing_graph(service.data_dir),
                             "max_attempts": 1})
    failed = wait_until_done(client, failing["id"])
    assert failed["status"] == "failed"
    assert failed["error_code"] == failed["error"]["code"] and failed["error_code"]
    assert failed["error_message"] == failed["error"]["message"]
    assert failed["summary"]["completed"] == 0
    assert [line for line in client.logs(failing["id"]) if line["level"] == "error"]


def upscaled(client, job_id):
    """{item_index: (width, height)} of the job's artifacts under /upscale/ keys, and of the rest."""
    chained, plain = {}, {}
    for artifact in client.artifacts(job_id):
        target = chained if "/upscale/" in artifact["s3_key"] else plain
        target[artifact["item_index"]] = (artifact["width"], artifact["height"])
    return chained, plain


def test_a_chained_upscale_runs_after_generate_with_an_upscale_model(start_service, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service(data_dir=data_dir)
    run_dreamforge("model", "create-tiny", "--kind", "upscaler", "--family", "sd1",
                   "--data-dir", str(data_dir), "--name", "tiny-x4")
    client = OriginalClient(service.base_url)

    native = client.submit(generate_body(count=2, chain={"upscale": {"scale": 2}}))
    assert native["spec"]["chain"]["upscale"]["impl"] == "gan", "auto picks the installed model"
    strict = client.submit(generate_body(chain={"upscale": {"scale": 2, "impl": "gan", "strict_scale": True}}))
    done = wait_until_done(client, native["id"])
    assert done["status"] == "succeeded", done["error"]
    assert [(s["name"], s["status"]) for s in done["steps"]] == [("generate", "succeeded"),
                                                                  ("upscale", "succeeded")]
    chained, plain = upscaled(client, native["id"])
    assert plain == {0: (64, 64), 1: (64, 64)}
    assert chained == {0: (256, 256), 1: (256, 256)}, "the model's own x4 without strict_scale"
    stages = client.progress(native["id"])["stages"]
    assert [s["name"] for s in stages] == ["generate", "upscale"]
    assert abs(sum(s["weight"] for s in stages) - 1) < 1e-9

    assert wait_until_done(client, strict["id"])["status"] == "succeeded"
    assert upscaled(client, strict["id"])[0] == {0: (128, 128)}


def test_a_chained_diffusion_upscale_samples_the_scaled_latent_again(start_service):
    service = start_service()
    client = OriginalClient(service.base_url)
    job = client.submit(generate_body(chain={"upscale": {"scale": 2, "impl": "auto"}}))
    assert job["spec"]["chain"]["upscale"]["impl"] == "diffusion", "no upscale model is installed"
    done = wait_until_done(client, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert upscaled(client, job["id"]) == ({0: (128, 128)}, {0: (64, 64)})
    weights = {s["name"]: s["weight"] for s in client.progress(job["id"])["stages"]}
    assert weights["upscale"] > 0 and abs(sum(weights.values()) - 1) < 1e-9


def test_invalid_chains_answer_422_invalid_input(start_service):
    service = start_service()
    for chain in ({"upscale": {"scale": 2, "impl": "gan"}},             # no upscale model installed
                  {"upscale": {"scale": 5}},                            # out of range
                  {"upscale": {"scale": 2, "impl": "diffusion", "model": "x.pth"}},
                  {"upscale": {"scale": 2, "impl": "lanczos"}},
                  {"upscale": {}},
                  {"downscale": {"scale": 2}}):
        response = service.post("/v1/jobs", generate_body(chain=chain))
        assert response.status_code == 422, (chain, response.text)
        assert response.json()["code"] == "invalid_input", (chain, response.json())
        assert response.json()["details"]["fields"][0]["field"].startswith("chain"), response.json()
    workflow = service.post("/v1/jobs", {"workflow": {}, "chain": {"upscale": {"scale": 2}}})
    assert workflow.status_code == 422 and workflow.json()["code"] == "invalid_input", workflow.text
    assert service.get("/v1/jobs").json()["jobs"] == []
