"""A ComfyUI backend Dream Forge starts itself (a `command` in backends.yaml): a front `dreamforge
serve` without a native runner starts a second `dreamforge serve` (a ComfyUI server as far as the
front can tell) on the port of its config, runs a workflow on it, stops it once it has been idle for
its idle_timeout_s, and starts it again for the next workflow, and after a crash."""
import os
import pathlib
import signal

import pytest
import requests

from backends import free_port
from comfy_client import ComfyClient
from e2e_support import BIN, wait_until
from service_support import comfy_graph, install_tiny_model

pytestmark = pytest.mark.skipif(not (BIN / "dreamforge-comfy-runner").is_file(),
                                reason=f"no dreamforge-comfy-runner in {BIN}: build the dreamforge-comfy-runner target")

IDLE_TIMEOUT_S = 2


def answers(url):
    try:
        return requests.get(url + "/object_info", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def server_pids(data_dir):
    """The `dreamforge serve` processes serving `data_dir`."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and str(data_dir).encode() in argv:
            found.append(int(proc.name))
    return found


def run_workflow(front, seed):
    client = ComfyClient(front)
    answer = client.queue(comfy_graph(seed=seed))
    assert answer.status_code == 200, answer.text
    messages = client.wait(answer.json()["prompt_id"])
    client.close()
    kinds = [m["type"] for m in messages]
    assert "execution_success" in kinds and "execution_error" not in kinds, messages


def test_a_started_backend_runs_jobs_stops_once_idle_and_starts_again_also_after_a_crash(
        start_service, tmp_path):
    backend_dir = tmp_path / "backend"
    install_tiny_model(backend_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    front_dir = tmp_path / "front"
    (front_dir / "config").mkdir(parents=True)
    command = [str(BIN / "dreamforge"), "serve", "--data-dir", str(backend_dir), "--host", "127.0.0.1",
               "--port", "{port}"]
    (front_dir / "config" / "backends.yaml").write_text(
        "backends:\n  - name: local\n"
        f"    command: [{', '.join(repr(word) for word in command)}]\n"
        f"    port: {port}\n    idle_timeout_s: {IDLE_TIMEOUT_S}\n    start_timeout_s: 60\n")
    front = start_service("--workers", "0", data_dir=front_dir, model=False)

    log = front_dir / "logs" / "backends" / "local.log"
    assert log.is_file()  # started once at the front's start, so that its offer is known
    run_workflow(front, seed=1)
    wait_until(lambda: not answers(url), "the idle backend is stopped")

    run_workflow(front, seed=2)  # the next job starts it again
    assert answers(url)

    [pid] = server_pids(backend_dir)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not answers(url), "the killed backend is gone")
    run_workflow(front, seed=3)  # the next job starts it again
    assert answers(url) and server_pids(backend_dir) != [pid]
