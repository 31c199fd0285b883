"""dreamforge jobs list|show|watch|cancel and generate --server against a real service."""
import json
import os
import signal
import socket
import subprocess
import threading

import pytest
from PIL import Image

from e2e_support import BIN, run_dreamforge, run_on_terminal
from service_support import generate_body


def cli(service, *args, env=None):
    """Runs the CLI against `service` (via --server); returns the CompletedProcess."""
    return run_dreamforge(*args, "--server", service.base_url, check=False, timeout=180, env=env)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def artifact_lines(stdout):
    return [line for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def service(start_service):
    return start_service()


@pytest.fixture
def finished_job(service):
    """A 2-image job that has succeeded (seeds 1234 and 1235)."""
    job = service.create_job(generate_body(count=2))
    assert service.wait_for_job(job["id"])["status"] == "succeeded"
    return job["id"]


def test_watch_of_a_two_image_job_ends_0_and_shows_both_images(service):
    job = service.create_job(generate_body(count=2))
    proc = cli(service, "jobs", "watch", job["id"])
    assert proc.returncode == 0, proc.stderr
    assert "image 1/2 (seed 1234)" in proc.stderr and "image 2/2 (seed 1235)" in proc.stderr
    assert f"job {job['id']} succeeded" in proc.stderr
    keys = artifact_lines(proc.stdout)
    assert len(keys) == 2
    assert keys[0].startswith(f"dreamforge/default/jobs/{job['id']}/")
    assert "_0_64x64_1234.png  (seed 1234, 64x64)" in keys[0]
    assert "_1_64x64_1235.png  (seed 1235, 64x64)" in keys[1]


def test_list_and_show_a_finished_job(service, finished_job):
    proc = cli(service, "jobs", "list")
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()[:2]
    assert header.split() == ["ID", "STATUS", "PROGRESS", "CREATED", "PROMPT"]
    assert row.split()[:3] == [finished_job, "succeeded", "100%"]
    assert row.endswith("a lighthouse at dusk")

    listed = json.loads(cli(service, "jobs", "list", "--json", "--limit", "1").stdout)
    assert [job["id"] for job in listed["jobs"]] == [finished_job]
    assert cli(service, "jobs", "list", "--status", "failed").stderr == "no jobs\n"

    proc = cli(service, "jobs", "show", finished_job)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"job       {finished_job}" in lines and "status    succeeded" in lines
    assert "model     tiny" in lines and "prompt    a lighthouse at dusk" in lines
    items = lines[lines.index("items") + 1:]
    assert [item.split() for item in items] == [
        ["1/2", "seed", "1234", "succeeded", "3/3", "steps"],
        ["2/2", "seed", "1235", "succeeded", "3/3", "steps"]]
    shown = json.loads(cli(service, "jobs", "show", finished_job, "--json").stdout)
    assert shown["id"] == finished_job and shown["status"] == "succeeded" and "steps" in shown


def test_the_server_comes_from_the_environment(service, finished_job):
    env = {**os.environ, "DREAMFORGE_SERVER": service.base_url}
    proc = run_dreamforge("jobs", "list", env=env)
    assert finished_job in proc.stdout


def test_server_errors_are_shown_from_the_envelope(service):
    proc = cli(service, "jobs", "list", "--status", "bogus")
    assert proc.returncode == 1 and proc.stderr.startswith("error[validation]: ")
    proc = cli(service, "jobs", "list", "--limit", "500")
    assert proc.returncode == 1
    assert "error[validation]: limit must be an integer from 1 to 200" in proc.stderr
    for command in ("show", "watch", "cancel"):
        proc = cli(service, "jobs", command, "no-such-job")
        assert proc.returncode == 1, command
        assert proc.stderr == "error[not_found]: no job with id 'no-such-job'\n", command


def test_cancel_of_a_queued_job_and_its_watch_ending_130(start_service):
    service = start_service(command="api")  # no worker: jobs stay queued
    job_id = service.create_job(generate_body())["id"]
    proc = cli(service, "jobs", "cancel", job_id)
    assert proc.returncode == 0 and proc.stdout == f"canceled job {job_id}\n"
    proc = cli(service, "jobs", "watch", job_id)
    assert proc.returncode == 130 and proc.stderr.endswith("canceled\n")
    proc = cli(service, "jobs", "cancel", job_id)
    assert proc.returncode == 0 and proc.stdout == f"job {job_id} had already finished (canceled)\n"
    assert "status    canceled" in cli(service, "jobs", "show", job_id).stdout


def test_cancel_of_a_running_job(service):
    job_id = service.create_job(generate_body(steps=150, count=100))["id"]
    service.wait_for_job(job_id, statuses=("running",))
    proc = cli(service, "jobs", "cancel", job_id)
    assert proc.returncode == 0
    assert proc.stdout == f"cancel requested: job {job_id} stops after its current sampler step\n"
    proc = cli(service, "jobs", "watch", job_id)
    assert proc.returncode == 130, proc.stderr


def test_watch_of_a_failed_job_ends_1_with_the_error(start_service):
    service = start_service("--runner", "/bin/false", "--max-attempts", "1")
    job_id = service.create_job(generate_body())["id"]
    proc = cli(service, "jobs", "watch", job_id)
    assert proc.returncode == 1
    job = service.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    error = job["error"]
    assert proc.stderr.splitlines()[-1] == f"error[{error['code']}]: {error['message']}"


def test_unreachable_server_is_a_clear_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("jobs", "list"), ("jobs", "watch", "some-id"),
                 ("generate", "a cat", "--model", "tiny", "--out", tmp_path)):
        proc = run_dreamforge(*args, "--server", url, check=False)
        assert proc.returncode == 1, args
        assert proc.stderr.startswith(f"error[unavailable]: cannot reach {url}"), proc.stderr
        assert "--server or DREAMFORGE_SERVER" in proc.stderr
    proc = run_dreamforge("jobs", "list", "--server", "ftp://example", check=False)
    assert proc.returncode == 1 and "is not of the form http://host[:port]" in proc.stderr


class CuttingProxy:
    """A TCP proxy to the service that cuts the first event stream it carries right after the
    response's third event, and records every request's head."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.requests = []
        self.cut = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self.carry, args=(client,), daemon=True).start()

    def carry(self, client):
        host, port = self.upstream.removeprefix("http://").split(":")
        server = socket.create_connection((host, int(port)))
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(65536)
        self.requests.append(head.decode())
        server.sendall(head)
        cut_this = b"/events" in head.split(b"\r\n")[0] and not self.cut
        self.cut = self.cut or cut_this
        answer = b""
        while True:
            chunk = server.recv(65536)
            if not chunk:
                break
            answer += chunk
            if cut_this and answer.count(b"\n\n") >= 3:
                client.sendall(answer[:find_nth(answer, b"\n\n", 3) + 2])
                break
            if not cut_this:
                client.sendall(chunk)
        client.close()
        server.close()


def find_nth(data, needle, n):
    at = -1
    for _ in range(n):
        at = data.index(needle, at + 1)
    return at


def test_watch_resumes_after_a_dropped_connection_without_repeating_events(service, finished_job):
    proxy = CuttingProxy(service.base_url)
    proc = run_dreamforge("jobs", "watch", finished_job, "--server", proxy.url, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "lost the connection to the server; reconnecting..." in proc.stderr
    assert proc.stderr.count("image 1/2 (seed 1234)") == 1
    assert proc.stderr.count("image 2/2 (seed 1235)") == 1
    assert len(artifact_lines(proc.stdout)) == 2
    event_requests = [r for r in proxy.requests if "/events" in r.split("\r\n")[0]]
    assert len(event_requests) == 2
    assert "last-event-id" not in event_requests[0].lower()
    resumed = [line for line in event_requests[1].split("\r\n")
               if line.lower().startswith("last-event-id")]
    assert len(resumed) == 1 and int(resumed[0].split(":")[1]) > 0


def test_watch_draws_a_progress_bar_per_image_on_a_terminal(service):
    job_id = service.create_job(generate_body(count=2, steps=4))["id"]
    code, text = run_on_terminal([BIN / "dreamforge", "jobs", "watch", job_id, "--server", service.base_url])
    assert code == 0
    assert "\r\x1b[Kimage 1/2 [" + "#" * 30 + "] step 4/4  seed 1234\r\n" in text
    assert "\r\x1b[Kimage 2/2 [" + "#" * 30 + "] step 4/4  seed 1235\r\n" in text


def png_seed(path):
    return int(Image.open(path).text["parameters"].split("Seed: ")[1].split(",")[0])


def test_generate_on_the_server_downloads_the_images(service, tmp_path):
    out = tmp_path / "out"
    proc = cli(service, "generate", "a lighthouse at dawn", "--model", "tiny", "--negative", "fog",
               "--width", "64", "--height", "96", "--steps", "3", "--cfg", "5", "--seed", "42",
               "--count", "2", "--sampler", "euler_ancestral", "--out", out)
    assert proc.returncode == 0, proc.stderr
    lines = artifact_lines(proc.stdout)
    assert len(lines) == 2
    paths = [line.split("  (")[0] for line in lines]
    assert lines[0].endswith("(seed 42, 64x96)") and lines[1].endswith("(seed 43, 64x96)")
    for path, seed in zip(paths, (42, 43)):
        assert os.path.dirname(path) == str(out)
        image = Image.open(path)
        assert image.format == "PNG" and image.size == (64, 96)
        params = image.text["parameters"]
        assert params.startswith("a lighthouse at dawn\nNegative prompt: fog\n")
        assert "Steps: 3" in params and "Sampler: Euler a" in params and "CFG scale: 5" in params
        assert png_seed(path) == seed
    job_id = proc.stderr.split("job ")[1].split()[0]
    spec = service.get(f"/v1/jobs/{job_id}").json()["spec"]
    assert spec["guidance"] == 5 and spec["count"] == 2 and spec["negative_prompt"] == "fog"


def test_generate_on_the_server_leaves_unset_options_to_the_model(service, tmp_path):
    schema = service.get("/v1/models/tiny").json()["parameters_schema"]["properties"]
    proc = cli(service, "generate", "a red fox", "--model", "tiny", "--steps", "2", "--seed", "7",
               "--format", "jpeg", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = artifact_lines(proc.stdout)[0].split("  (")[0]
    assert path.endswith(".jpg")
    native = schema["width"]["default"], schema["height"]["default"]
    assert Image.open(path).size == native


def test_generate_on_the_server_from_an_init_image(service, tmp_path):
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (200, 40, 40)).save(init)
    proc = cli(service, "generate", "a watercolor", "--model", "tiny", "--init-image", init,
               "--denoise", "0.5", "--width", "64", "--height", "64", "--steps", "4", "--seed", "1",
               "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    path = artifact_lines(proc.stdout)[0].split("  (")[0]
    assert "Denoising strength: 0.5" in Image.open(path).text["parameters"]


def test_generate_on_the_server_shows_validation_errors(service, tmp_path):
    proc = cli(service, "generate", "x", "--model", "tiny", "--width", "65", "--out", tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error[validation]: ") and "width" in proc.stderr
    proc = cli(service, "generate", "x", "--model", "nope", "--out", tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("error[model_not_found]: ")


def test_ctrl_c_cancels_a_generation_on_the_server(start_service, tmp_path):
    service = start_service(command="api")  # no worker: the job waits in the queue
    proc = subprocess.Popen([str(BIN / "dreamforge"), "generate", "a cat", "--model", "tiny",
                             "--server", service.base_url, "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    submitted = proc.stderr.readline()  # printed once Ctrl-C cancels
    assert submitted.endswith(f" on {service.base_url} (Ctrl-C cancels it)\n"), submitted
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "canceling job" in stderr and stderr.endswith("the job was canceled\n")
    assert service.get("/v1/jobs").json()["jobs"][0]["status"] == "canceled"
