"""Runners that hang, crash, babble or run out of memory are contained; a killed service resumes."""
import os
import pathlib
import signal
import time

from service_support import FIXTURES, generate_body

MISBEHAVING_RUNNER = FIXTURES / "misbehaving_runner.py"


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes only once reaped; dreamforge reaps its runners.
    status = pathlib.Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def start_misbehaving(start_service, tmp_path, mode, *flags):
    pid_dir = tmp_path / "runner-pids"
    pid_dir.mkdir(exist_ok=True)
    service = start_service("--runner", MISBEHAVING_RUNNER, "--kill-grace", "1", "--retry-base", "0.2",
                            *flags, env={"MISBEHAVE": mode, "RUNNER_PID_DIR": str(pid_dir)})
    return service, pid_dir


def runner_pids(pid_dir):
    return [int(p.name) for p in pid_dir.iterdir()]


def test_a_hanging_runner_is_stopped_with_term_then_kill_and_the_job_times_out(start_service, tmp_path):
    service, pid_dir = start_misbehaving(start_service, tmp_path, "hang_ignoring_term", "--step-timeout", "2")
    job = service.create_job(generate_body())
    done = service.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "timeout"
    assert done["error"]["details"]["runner_gone"] is True
    assert "killed by signal 9" in done["error"]["details"]["exit"]  # TERM was ignored: KILL
    assert done["attempts"] == 1  # a timeout is not retried
    step = done["steps"][0]
    assert step["error"]["code"] == "timeout" and step["gpu_mem_used_after"] == 0
    assert not any(pid_alive(pid) for pid in runner_pids(pid_dir))
    # The worker carries on: the next job gets a fresh runner (which hangs too).
    second = service.create_job(generate_body(prompt="next"))
    assert service.wait_for_job(second["id"], timeout=60)["error"]["code"] == "timeout"
    assert len(runner_pids(pid_dir)) == 2
    assert service.get("/healthz").status_code == 200


def test_a_silent_runner_is_stopped_as_hung_and_the_job_retried(start_service, tmp_path):
    service, pid_dir = start_misbehaving(start_service, tmp_path, "hang", "--runner-silence-timeout",
                                         "1", "--max-attempts", "2")
    job = service.create_job(generate_body())
    done = service.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "runner_hung"
    assert "sent nothing for 1 s" in done["error"]["message"]
    assert done["attempts"] == 2
    assert [step["error"]["code"] for step in done["steps"]] == ["runner_hung", "runner_hung"]
    events = [e[1] for e in service.events(job["id"])]
    assert events.count("retry_scheduled") == 1 and events.count("job_finished") == 1
    # Each attempt had a runner of its own, and neither is left running.
    assert len(runner_pids(pid_dir)) == 2
    assert not any(pid_alive(pid) for pid in runner_pids(pid_dir))


def test_a_crashing_runner_is_retried_with_backoff_then_fails_as_runner_crashed(start_service, tmp_path):
    service, pid_dir = start_misbehaving(start_service, tmp_path, "abort", "--max-attempts", "3")
    job = service.create_job(generate_body())
    done = service.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "runner_crashed"
    assert "signal 6" in done["error"]["message"]
    assert done["attempts"] == 3 and len(done["steps"]) == 3
    events = service.events(job["id"])
    retries = [e for e in events if e[1] == "retry_scheduled"]
    assert [r[2]["data"]["retry_in_ms"] for r in retries] == [200, 400]
    assert [e[1] for e in events].count("job_finished") == 1
    assert not any(pid_alive(pid) for pid in runner_pids(pid_dir))
    metrics = service.get("/metrics").text
    assert 'dreamforge_errors_total{code="runner_crashed"} 3' in metrics


def test_a_runner_writing_garbage_is_stopped(start_service, tmp_path):
    service, pid_dir = start_misbehaving(start_service, tmp_path, "garbage", "--max-attempts", "1")
    job = service.create_job(generate_body())
    done = service.wait_for_job(job["id"], timeout=60)
    assert done["error"]["code"] == "runner_crashed"
    assert done["error"]["details"]["reason"] == "protocol"
    assert "this is not the runner protocol" in done["error"]["message"]
    assert not any(pid_alive(pid) for pid in runner_pids(pid_dir))


def test_out_of_memory_is_its_own_error_with_diagnostics(start_service, tmp_path):
    service, _ = start_misbehaving(start_service, tmp_path, "oom")
    job = service.create_job(generate_body(width=128, height=64, count=2))
    done = service.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "failed" and done["attempts"] == 1  # not retried, not downgraded
    error = done["error"]
    assert error["code"] == "oom"
    details = error["details"]
    assert details["requested"] == {"width": 128, "height": 64, "count": 2}
    assert details["peak_gpu_mem_used"] > 0 and details["free_bytes_at_start"] > 0
    assert "20.00 GiB" in details["reason"]
    assert done["spec"]["width"] == 128


def test_kill_9_mid_job_then_restart_completes_the_job_exactly_once(start_service, stored_keys, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service("--lease", "2")
    job = service.create_job(generate_body(count=3, steps=12, seed=500))
    # The runner is found first, so that the kill follows the first finished image at once: on a
    # fast machine the two images left take little longer than a look through /proc.
    runner_pid = None
    deadline = time.monotonic() + 60
    while runner_pid is None:
        assert time.monotonic() < deadline, "the service started no runner"
        runner_pid = next((int(p) for p in os.listdir("/proc")
                           if p.isdigit() and _is_runner_of(int(p), service.process.pid)), None)
        time.sleep(0.05)
    for _, kind, data in service.iter_events(job["id"]):
        if kind == "item_finished":
            break
    service.process.send_signal(signal.SIGKILL)
    service.process.wait()
    deadline = time.monotonic() + 30
    while pid_alive(runner_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(runner_pid), "the runner outlived its killed service"

    restarted = start_service("--lease", "2", data_dir=data_dir)
    done = restarted.wait_for_job(job["id"], timeout=120)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert [i["seed"] for i in done["items"]] == [500, 501, 502]
    artifacts = restarted.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"]
    assert sorted(a["item_index"] for a in artifacts) == [0, 1, 2]
    stored = stored_keys(data_dir, f"dreamforge/default/jobs/{job['id']}/")
    assert len([key for key in stored if key.endswith(".png")]) == 3, stored
    events = restarted.events(job["id"])
    assert [e[1] for e in events].count("job_finished") == 1
    assert [e[1] for e in events].count("job_started") == 2


def _is_runner_of(pid, parent):
    try:  # the process may be gone by now
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[1]) == parent and "dreamforge-runner" in pathlib.Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def test_sigterm_mid_job_hands_the_job_back_and_a_restart_finishes_it(start_service, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service()
    job = service.create_job(generate_body(count=2, steps=40, seed=900))
    for _, kind, _ in service.iter_events(job["id"]):
        if kind == "progress":
            break
    started = time.monotonic()
    assert service.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    handed_back = start_service(data_dir=data_dir, model=False)
    done = handed_back.wait_for_job(job["id"], timeout=120)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    kinds = [e[1] for e in handed_back.events(job["id"])]
    assert "retry_scheduled" in kinds and kinds.count("job_finished") == 1
