"""dreamforge-comfy-runner over its stdin/stdout protocol, forwarding runs to a `dreamforge serve`
on loopback that stands in as the ComfyUI server."""
import hashlib
import io
import pathlib
import signal

import pytest
from PIL import Image

from backends import free_port
from e2e_support import BIN
from runner_support import ProtocolProcess
from service_support import comfy_graph

PROTOCOL = 2


class ComfyRunner(ProtocolProcess):
    """A dreamforge-comfy-runner process forwarding to the server at `url`."""

    def __init__(self, url, input_dir, *args):
        super().__init__([BIN / "dreamforge-comfy-runner", "--url", url, "--input-dir", input_dir,
                          *args])

    def hello(self):
        self.send({"type": "hello", "protocol": PROTOCOL})
        return self.until(lambda e: e["type"] in ("hello", "error"))[-1]


@pytest.fixture
def backend(start_service):
    return start_service()


@pytest.fixture
def runner(backend, tmp_path):
    started = ComfyRunner(backend.base_url, tmp_path / "runner-input", "--name", "loopback")
    yield started
    started.close()


def run_request(run_id, graph, output_dir, items=None, **extra):
    request = {"type": "run", "id": run_id, "graph": graph, "output_dir": str(output_dir), **extra}
    if items is not None:
        request["items"] = items
    return request


def of_type(events, kind):
    return [e for e in events if e["type"] == kind]


def test_hello_lists_the_servers_node_types(runner, backend):
    hello = runner.hello()
    assert hello["type"] == "hello", hello
    assert hello["runner"] == "dreamforge-comfy-runner"
    assert hello["protocol"] == PROTOCOL
    capabilities = hello["capabilities"]
    assert capabilities["kind"] == "comfy"
    assert capabilities["backend_url"] == backend.base_url
    server_nodes = set(backend.get("/object_info").json())
    assert set(capabilities["nodes"]) == server_nodes
    assert {"KSampler", "LoadImage", "SaveImage"} <= set(capabilities["nodes"])
    assert set(capabilities["object_info"]) == server_nodes
    assert "euler" in capabilities["samplers"]
    assert capabilities["device"] == "cpu"
    assert "checkpoints" in capabilities["model_files"]


@pytest.mark.parametrize("hello", [{"type": "hello", "protocol": 1}, {"type": "hello"}])
def test_another_protocol_version_is_refused_naming_both(runner, hello):
    runner.send(hello)
    error = runner.until(lambda e: e["type"] == "error")[-1]
    assert error["code"] == "protocol"
    assert error["details"] == {"worker_protocol": hello.get("protocol", 0), "runner_protocol": PROTOCOL}
    assert f"version {hello.get('protocol', 0)}" in error["message"], error
    assert runner.hello()["type"] == "hello"  # the runner keeps serving


def test_an_unreachable_server_fails_hello_and_the_start(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    runner = ComfyRunner(url, tmp_path)
    error = runner.hello()
    assert error["type"] == "error"
    assert error["code"] == "unavailable"
    assert url in error["message"]
    assert runner.proc.wait(timeout=30) != 0


def test_a_batch_of_two_gives_two_artifacts_with_the_items_seeds(runner, tmp_path):
    runner.hello()
    out = tmp_path / "out"
    events = runner.run(run_request("job-1/1", comfy_graph(prefix="batch"), out,
                                    items=[{"index": 0, "seed": 11}, {"index": 1, "seed": 12}]))
    finished = events[-1]
    assert finished["status"] == "succeeded", events
    assert finished["items_completed"] == 2
    assert finished["memory"]["device"] == "cpu"
    assert finished["memory"]["process_rss_bytes"] > 0
    assert of_type(events, "run_started")[0]["items"] == 2
    assert [(e["item_index"], e["seed"]) for e in of_type(events, "item_started")] == [(0, 11), (1, 12)]
    assert [(e["item_index"], e["seed"]) for e in of_type(events, "item_finished")] == [(0, 11), (1, 12)]
    assert of_type(events, "executing") and of_type(events, "progress")
    assert all(0 <= e["progress"] <= 1 for e in of_type(events, "progress"))
    artifacts = of_type(events, "artifact")
    assert [(a["item_index"], a["seed"], a["kind"]) for a in artifacts] == [(0, 11, "output"), (1, 12, "output")]
    for artifact in artifacts:
        path = pathlib.Path(artifact["path"])
        assert path.parent == out
        data = path.read_bytes()
        assert artifact["bytes"] == len(data)
        assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
        assert (artifact["format"], artifact["content_type"]) == ("png", "image/png")
        assert (artifact["width"], artifact["height"]) == Image.open(io.BytesIO(data)).size == (64, 64)
        assert artifact["node"] == "9"
    assert artifacts[0]["sha256"] != artifacts[1]["sha256"]


def test_a_node_type_the_server_lacks_is_a_validation_error(runner, tmp_path):
    graph = comfy_graph()
    graph["12"] = {"class_type": "NoSuchNode", "inputs": {"image": ["8", 0]}}
    events = runner.run(run_request("job-2/1", graph, tmp_path / "out"))
    assert events[-1]["status"] == "failed"
    error = of_type(events, "error")[0]
    assert error["code"] == "validation"
    assert "has no node type 'NoSuchNode'" in error["message"], error
    assert "error" in error["details"] and "node_errors" in error["details"]
    assert not of_type(events, "artifact")


def test_an_uploaded_input_runs_img2img(runner, tmp_path, backend):
    input_dir = tmp_path / "runner-input"
    (input_dir / "mine").mkdir(parents=True)
    Image.new("RGB", (64, 64), (200, 40, 40)).save(input_dir / "mine" / "photo.png")
    graph = comfy_graph(prefix="img2img")
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": "mine/photo.png"}}
    graph["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    graph["3"]["inputs"]["latent_image"] = ["11", 0]
    graph["3"]["inputs"]["denoise"] = 0.5
    assert not (backend.data_dir / "input" / "mine" / "photo.png").exists()
    runner.hello()
    events = runner.run(run_request("job-3/1", graph, tmp_path / "out", items=[{"index": 0, "seed": 3}]))
    assert events[-1]["status"] == "succeeded", events
    assert (backend.data_dir / "input" / "mine" / "photo.png").exists()
    assert len(of_type(events, "artifact")) == 1


def long_run(run_id, output_dir):
    """A run of the most items a run may have, far longer than the test needs it to last."""
    return run_request(run_id, comfy_graph(steps=20, prefix="long"), output_dir,
                       items=[{"index": i, "seed": i} for i in range(100)])


def test_cancel_mid_run_ends_canceled(runner, tmp_path):
    runner.hello()
    runner.send(long_run("job-4/1", tmp_path / "out"))
    runner.until(lambda e: e["type"] == "item_finished")
    runner.send({"type": "cancel", "id": "job-4/1"})
    events = runner.until(lambda e: e["type"] == "run_finished")
    assert events[-1]["status"] == "canceled", events
    assert events[-1]["items_completed"] < 100
    assert of_type(events, "error")[-1]["code"] == "canceled"
    runner.send({"type": "free"})
    freed = runner.until(lambda e: e["type"] == "freed")[-1]
    assert freed["memory"]["process_rss_bytes"] > 0


def test_a_server_killed_mid_run_is_unavailable(runner, backend, tmp_path):
    runner.hello()
    runner.send(long_run("job-5/1", tmp_path / "out"))
    runner.until(lambda e: e["type"] == "item_finished")
    backend.stop(sig=signal.SIGKILL)
    events = runner.until(lambda e: e["type"] == "run_finished")
    assert events[-1]["status"] == "failed"
    error = of_type(events, "error")[-1]
    assert error["code"] == "unavailable", error
    assert backend.base_url in error["message"]
