"""The machine's devices as a real `dreamforge serve` reports them: /system_stats, /healthz and the
GPU memory gauges of /metrics (on a machine without an NVIDIA driver: the CPU and its RAM)."""
import ctypes
import pathlib
import time

import pytest

from service_support import generate_body


def nvidia_driver_present():
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


without_driver = pytest.mark.skipif(nvidia_driver_present(),
                                    reason="this machine has an NVIDIA driver: GPUs are reported")


def cpu_entry(health):
    entries = [d for d in health["devices"] if d["type"] == "cpu"]
    assert len(entries) == 1, health
    return entries[0]


@without_driver
def test_system_stats_reports_the_cpu_with_the_machines_ram(start_service):
    service = start_service(model=False)
    stats = service.get("/system_stats").json()
    assert stats["system"]["ram_total"] > 0 and stats["system"]["ram_free"] > 0
    assert len(stats["devices"]) == 1
    device = stats["devices"][0]
    assert device["name"] == "cpu" and device["type"] == "cpu"
    assert device["index"] == 0 and isinstance(device["index"], int)
    assert device["vram_total"] == stats["system"]["ram_total"]
    for key in ("vram_total", "vram_free", "torch_vram_total", "torch_vram_free"):
        assert isinstance(device[key], int) and device[key] > 0, key


def idle_health(service, timeout=15.0):
    """/healthz once the worker has published its runner as idle after the job."""
    deadline = time.monotonic() + timeout
    while True:
        health = service.get("/healthz").json()
        runners = [r for d in health["devices"] for r in d["runners"]]
        if (runners and all(r["state"] == "idle" for r in runners)) or time.monotonic() > deadline:
            return health
        time.sleep(0.1)


@without_driver
def test_health_lists_the_cpu_and_its_runner_after_a_job(start_service):
    service = start_service()
    job = service.create_job(generate_body())
    assert service.wait_for_job(job["id"])["status"] == "succeeded"
    health = idle_health(service)
    assert health["status"] == "ok"
    assert [d["type"] for d in health["devices"]] == ["cpu"]
    cpu = cpu_entry(health)
    assert cpu["device"] == "cpu"
    assert cpu["memory"]["total_bytes"] > 0 and cpu["memory"]["available_bytes"] > 0
    assert cpu["memory"]["available_bytes"] <= cpu["memory"]["total_bytes"]
    assert len(cpu["runners"]) == 1, cpu
    runner = cpu["runners"][0]
    assert runner["worker_id"]
    assert runner["state"] == "idle"
    assert runner["pid"] > 0
    cmdline = pathlib.Path(f"/proc/{runner['pid']}/cmdline").read_bytes().split(b"\0")
    assert pathlib.Path(cmdline[0].decode()).name == "dreamforge-runner"
    assert runner["memory_used_bytes"] > 0
    # The runner's own memory report names what its cache keeps warm: the job's checkpoint.
    assert runner["models"] == ["tiny"], runner
    assert runner["models_bytes"] > 0


def test_api_process_without_workers_lists_no_runners(start_service):
    service = start_service(command="api", model=False)
    health = service.get("/healthz").json()
    assert health["status"] == "ok"
    assert all(device["runners"] == [] for device in health["devices"])
    assert cpu_entry(health)["memory"]["total_bytes"] > 0


@without_driver
def test_metrics_declare_gpu_memory_gauges_without_series(start_service):
    service = start_service(model=False)
    text = service.get("/metrics").text
    for name in ("total", "used", "free"):
        assert f"# TYPE dreamforge_gpu_memory_{name}_bytes gauge" in text
        assert f"dreamforge_gpu_memory_{name}_bytes{{" not in text
