"""The Compose stack (deploy/compose.yaml through deploy/compose) on a real Docker daemon: it comes up
from the locally built images, the CLI container installs a model the API then offers, a batch job
and a ComfyUI prompt run on the worker container, presigned artifact URLs download from MinIO, a
worker restarted mid-job finishes its job once, and `down -v` leaves nothing behind."""
import io
import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests
from PIL import Image

from container_support import build_images, docker, docker_missing_reason
from e2e_support import ROOT
from s3_server import free_loopback_port
from service_support import Service, comfy_graph, generate_body


def compose_missing_reason():
    reason = docker_missing_reason()
    if reason is not None:
        return reason
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    if not plugin and shutil.which("docker-compose") is None:
        return "no Docker Compose (Debian: apt-get install docker-compose)"
    return None


pytestmark = pytest.mark.skipif(compose_missing_reason() is not None,
                                reason=str(compose_missing_reason()))

COMPOSE = ROOT / "deploy" / "compose"


class Stack:
    """One Compose project of its own (name, env file, loopback ports), brought down on close."""

    def __init__(self, tmp_path, tag):
        self.project = "dftest" + uuid.uuid4().hex[:8]
        self.api_port, self.s3_port = free_loopback_port(), free_loopback_port()
        self.env_file = tmp_path / "stack.env"
        self.env_file.write_text("\n".join([
            f"POSTGRES_PASSWORD={uuid.uuid4().hex}", f"REDIS_PASSWORD={uuid.uuid4().hex}",
            "MINIO_ROOT_USER=dreamforge", f"MINIO_ROOT_PASSWORD={uuid.uuid4().hex}",
            f"DREAMFORGE_SECRET={uuid.uuid4().hex}", "COMPOSE_PROFILES=cpu",
            f"DREAMFORGE_API_PORT={self.api_port}", f"DREAMFORGE_S3_PORT={self.s3_port}",
            f"DREAMFORGE_TAG={tag}", ""]))
        # The API's client (get, post, create_job, wait_for_job, events) without a process of its own.
        self.api = Service(tmp_path)
        self.api.base_url = f"http://127.0.0.1:{self.api_port}"

    def compose(self, *args, timeout=300, check=True):
        env = {**os.environ, "DREAMFORGE_COMPOSE_ENV_FILE": str(self.env_file),
               "COMPOSE_PROJECT_NAME": self.project}
        proc = subprocess.run([str(COMPOSE), *args], capture_output=True, text=True, env=env,
                              timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"deploy/compose {' '.join(args)} exited {proc.returncode}:\n"
                        f"{proc.stdout}\n{proc.stderr}")
        return proc

    def containers(self, *filters):
        listed = docker("ps", "--all", "--quiet", "--filter",
                        f"label=com.docker.compose.project={self.project}", *filters)
        return listed.stdout.split()

    def worker_container(self):
        [worker] = self.containers("--filter", "label=com.docker.compose.service=worker")
        return worker

    def logs(self):
        return self.compose("logs", "--no-color", check=False).stdout[-20000:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    built = build_images("dreamforge", "worker", "postgres", "redis", "minio")
    tag = built["dreamforge"].split(":")[1]
    stack = Stack(tmp_path_factory.mktemp("compose"), tag)
    try:
        started = time.monotonic()
        stack.compose("up", "-d")
        print(f"compose up to /readyz 200: {time.monotonic() - started:.1f} s")
        stack.compose("run", "--rm", "cli", "model", "create-tiny", "--name", "tiny",
                      "--family", "sd1")
        listed = stack.compose("run", "--rm", "cli", "model", "list").stdout
        assert "tiny" in listed, listed
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", check=False)


def download_png(url):
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(response.content))


def test_the_api_is_ready_and_bound_to_loopback_only(stack):
    assert stack.api.get("/readyz").status_code == 200
    [api] = stack.containers("--filter", "label=com.docker.compose.service=api")
    bindings = docker("port", api).stdout.split()
    assert bindings == ["8188/tcp", "->", f"127.0.0.1:{stack.api_port}"], bindings
    assert stack.api.get("/v1/models").json()["models"][0]["id"] == "tiny"


def test_a_batch_job_runs_on_the_worker_container_and_its_urls_download_from_minio(stack):
    job = stack.api.create_job(generate_body(count=2, seed=700))
    done = stack.api.wait_for_job(job["id"])
    assert done["status"] == "succeeded", done
    artifacts = stack.api.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"]
    assert sorted(a["seed"] for a in artifacts) == [700, 701]
    for artifact in artifacts:
        # Presigned for where MinIO is published, not the name the service reaches it by.
        assert artifact["url"].startswith(f"http://127.0.0.1:{stack.s3_port}/artifacts/")
        image = download_png(artifact["url"])
        assert image.size == (64, 64)
        assert f"Seed: {artifact['seed']}" in image.text["parameters"]
        # The bucket is private: without the signature MinIO refuses.
        assert requests.get(artifact["url"].split("?")[0], timeout=30).status_code == 403


def test_a_comfyui_prompt_runs_through_the_api_container(stack):
    prompt_id = stack.api.post("/prompt", {"prompt": comfy_graph(seed=9)}).json()["prompt_id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        history = stack.api.get(f"/history/{prompt_id}").json()
        if prompt_id in history and history[prompt_id]["status"]["completed"]:
            break
        time.sleep(0.3)
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success", entry
    [image] = entry["outputs"]["9"]["images"]
    view = stack.api.get("/view", params={"filename": image["filename"], "type": "output",
                                      "subfolder": image["subfolder"]})
    assert view.status_code == 200
    assert Image.open(io.BytesIO(view.content)).size == (64, 64)


def test_a_worker_restarted_mid_job_finishes_the_job_once(stack):
    job = stack.api.create_job(generate_body(count=6, steps=25, width=256, height=256, seed=900))
    deadline = time.monotonic() + 120
    while stack.api.get(f"/v1/jobs/{job['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    docker("restart", stack.worker_container(), timeout=120)
    done = stack.api.wait_for_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", done
    artifacts = stack.api.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"]
    assert sorted(a["seed"] for a in artifacts) == list(range(900, 906))  # each item once
    events = stack.api.events(job["id"])
    # The worker handed the job back when it was stopped, and the restarted one finished it.
    [retry] = [data for _, event, data in events if event == "retry_scheduled"]
    assert "the worker shut down during the job" in retry["message"], retry
    assert [event for _, event, _ in events].count("job_finished") == 1


def test_down_leaves_no_container_volume_or_network(stack):
    # Last in this file: it brings the module's stack down.
    running = stack.containers("--filter", "status=running")
    assert len(running) == 5  # postgres, redis, minio, api, worker (migrate and bucket ran once)
    stack.compose("down", "--volumes", "--remove-orphans")
    assert stack.containers() == []
    volumes = docker("volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={stack.project}")
    assert volumes.stdout.split() == []
    networks = docker("network", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={stack.project}")
    assert networks.stdout.split() == []
