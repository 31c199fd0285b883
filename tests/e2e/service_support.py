"""Runs `dreamforge serve` (or api/worker) for end-to-end tests and talks to it over real HTTP."""
import json
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

import requests

from e2e_support import BIN, run_dreamforge

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


def install_tiny_model(data_dir, name="tiny", family="sd1"):
    """Creates a tiny random-weight model inside the service's data directory."""
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", name, "--family", family)


class Service:
    """A dreamforge service process on 127.0.0.1 with a free port, and an HTTP session to it."""

    def __init__(self, data_dir, *args, command="serve", env=None):
        self.data_dir = pathlib.Path(data_dir)
        self.args = [str(a) for a in args]
        self.command = command
        self.env = {**os.environ, **(env or {})}
        self.process = None
        self.base_url = None
        self.http = requests.Session()
        self.output = []

    def start(self, port=0, timeout=60):
        argv = [str(BIN / "dreamforge"), self.command, "--data-dir", str(self.data_dir)]
        if self.command != "worker":
            argv += ["--port", str(port)]
        self.process = subprocess.Popen(argv + self.args, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=self.env)
        started = threading.Event()
        ready = []  # set once the process announced it serves (a process may also just exit)

        def pump():
            for line in self.process.stdout:
                self.output.append(line)
                found = re.search(r"serving http://([\d.]+:\d+)", line)
                if found:
                    self.base_url = "http://" + found.group(1)
                    ready.append(True)
                    started.set()
                if "worker running" in line:
                    ready.append(True)
                    started.set()
            started.set()

        threading.Thread(target=pump, daemon=True).start()
        if not started.wait(timeout) or not ready or self.process.poll() is not None:
            raise AssertionError("dreamforge did not start:\n" + "".join(self.output))
        return self

    def url(self, path):
        """The URL of a path on the service; an absolute URL (an object store's presigned one)
        stays as it is."""
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def get(self, path, **kwargs):
        return self.http.get(self.url(path), timeout=30, **kwargs)

    def post(self, path, body=None, **kwargs):
        if body is not None:
            kwargs["json"] = body
        return self.http.post(self.url(path), timeout=30, **kwargs)

    def create_job(self, body, **kwargs):
        response = self.post("/v1/jobs", body, **kwargs)
        assert response.status_code in (200, 202), response.text
        return response.json()

    def wait_for_job(self, job_id, statuses=("succeeded", "failed", "canceled"), timeout=120):
        # The monotonic clock: the wall clock may be stepped meanwhile (NTP on a fresh machine).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s:\n" + "".join(self.output))

    def iter_events(self, job_id, last_event_id=None, timeout=120):
        """Yields the job's SSE events as (id, event, data) while they arrive; stopping the
        iteration drops the connection."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        with self.http.get(self.url(f"/v1/jobs/{job_id}/events"), headers=headers, stream=True,
                           timeout=timeout) as response:
            assert response.status_code == 200, response.text
            assert response.headers["Content-Type"].startswith("text/event-stream")
            event = {}
            for line in response.iter_lines(decode_unicode=True):
                if line == "":
                    if "data" in event:
                        yield int(event["id"]), event.get("event", "message"), json.loads(event["data"])
                    event = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    event[field] = value[1:] if value.startswith(" ") else value

    def events(self, job_id, last_event_id=None, stop_after=None, timeout=120):
        """The job's SSE events [(id, event, data)] until the stream ends, or until `stop_after`
        events were read (then the connection is dropped)."""
        received = []
        for event in self.iter_events(job_id, last_event_id, timeout):
            received.append(event)
            if stop_after is not None and len(received) >= stop_after:
                break
        return received

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.http.close()
        return self.process.returncode if self.process else None


def generate_body(**overrides):
    """A small, fast generate job on the tiny model."""
    body = {"model_id": "tiny", "prompt": "a lighthouse at dusk", "width": 64, "height": 64,
            "steps": 3, "seed": 1234}
    body.update(overrides)
    return body


def comfy_graph(ckpt="tiny", seed=5, steps=3, prefix="wf"):
    """ComfyUI's default text-to-image topology (API format) on a small latent."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red boat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }


def failing_graph(data_dir):
    """A graph /prompt accepts that fails while it runs: LoadImage node "10" reads a corrupt PNG
    (written into the service's input folder) for an image-to-image pass."""
    input_dir = pathlib.Path(data_dir) / "input"
    input_dir.mkdir(parents=True, exist_ok=True)
    (input_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    graph = comfy_graph()
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": "broken.png"}}
    graph["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    graph["3"]["inputs"]["latent_image"] = ["11", 0]
    return graph
