"""ComfyUI servers as backends end to end: a front `dreamforge serve` with no native runner drives
two other `dreamforge serve` processes on loopback through the ComfyUI API they speak, as it would
drive any ComfyUI server named in its config/backends.yaml. Workflows, batches, cancels, uploaded
inputs and unknown nodes behave as with a native runner; a backend killed mid-job hands the job to
the other one."""
import hashlib
import io
import json
import pathlib
import subprocess

import pytest
from PIL import Image

from comfy_client import ComfyClient
from e2e_support import BIN, wait_until
from graph_support import pixels, same
from service_support import comfy_graph

pytestmark = pytest.mark.skipif(not (BIN / "dreamforge-comfy-runner").is_file(),
                                reason=f"no dreamforge-comfy-runner in {BIN}: build the dreamforge-comfy-runner target")

# Far more steps than any machine gets through before a cancel lands.
LONG_STEPS = 1000
# Steps of the job whose backend is killed once its sampler runs: more than a machine gets through
# before the kill lands, few enough that the other backend soon runs them all.
KILL_STEPS = 100


class Fleet:
    """Two backends (`dreamforge serve` with the tiny checkpoint, each in its own data dir) and a
    front service without a checkpoint or a native runner whose backends.yaml names them."""

    def __init__(self, start_service, tmp_path, front_flags=()):
        self.backends = {name: start_service(data_dir=tmp_path / name) for name in ("b1", "b2")}
        self.front_dir = tmp_path / "front"
        config = self.front_dir / "config"
        config.mkdir(parents=True)
        entries = "".join(f"  - name: {name}\n    url: {backend.base_url}\n"
                          for name, backend in self.backends.items())
        (config / "backends.yaml").write_text("backends:\n" + entries)
        self.front = start_service("--workers", "0", "--retry-base", "0.2", *front_flags,
                                   data_dir=self.front_dir, model=False)

    def queues(self):
        """Each backend's /queue: {name: (running prompt ids, pending prompt ids)}."""
        found = {}
        for name, backend in self.backends.items():
            queue = backend.get("/queue").json()
            found[name] = ([p[1] for p in queue["queue_running"]], [p[1] for p in queue["queue_pending"]])
        return found

    def running_on(self):
        """The name of the backend running a prompt now."""
        [name] = [name for name, (running, _) in self.queues().items() if running]
        return name

    def prompts_run(self):
        """How many prompts the backends ran (their /history entries), all together."""
        return sum(len(backend.get("/history").json()) for backend in self.backends.values())

    def idle(self):
        return self.queues() == {name: ([], []) for name in self.backends}


@pytest.fixture
def fleet(start_service, tmp_path):
    return Fleet(start_service, tmp_path)


def child_programs(service):
    """The programs the service process runs as its children (its runners)."""
    listing = subprocess.run(["ps", "-o", "args=", "--ppid", str(service.process.pid)],
                             capture_output=True, text=True).stdout
    return {pathlib.Path(line.split()[0]).name for line in listing.splitlines() if line.strip()}


def artifacts(service, job_id):
    return service.get(f"/v1/jobs/{job_id}/artifacts").json()["artifacts"]


def download(service, artifact):
    """The bytes behind an artifact's signed URL, checked against its sha256."""
    response = service.get(artifact["url"])
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
    return response.content


def png(color):
    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, "PNG")
    return out.getvalue()


def img2img_graph(image_name, seed=21):
    """The default graph sampling from an uploaded image's latent at half strength."""
    graph = comfy_graph(seed=seed, prefix="img2img")
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": image_name}}
    graph["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    graph["3"]["inputs"]["latent_image"] = ["11", 0]
    graph["3"]["inputs"]["denoise"] = 0.5
    return graph


def test_a_comfyui_workflow_runs_on_a_backend_and_its_image_is_the_fronts_artifact(fleet):
    front = fleet.front
    client = ComfyClient(front)
    answer = client.queue(comfy_graph(seed=42, prefix="ComfyUI"))
    assert answer.status_code == 200, answer.text
    prompt_id = answer.json()["prompt_id"]
    messages = client.wait(prompt_id)
    client.close()
    kinds = [m["type"] for m in messages]
    assert "execution_success" in kinds and "execution_error" not in kinds, messages
    assert [m["data"]["value"] for m in messages if m["type"] == "progress"][-1] == 3

    history = client.history(prompt_id)
    assert history["status"]["status_str"] == "success"
    images = history["outputs"]["9"]["images"]
    assert len(images) == 1 and images[0]["type"] == "output"
    viewed = client.images(prompt_id)[0]  # /view on the front, which holds no checkpoint
    image = Image.open(io.BytesIO(viewed))
    assert image.size == (64, 64) and json.loads(image.text["prompt"])["3"]["inputs"]["seed"] == 42

    job = front.get(f"/v1/jobs/{prompt_id}").json()
    assert job["type"] == "workflow" and job["status"] == "succeeded"
    assert [pathlib.Path(step["runner"]).name for step in job["steps"]] == ["dreamforge-comfy-runner"]
    assert child_programs(front) == {"dreamforge-comfy-runner"}  # no native runner on the front
    [artifact] = artifacts(front, prompt_id)
    assert "?" in artifact["url"]  # signed
    assert download(front, artifact) == viewed
    assert fleet.prompts_run() == 1
    wait_until(fleet.idle, "the backends' queues are empty")


def test_a_batch_of_three_gives_three_artifacts_with_distinct_seeds(fleet):
    front = fleet.front
    job = front.create_job({"type": "workflow", "workflow": comfy_graph(), "count": 3, "seed": 300})
    done = front.wait_for_job(job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert [item["seed"] for item in done["items"]] == [300, 301, 302]
    found = artifacts(front, job["id"])
    assert sorted(a["seed"] for a in found) == [300, 301, 302]
    assert sorted(a["item_index"] for a in found) == [0, 1, 2]
    images = {a["seed"]: download(front, a) for a in found}
    for seed, data in images.items():
        assert json.loads(Image.open(io.BytesIO(data)).text["prompt"])["3"]["inputs"]["seed"] == seed
    assert len(set(images.values())) == 3  # three seeds, three different images
    assert fleet.prompts_run() == 3  # one ComfyUI prompt per item


@pytest.mark.parametrize("how", ["interrupt", "v1_cancel"])
def test_a_cancel_mid_run_ends_the_job_and_leaves_the_backend_idle(fleet, how):
    front = fleet.front
    answer = front.post("/prompt", {"prompt": comfy_graph(steps=LONG_STEPS), "client_id": "cancel"})
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["prompt_id"]
    for _, kind, _ in front.iter_events(job_id):
        if kind == "progress":  # relayed from the backend's sampler
            break
    if how == "interrupt":
        assert front.post("/interrupt", {"prompt_id": job_id}).status_code == 200
    else:
        response = front.post(f"/v1/jobs/{job_id}/cancel")
        assert response.status_code == 202 and response.json()["cancel"] == "requested"
    done = front.wait_for_job(job_id)
    assert done["status"] == "canceled" and done["error"]["code"] == "canceled"
    status = front.get(f"/history/{job_id}").json()[job_id]["status"]
    assert status["status_str"] == "error" and status["messages"][-1][0] == "execution_interrupted"
    assert front.get("/queue").json() == {"queue_running": [], "queue_pending": []}
    assert artifacts(front, job_id) == []
    wait_until(fleet.idle, "the backends' queues are empty")
    [interrupted] = [entry for backend in fleet.backends.values()
                     for entry in backend.get("/history").json().values()]
    assert interrupted["status"]["messages"][-1][0] == "execution_interrupted"  # not run to its end
    # The backends are free again: the next job runs.
    after = front.create_job({"type": "workflow", "workflow": comfy_graph(seed=8)})
    assert front.wait_for_job(after["id"])["status"] == "succeeded"


def test_jobs_waiting_for_busy_backends_keep_their_place_in_the_fronts_queue(fleet):
    front = fleet.front
    ids = []
    for seed in range(4):  # two run (one per backend), two wait in the front's queue, in order
        answer = front.post("/prompt", {"prompt": comfy_graph(seed=seed, steps=LONG_STEPS)})
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["prompt_id"])
    wait_until(lambda: all(running for running, _ in fleet.queues().values()), "both backends run a job")
    queue = front.get("/queue").json()
    assert sorted(entry[1] for entry in queue["queue_running"]) == sorted(ids[:2])
    assert [entry[1] for entry in queue["queue_pending"]] == ids[2:]
    assert front.get("/prompt").json()["exec_info"]["queue_remaining"] == 4
    assert all(pending == [] for _, pending in fleet.queues().values())  # nothing queued on a backend
    for job_id in ids:
        assert front.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    for job_id in ids:
        assert front.wait_for_job(job_id)["status"] == "canceled"
    wait_until(fleet.idle, "the backends' queues are empty")


def test_an_image_uploaded_to_the_front_reaches_the_backend_for_img2img(fleet):
    front = fleet.front
    results = {}
    for color in ("red", "blue"):
        data = png(color)
        upload = front.post("/upload/image", files={"image": (f"{color}.png", data, "image/png")})
        assert upload.status_code == 200, upload.text
        name = upload.json()["name"]
        job = front.create_job({"type": "workflow", "workflow": img2img_graph(name)})
        done = front.wait_for_job(job["id"])
        assert done["status"] == "succeeded", done["error"]
        [artifact] = artifacts(front, job["id"])
        image = download(front, artifact)
        assert Image.open(io.BytesIO(image)).size == (64, 64)
        results[color] = pixels(image)
        inputs = [p.read_bytes() for backend in fleet.backends.values()
                  for p in (backend.data_dir / "input").rglob("*") if p.is_file()]
        assert data in inputs  # the runner uploaded it to the backend that ran the job
    # Same seed, different input images: the backend sampled from the uploaded pixels.
    assert not same(results["red"], results["blue"])
    assert fleet.prompts_run() == 2


def test_a_node_no_backend_has_is_refused_at_once_naming_it(fleet):
    front = fleet.front
    graph = comfy_graph()
    graph["20"] = {"class_type": "ImpactWildcardProcessor", "inputs": {}}

    prompt = front.post("/prompt", {"prompt": graph})
    assert prompt.status_code == 400
    error = prompt.json()["error"]
    assert error["type"] == "missing_node_type"
    assert "ImpactWildcardProcessor" in error["message"]
    assert error["extra_info"]["class_type"] == "ImpactWildcardProcessor"

    job = front.post("/v1/jobs", {"type": "workflow", "workflow": graph})
    assert job.status_code == 422  # what a native runner's front answers for an invalid workflow
    assert job.json()["code"] == "validation"
    assert "ImpactWildcardProcessor" in job.json()["message"]
    assert job.json()["details"]["error"]["type"] == "missing_node_type"

    assert front.get("/v1/jobs").json()["jobs"] == []  # nothing was queued
    assert fleet.prompts_run() == 0 and fleet.idle()


def test_the_fronts_object_info_offers_the_backends_nodes_and_checkpoints(fleet):
    front_info = fleet.front.get("/object_info").json()
    for backend in fleet.backends.values():
        assert set(backend.get("/object_info").json()) <= set(front_info)
    checkpoints = front_info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert "tiny" in checkpoints  # a backend's file: the front has no checkpoint of its own


def backend_health(service, name):
    """The backend's entry in the front's /healthz."""
    return next(b for b in service.get("/healthz").json()["backends"] if b["name"] == name)


def test_a_backend_killed_mid_job_hands_the_job_to_the_other_once(start_service, tmp_path, stored_keys):
    # One attempt only: the job can succeed only if the outage does not use it up.
    fleet = Fleet(start_service, tmp_path, front_flags=("--max-attempts", "1"))
    front = fleet.front
    job = front.create_job({"type": "workflow", "workflow": comfy_graph(steps=KILL_STEPS, seed=5)})
    for _, kind, _ in front.iter_events(job["id"]):
        if kind == "progress":  # the backend's sampler runs
            break
    victim_name = fleet.running_on()
    survivor_name = next(name for name in fleet.backends if name != victim_name)
    victim = fleet.backends[victim_name]
    victim.process.kill()
    victim.process.wait()

    done = front.wait_for_job(job["id"], timeout=180)
    assert done["status"] == "succeeded", done
    assert len(done["steps"]) == 2 and done["steps"][0]["worker_id"] != done["steps"][1]["worker_id"]
    events = front.events(job["id"])
    kinds = [kind for _, kind, _ in events]
    assert kinds.count("job_started") == 2 and kinds.count("job_finished") == 1
    retries = [data for _, kind, data in events if kind == "retry_scheduled"]
    assert len(retries) == 1 and retries[0]["code"] == "unavailable", retries
    assert victim_name in retries[0]["message"]
    [artifact] = artifacts(front, job["id"])  # one attempt's artifact, no leftover of the first
    assert stored_keys(front.data_dir, f"dreamforge/default/jobs/{job['id']}/") == [artifact["key"]]
    image = Image.open(io.BytesIO(download(front, artifact)))
    assert json.loads(image.text["prompt"])["3"]["inputs"]["seed"] == 5
    assert len(fleet.backends[survivor_name].get("/history").json()) == 1  # it ran there, once

    wait_until(lambda: backend_health(front, victim_name)["up"] is False, "the front sees the backend down")
    assert backend_health(front, victim_name)["error"]
    assert backend_health(front, survivor_name)["up"] is True
    assert f'dreamforge_backend_up{{backend="{victim_name}"}} 0' in front.get("/metrics").text
    assert front.get("/readyz").status_code == 200  # the other backend still takes jobs
