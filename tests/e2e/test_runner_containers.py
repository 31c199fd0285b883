"""Runners in containers: with `isolation: container` in runners.yaml the worker runs each native
runner as a locked-down container of the runner image (no network, read-only root, models
read-only, the worker's user), and stopping the service, a step timeout or a hung (paused)
container leaves no container behind."""
import hashlib
import io
import json
import os
import signal

import pytest
from PIL import Image

from container_support import build_images, docker, docker_missing_reason
from e2e_support import wait_until
from service_support import generate_body

DOCKER_MISSING = docker_missing_reason()
pytestmark = pytest.mark.skipif(DOCKER_MISSING is not None, reason=str(DOCKER_MISSING))


@pytest.fixture(scope="module")
def runner_image():
    return build_images("runner-cpu")["dreamforge-runner-cpu"]


def start_in_containers(start_service, tmp_path, image, *flags):
    """A service whose native runners run in containers of `image`; returns it and its data
    directory's absolute path (the containers' data-dir label)."""
    data_dir = tmp_path / "data"
    (data_dir / "config").mkdir(parents=True, exist_ok=True)
    (data_dir / "config" / "runners.yaml").write_text(
        f"native:\n  isolation: container\n  image: {image}\n")
    service = start_service("--device", "cpu", "--kill-grace", "1", "--retry-base", "0.2", *flags,
                            data_dir=data_dir)
    return service, data_dir.resolve()


def runner_containers(data_dir, every=False):
    """The names of the runner containers serving `data_dir`: running ones, or every one."""
    listed = docker("ps", *(["--all"] if every else []), "--filter", "label=dreamforge.runner=1",
                    "--filter", f"label=dreamforge.data-dir={data_dir}", "--format", "{{.Names}}")
    return listed.stdout.split()


def resident_bytes(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def image_of(service, job_id):
    """The job's only image, checked against its sha256."""
    [artifact] = service.get(f"/v1/jobs/{job_id}/artifacts").json()["artifacts"]
    response = service.get(artifact["url"])
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
    return Image.open(io.BytesIO(response.content))


def test_a_job_runs_in_a_locked_down_container_that_is_gone_once_the_service_stops(
        start_service, tmp_path, runner_image):
    service, data_dir = start_in_containers(start_service, tmp_path, runner_image)
    job = service.create_job(generate_body(seed=77))
    done = service.wait_for_job(job["id"], timeout=120)
    assert done["status"] == "succeeded", done["error"]

    # The runner stays warm for the next job: its container runs, as the worker started it.
    [name] = runner_containers(data_dir)
    info = json.loads(docker("inspect", name).stdout)[0]
    assert info["Config"]["Image"] == runner_image
    assert info["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    host = info["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    mounts = {mount["Destination"]: mount for mount in info["Mounts"]}
    for folder, writable in [("models", False), ("input", False), ("output", True), ("temp", True)]:
        path = str(data_dir / folder)
        assert mounts[path]["Source"] == path and mounts[path]["RW"] is writable, mounts[path]
    # Its memory is read from the container's main process, not from the engine client.
    step = done["steps"][0]
    assert step["memory_kind"] == "process_rss"
    held = resident_bytes(info["State"]["Pid"])
    assert held / 2 < step["gpu_mem_used_after"] < held * 2, (step, held)

    # The image is the one a runner subprocess makes for the same job.
    contained = image_of(service, job["id"])
    plain = start_service("--device", "cpu", data_dir=tmp_path / "plain")
    plain_job = plain.create_job(generate_body(seed=77))
    assert plain.wait_for_job(plain_job["id"], timeout=120)["status"] == "succeeded"
    assert contained.size == (64, 64)
    assert contained.tobytes() == image_of(plain, plain_job["id"]).tobytes()

    service.stop()
    assert runner_containers(data_dir, every=True) == []


def test_a_step_timeout_stops_and_removes_the_runner_container(start_service, tmp_path,
                                                               runner_image):
    service, data_dir = start_in_containers(start_service, tmp_path, runner_image,
                                            "--step-timeout", "3")
    job = service.create_job(generate_body(steps=150, count=3))
    wait_until(lambda: runner_containers(data_dir), "a runner container runs the job", timeout=60,
               explain=lambda: "".join(service.output))
    done = service.wait_for_job(job["id"], timeout=120)
    assert done["status"] == "failed" and done["error"]["code"] == "timeout", done["error"]
    assert done["error"]["details"]["runner_gone"] is True
    assert runner_containers(data_dir, every=True) == []


def test_a_paused_container_is_killed_removed_and_the_job_retried_on_a_fresh_one(
        start_service, tmp_path, runner_image):
    service, data_dir = start_in_containers(start_service, tmp_path, runner_image,
                                            "--runner-silence-timeout", "3", "--max-attempts", "2")
    job = service.create_job(generate_body(steps=60, seed=31))

    def sampling_container():
        items = service.get(f"/v1/jobs/{job['id']}").json()["items"]
        names = runner_containers(data_dir)
        return names[0] if names and items and items[0].get("step", 0) >= 1 else None

    first = wait_until(sampling_container, "the job samples in a runner container", timeout=90,
                       explain=lambda: "".join(service.output))
    docker("pause", first)
    done = service.wait_for_job(job["id"], timeout=150)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert done["steps"][0]["error"]["code"] == "runner_hung"
    # The hung container was killed and removed; the retry ran in a fresh one, still warm.
    assert first not in runner_containers(data_dir, every=True)
    [second] = runner_containers(data_dir)
    assert second != first


def test_containers_a_killed_worker_left_behind_are_removed_when_the_next_worker_starts(
        start_service, tmp_path, runner_image):
    service, data_dir = start_in_containers(start_service, tmp_path, runner_image)
    service.create_job(generate_body(steps=150, count=3))
    left = wait_until(lambda: runner_containers(data_dir), "a runner container runs the job",
                      timeout=90, explain=lambda: "".join(service.output))[0]
    docker("pause", left)  # frozen: it cannot even notice that its input closed
    service.stop(signal.SIGKILL)
    assert left in runner_containers(data_dir, every=True), "".join(service.output)

    restarted, _ = start_in_containers(start_service, tmp_path, runner_image)
    assert left not in runner_containers(data_dir, every=True), "".join(restarted.output)
