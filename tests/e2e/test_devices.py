"""Memory headroom before a job starts and several devices in one service, on this machine's CPU:
a preset whose memory need cannot fit fails unstarted with the numbers, `--devices cpu,cpu` runs
two workers and jobs go to the one whose runner has their model warm, and a device that does not
exist is taken out of rotation with one log line while the others keep working."""
import pathlib

from e2e_support import wait_until
from service_support import generate_body, install_tiny_model

ROUTING_EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "routing.example.yaml"


def write_routing_with(data_dir, presets):
    """The built-in routing table plus `presets` ({name: memory_mb}), as <data>/config/routing.yaml."""
    lines = [f"  {name}:\n    width: 64\n    height: 64\n    steps: 2\n    sampler: euler\n"
             f"    scheduler: normal\n    cfg: 7.0\n    memory_mb: {memory_mb}\n"
             for name, memory_mb in presets.items()]
    text = ROUTING_EXAMPLE.read_text().replace("\npresets:\n", "\npresets:\n" + "".join(lines), 1)
    config = pathlib.Path(data_dir) / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "routing.yaml").write_text(text)


def output(service):
    """What the service printed, for a wait that timed out."""
    return lambda: "".join(service.output)


def runners(service):
    """Every runner /healthz lists, with the device it is on."""
    devices = service.get("/healthz").json()["devices"]
    return [{**runner, "device": device["device"]} for device in devices for runner in device["runners"]]


def idle_runners(service, count):
    found = runners(service)
    return found if len(found) == count and all(r["state"] == "idle" for r in found) else None


def ran_on(service, job_id):
    return service.get(f"/v1/jobs/{job_id}").json()["steps"][-1]["worker_id"]


def test_a_preset_that_cannot_fit_fails_unstarted_with_the_numbers(start_service, tmp_path):
    write_routing_with(tmp_path / "data", {"too-big": 100_000_000, "fits": 1})
    service = start_service()

    job = service.create_job(generate_body(preset="too-big"))
    assert job["spec"]["memory_need"] == {"preset": "too-big", "memory_mb": 100_000_000,
                                          "device_class": "cpu"}
    failed = service.wait_for_job(job["id"])
    assert failed["status"] == "failed"
    error = failed["error"]
    assert error["code"] == "insufficient_memory"
    details = error["details"]
    assert details["preset"] == "too-big" and details["device"] == "cpu"
    assert details["need_bytes"] == 100_000_000 << 20
    assert 0 < details["free_bytes"] <= details["total_bytes"] < details["need_bytes"]
    assert error["message"].startswith("The preset 'too-big' needs ")
    assert "cpu has" in error["message"] and "the job was not started" in error["message"]
    kinds = [kind for _, kind, _ in service.events(job["id"])]
    assert "job_started" not in kinds and kinds[-1] == "job_finished"
    assert failed["steps"] == [], "no runner step was started for it"

    fits = service.wait_for_job(service.create_job(generate_body(preset="fits"))["id"])
    assert fits["status"] == "succeeded", fits
    assert fits["spec"]["memory_need"]["memory_mb"] == 1


def test_two_cpu_workers_and_each_job_goes_where_its_model_is_warm(start_service, tmp_path):
    install_tiny_model(tmp_path / "data", name="tiny2")
    service = start_service("--devices", "cpu,cpu")
    wait_until(lambda: idle_runners(service, 2), "two idle CPU runners", 60, output(service))
    assert {r["device"] for r in runners(service)} == {"cpu"}

    # Both models at once: each worker takes one and keeps it warm.
    first = [service.create_job(generate_body(model_id=model)) for model in ("tiny", "tiny2")]
    for job in first:
        assert service.wait_for_job(job["id"])["status"] == "succeeded"
    checkpoint = {job["spec"]["model_id"]: job["spec"]["checkpoint"] for job in first}

    handed = []
    for model in ["tiny2", "tiny", "tiny", "tiny2", "tiny", "tiny2"]:
        before = wait_until(lambda: idle_runners(service, 2), "both runners idle", 60, output(service))
        warm = [r["worker_id"] for r in before if checkpoint[model] in r["models"]]
        job = service.create_job(generate_body(model_id=model))
        assert service.wait_for_job(job["id"])["status"] == "succeeded"
        if warm:
            assert ran_on(service, job["id"]) in warm, (model, before)
        handed.extend(data for _, kind, data in service.events(job["id"])
                      if kind == "log" and data.get("code") == "handed_over")
    # Whichever worker claimed a job, it ran where its model was warm; a job claimed by the other
    # worker got there through a hand-off, which the job's events tell.
    for event in handed:
        assert event["data"]["to"] in {r["worker_id"] for r in runners(service)}


def test_a_device_that_does_not_exist_leaves_rotation_and_the_others_keep_working(start_service):
    service = start_service("--devices", "cpu,7")
    line = wait_until(lambda: next((l for l in service.output
                                    if "device cuda:7 taken out of rotation: " in l), None),
                      "the out-of-rotation line", 60, output(service))
    assert "cuda:7" in line
    job = service.wait_for_job(service.create_job(generate_body())["id"])
    assert job["status"] == "succeeded"
    states = {r["device"]: r for r in runners(service)}
    assert states["cuda:7"]["state"] == "out_of_rotation" and states["cuda:7"]["reason"]
    assert states["cpu"]["state"] == "idle"
    assert not any("every device is out of rotation" in l for l in service.output)


def test_when_every_device_is_out_the_service_says_so_loudly(start_service):
    service = start_service("--devices", "7")
    wait_until(lambda: any("every device is out of rotation" in l for l in service.output),
               "the every-device line", 60, output(service))
    assert sum("taken out of rotation" in l for l in service.output) == 1
    ready = service.get("/readyz")
    assert ready.status_code == 503
    devices = ready.json()["details"]["checks"]["devices"]
    assert not devices["ok"] and "cuda:7" in devices["error"], devices
