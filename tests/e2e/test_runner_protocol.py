"""dreamforge-runner over its NDJSON protocol: a real subprocess driven through pipes."""
import pathlib
import time

import pytest

from runner_support import Runner, txt2img_graph


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, dreamforge):
    root = tmp_path_factory.mktemp("models")
    dreamforge("model", "create-tiny", root / "tiny-sd1", "--family", "sd1")
    return root


@pytest.fixture
def runner(models_dir, tmp_path):
    r = Runner(models_dir, tmp_path)
    yield r
    r.close()


def sd15_graph(seed=5, steps=3, sampler="euler"):
    return txt2img_graph("tiny-sd1", seed, steps, sampler)


PROTOCOL = 2


def test_hello_lists_capabilities(runner):
    runner.send({"type": "hello", "protocol": PROTOCOL})
    hello = runner.next()
    assert hello["type"] == "hello" and hello["protocol"] == PROTOCOL
    assert hello["runner"] == "dreamforge-runner"
    caps = hello["capabilities"]
    assert caps["kind"] == "native"
    assert "KSampler" in caps["nodes"] and "euler" in caps["samplers"] and "karras" in caps["schedulers"]
    assert "png" in caps["formats"] and "cpu" in caps["devices"]
    assert caps["device"] == "cpu"  # the runner in these tests is started with --device cpu
    assert caps["host_budget_bytes"] > 0 and caps["device_budget_bytes"] == 0
    # Its node schemas as /object_info shows them, combos filled with the files it can load.
    assert set(caps["object_info"]) == set(caps["nodes"])
    assert caps["object_info"]["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == ["tiny-sd1"]
    assert caps["model_files"]["checkpoints"] == ["tiny-sd1"]
    assert caps["model_files"]["loras"] == []


@pytest.mark.parametrize("hello", [{"type": "hello", "protocol": 1}, {"type": "hello"}])
def test_hello_of_another_protocol_version_is_refused(runner, hello):
    runner.send(hello)
    refusal = runner.next()
    assert refusal["type"] == "error" and refusal["code"] == "protocol"
    assert refusal["details"] == {"worker_protocol": hello.get("protocol", 0), "runner_protocol": PROTOCOL}
    assert f"version {hello.get('protocol', 0)}" in refusal["message"]
    assert f"version {PROTOCOL}" in refusal["message"]
    runner.send({"type": "hello", "protocol": PROTOCOL})
    assert runner.next()["type"] == "hello"


def test_malformed_requests_get_errors_and_the_runner_keeps_serving(runner):
    for line, field in [("{not json", None), ("[1,2]", None), ('{"no_type": 1}', "'type'"),
                        ('{"type": "dance"}', "'dance'"), ('{"type": "cancel"}', "'id'"),
                        ('{"type": "run", "id": "x"}', "'graph'"),
                        ('{"type": "run", "id": "y", "graph": [], "output_dir": "/tmp"}', "'graph'"),
                        ('{"type": "run", "id": "z", "graph": {}, "output_dir": "/tmp", '
                         '"items": [{"index": 0, "seed": -1}]}', "'seed'")]:
        runner.send_line(line)
        event = runner.next()
        assert event["type"] == "error" and event["code"] == "protocol", event
        assert field is None or field in event["message"], event
        if '"run"' in line:  # a run with an id always ends with run_finished
            finished = runner.next()
            assert finished.pop("memory")["device"] == "cpu"
            assert finished == {"type": "run_finished", "id": event["id"], "status": "failed",
                                     "items_completed": 0, "duration_ms": pytest.approx(0, abs=5000)}
    runner.send({"type": "hello", "protocol": PROTOCOL})
    assert runner.next()["type"] == "hello"


def test_batch_run_streams_ordered_events_and_reuses_the_model(runner, tmp_path):
    items = [{"index": i, "seed": 100 + i} for i in range(3)]
    events = runner.run({"type": "run", "id": "r1", "graph": sd15_graph(), "items": items,
                         "output_dir": str(tmp_path / "out")})
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert events[-1]["status"] == "succeeded" and events[-1]["items_completed"] == 3
    artifacts = [e for e in events if e["type"] == "artifact"]
    assert [a["seed"] for a in artifacts] == [100, 101, 102]
    assert [a["item_index"] for a in artifacts] == [0, 1, 2]
    for a in artifacts:
        assert (tmp_path / "out" / a["filename"]).stat().st_size == a["bytes"]
        assert a["content_type"] == "image/png" and a["width"] == 64
    progress = [e for e in events if e["type"] == "progress" and e["item_index"] == 0]
    assert [p["step"] for p in progress] == [1, 2, 3] and progress[-1]["progress"] == 1.0
    # Items after the first reuse the loaded model and the encoded prompts.
    cached = [e for e in events if e["type"] == "cached" and e["item_index"] == 1]
    assert cached and {"4", "6", "7", "5"} <= set(cached[0]["nodes"])
    stages = [e["stage"] for e in events if e["type"] == "stage" and e["item_index"] == 1]
    assert "load_model" not in stages and "encode_prompt" not in stages and "sample" in stages


def test_run_and_free_events_report_the_runners_memory(runner, tmp_path):
    started, *_, finished = runner.run({"type": "run", "id": "m1", "graph": sd15_graph(),
                                        "output_dir": str(tmp_path)})
    before, after = started["memory"], finished["memory"]
    for memory in (before, after):
        assert memory["device"] == "cpu" and "allocator" not in memory  # no accelerator allocator
        assert memory["process_rss_bytes"] > 10 * 2**20
    assert before["models"] == {"device_bytes": 0, "host_bytes": 0, "loaded": [], "loads": 0}
    models = after["models"]
    assert models["loads"] == 1
    assert [(m["kind"], m["name"]) for m in models["loaded"]] == [("checkpoint", "tiny-sd1")]
    # float32 weights on the CPU view the model's files: about their size (9.8 MB on disk).
    assert 5 * 2**20 < models["host_bytes"] < 40 * 2**20 and models["device_bytes"] == 0
    assert models["loaded"][0]["host_bytes"] == models["host_bytes"]

    runner.send({"type": "free"})
    freed = runner.next()
    assert freed["type"] == "freed"
    assert freed["memory"]["models"] == {"device_bytes": 0, "host_bytes": 0, "loaded": [], "loads": 1}


def test_invalid_graph_reports_comfyui_node_errors(runner, tmp_path):
    graph = sd15_graph()
    graph["3"]["inputs"]["steps"] = 0
    graph["3"]["inputs"]["sampler_name"] = "nope"
    events = runner.run({"type": "run", "id": "bad", "graph": graph, "output_dir": str(tmp_path)})
    error = next(e for e in events if e["type"] == "error")
    assert error["code"] == "validation"
    reasons = {r["type"] for r in error["details"]["node_errors"]["3"]["errors"]}
    assert reasons == {"value_smaller_than_min", "value_not_in_list"}
    assert events[-1]["status"] == "failed"


def test_cancel_stops_a_run_between_steps(runner, tmp_path):
    runner.send({"type": "run", "id": "long", "graph": sd15_graph(steps=400),
                 "output_dir": str(tmp_path)})
    runner.until(lambda e: e["type"] == "progress" and e["step"] >= 2)
    runner.send({"type": "cancel", "id": "long"})
    events = runner.until(lambda e: e["type"] == "run_finished")
    assert events[-1]["status"] == "canceled"
    assert any(e["type"] == "error" and e["code"] == "canceled" for e in events)
    assert not any(e["type"] == "artifact" for e in events)
    runner.send({"type": "hello", "protocol": PROTOCOL})
    assert runner.next()["type"] == "hello"


def test_missing_model_and_shutdown(runner, tmp_path):
    graph = sd15_graph()
    graph["4"]["inputs"]["ckpt_name"] = "../../etc/passwd"
    events = runner.run({"type": "run", "id": "m", "graph": graph, "output_dir": str(tmp_path)})
    assert next(e for e in events if e["type"] == "error")["code"] == "validation"
    runner.send({"type": "shutdown"})
    assert runner.next()["type"] == "bye"
    assert runner.proc.wait(timeout=30) == 0


@pytest.mark.parametrize("close_after", [0.0, 0.01, 0.03, 0.06, 0.1])
def test_the_runner_exits_cleanly_however_soon_its_input_closes(models_dir, tmp_path, close_after):
    # The worker closes the runner's stdin as soon as "bye" arrives, while the runner is ending:
    # its input reader must not wake up in an exit that is tearing down what it uses (it aborted
    # when stdin closed a few milliseconds into the exit).
    runner = Runner(models_dir, tmp_path)
    runner.send({"type": "free"})
    assert runner.next()["type"] == "freed"
    runner.send({"type": "shutdown"})
    assert runner.next()["type"] == "bye"
    time.sleep(close_after)
    runner.proc.stdin.close()
    assert runner.proc.wait(timeout=30) == 0, runner.proc.stderr.read()


def test_second_run_reuses_the_loaded_model_and_prompts(runner, tmp_path):
    first = runner.run({"type": "run", "id": "a", "graph": sd15_graph(seed=1),
                        "output_dir": str(tmp_path)})
    assert "load_model" in [e.get("stage") for e in first]
    second = runner.run({"type": "run", "id": "b", "graph": sd15_graph(seed=2),
                         "output_dir": str(tmp_path)})
    assert second[-1]["status"] == "succeeded"
    assert "load_model" not in [e.get("stage") for e in second]
    cached = next(e for e in second if e["type"] == "cached")
    assert {"4", "6", "7"} <= set(cached["nodes"])
    files = sorted(p.name for p in tmp_path.glob("df_*.png"))
    assert files == ["df_00001_.png", "df_00002_.png"]  # ComfyUI's counter continues


def test_two_pass_advanced_sampling_from_a_loaded_image_to_a_preview(runner, tmp_path):
    """LoadImage -> ImageScale -> VAEEncode -> KSamplerAdvanced (steps 0-2, leftover noise) ->
    KSamplerAdvanced (steps 2-4, no new noise) -> VAEDecode -> PreviewImage."""
    from PIL import Image
    Image.new("RGB", (50, 30), (200, 40, 90)).save(tmp_path / "photo.png")

    def advanced(add_noise, start, end, leftover, latent):
        return {"class_type": "KSamplerAdvanced", "inputs": {
            "model": ["4", 0], "add_noise": add_noise, "noise_seed": 9, "steps": 4, "cfg": 5.0,
            "sampler_name": "euler", "scheduler": "karras", "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": latent, "start_at_step": start,
            "end_at_step": end, "return_with_leftover_noise": leftover}}

    graph = {key: node for key, node in sd15_graph().items() if key in ("4", "6", "7")}
    graph.update({
        "10": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
        "11": {"class_type": "ImageScale", "inputs": {"image": ["10", 0], "upscale_method": "lanczos",
                                                      "width": 72, "height": 48, "crop": "center"}},
        "12": {"class_type": "VAEEncode", "inputs": {"pixels": ["11", 0], "vae": ["4", 2]}},
        "13": advanced("enable", 0, 2, "enable", ["12", 0]),
        "14": advanced("disable", 2, 10000, "disable", ["13", 0]),
        "15": {"class_type": "VAEDecode", "inputs": {"samples": ["14", 0], "vae": ["4", 2]}},
        "16": {"class_type": "PreviewImage", "inputs": {"images": ["15", 0]}},
    })
    events = runner.run({"type": "run", "id": "adv", "graph": graph, "output_dir": str(tmp_path / "out")})
    assert events[-1]["status"] == "succeeded", events
    progress = [(e["node"], e["step"], e["total"]) for e in events if e["type"] == "progress"]
    assert progress == [("13", 1, 2), ("13", 2, 2), ("14", 1, 2), ("14", 2, 2)]
    artifact = next(e for e in events if e["type"] == "artifact")
    assert artifact["kind"] == "temp" and (artifact["width"], artifact["height"]) == (72, 48)
    assert pathlib.Path(artifact["path"]).parent == tmp_path / "out" / "temp"
    assert artifact["filename"].startswith("ComfyUI_temp_")


def test_the_service_offers_the_node_schemas_its_runner_advertises(start_service):
    # The service validates natively-run graphs and serves /object_info from the node packs it is
    # built with; its runner advertises its own in hello. They must be one and the same offer.
    service = start_service()
    runner = Runner(service.data_dir / "models" / "checkpoints", service.data_dir / "input")
    try:
        runner.send({"type": "hello", "protocol": PROTOCOL})
        advertised = runner.next()["capabilities"]["object_info"]
    finally:
        runner.close()
    served = service.get("/object_info").json()
    assert set(served) == set(advertised)
    differing = [name for name in advertised if served[name] != advertised[name]]
    assert not differing, f"{len(differing)} node definitions differ, e.g. {differing[:5]}"
