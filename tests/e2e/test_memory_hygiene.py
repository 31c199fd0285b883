"""Memory hygiene (OR-001) on the CPU: every step says whether its runner's memory came back, a
stopped runner's memory is waited for before the job is marked, and out-of-memory is diagnosed."""
import os
import pathlib

import pytest

from service_support import comfy_graph, generate_body

# EmptyLatentImage at its largest: 4096 latents of 4 x 2048 x 2048 floats, 256 GiB in one allocation.
HUGE_LATENT = {"width": 16384, "height": 16384, "batch_size": 4096}
HUGE_LATENT_BYTES = 4096 * 4 * 2048 * 2048 * 4

STEP_MEMORY = ("gpu_mem_used_before", "gpu_mem_used_after", "peak_gpu_mem_used")


def pid_alive(pid):
    status = pathlib.Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except FileNotFoundError:
        return False


def gpu_events(service, job_id):
    return [data for _, kind, data in service.events(job_id) if kind == "gpu"]


def machine_memory_bytes():
    fields = dict(line.split(":", 1) for line in pathlib.Path("/proc/meminfo").read_text().splitlines())
    return sum(int(fields[name].split()[0]) * 1024 for name in ("MemTotal", "SwapTotal"))


def huge_allocation_fails_at_once():
    """The kernel refuses an allocation larger than its memory and swap unless it overcommits
    blindly (vm.overcommit_memory = 1): then the latent would really be filled, so the test skips."""
    overcommit = pathlib.Path("/proc/sys/vm/overcommit_memory").read_text().strip()
    return overcommit != "1" and machine_memory_bytes() * 2 < HUGE_LATENT_BYTES


def test_a_successful_job_ends_with_its_memory_returned(start_service):
    # A generous bound, set through the flag: a fresh runner's first run also pages in libtorch's
    # code and starts its thread pools (about 30 MiB on a 4-core machine), which no model accounts for.
    service = start_service("--memory-epsilon-mb", "256")
    for prompt in ("first", "second"):  # the first loads the model, the second finds it warm
        job = service.create_job(generate_body(prompt=prompt))
        done = service.wait_for_job(job["id"])
        assert done["status"] == "succeeded", done["error"]
        step = done["steps"][0]
        assert step["memory_kind"] == "process_rss" and step["device"] == "cpu"
        assert step["peak_gpu_mem_used"] >= step["gpu_mem_used_before"] > 0
        assert step["gpu_mem_used_after"] > 0
        [event] = gpu_events(service, job["id"])
        assert event["code"] == "memory_returned", event
        data = event["data"]
        assert data["memory_kind"] == "process_rss" and data["device"] == "cpu"
        assert [data[name] for name in STEP_MEMORY] == [step[name] for name in STEP_MEMORY]
        assert data["epsilon_bytes"] == 256 << 20
        assert (data["gpu_mem_used_after"] - data["models_bytes_after"]
                <= data["gpu_mem_used_before"] - data["models_bytes_before"] + data["epsilon_bytes"])
        assert event["plain"]
    metrics = service.get("/metrics").text
    for phase in ("before", "after", "peak"):
        assert f'dreamforge_runner_memory_bytes{{device="cpu",phase="{phase}"}}' in metrics


def test_a_job_stopped_by_its_step_timeout_waits_for_the_runners_memory(start_service):
    service = start_service("--step-timeout", "2", "--kill-grace", "1")
    # Far more work than any machine gets through in 2 s.
    job = service.create_job(generate_body(steps=150, count=100))
    done = service.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "timeout"
    events = service.events(job["id"])
    kinds = [kind for _, kind, _ in events]
    [released] = [data for _, kind, data in events if kind == "gpu"]
    assert released["code"] == "memory_released", released
    assert kinds.index("gpu") < kinds.index("job_finished")  # waited for before the job was marked
    data = released["data"]
    assert data["memory_kind"] == "process_rss" and data["held_bytes"] == 0
    assert 0 <= data["waited_ms"] <= data["wait_bound_ms"]
    assert not pid_alive(data["pid"])
    assert done["steps"][0]["gpu_mem_used_after"] == 0


@pytest.mark.skipif(not huge_allocation_fails_at_once(),
                    reason="this machine would grant a 256 GiB allocation instead of refusing it")
def test_out_of_memory_is_diagnosed_the_runner_retired_and_the_next_job_runs(start_service):
    # The job after the out-of-memory runs on a fresh runner: its first run pages in libtorch and
    # starts thread pools, as in the first test, so the same generous bound applies.
    service = start_service("--memory-epsilon-mb", "256")
    graph = comfy_graph()
    graph["5"]["inputs"] = dict(HUGE_LATENT)
    job = service.create_job({"type": "workflow", "workflow": graph})
    done = service.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "failed" and done["attempts"] == 1  # not retried, not downgraded
    error = done["error"]
    assert error["code"] == "oom", error
    details = error["details"]
    assert details["memory_kind"] == "process_rss" and details["device"] == "cpu"
    assert details["requested"] == {"node": "5", "class_type": "EmptyLatentImage", **HUGE_LATENT}
    assert details["preset"] is None  # a workflow job names no preset
    assert details["peak_gpu_mem_used"] > 0 and details["free_bytes_at_start"] > 0
    assert "smaller image size or batch" in details["suggestion"]
    [released] = gpu_events(service, job["id"])
    assert released["code"] == "memory_released", released
    assert not pid_alive(released["data"]["pid"])  # the runner was not trusted with another job

    after = service.create_job(generate_body(prompt="after the out-of-memory"))
    done_after = service.wait_for_job(after["id"])
    assert done_after["status"] == "succeeded", done_after["error"]
    [returned] = gpu_events(service, after["id"])
    assert returned["code"] == "memory_returned"
