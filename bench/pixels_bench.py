"""DGX-Pixels endpoint benchmark: `dreamforge serve --zmq` with a tiny model, driven by a pyzmq +
msgpack client (the test's PixelsClient), set against the original DGX-Pixels server's published
figures: 2-5 ms message latency, about 300 ms job start, 15-20 Hz progress. Those figures are the
original's own, published with it, and not measured here.

1. REQ->REP round trips: p50/p99 over --messages pings, and over as many status requests.
2. Job start latency: generate sent -> job_started received, over --jobs jobs one after another
   on an idle service with a warm runner (each job waits until the one before it completed).
3. Progress rate while sampling: sampling progress updates per second of one job of
   --sampling-steps steps at 64x64 (steps 1..N, over the time between the first and the last).

Usage: .venv/bin/python bench/pixels_bench.py [--messages 1000] [--jobs 20] [--sampling-steps 40]
       [--workdir DIR]
"""
import argparse
import atexit
import datetime
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from job_service_bench import BIN, ROOT, ServiceProcess, machine_description, percentile, progress

sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from pixels_support import Endpoint, PixelsClient, generate_request  # noqa: E402

# The original server's published figures (low, high); not measured here.
PUBLISHED_MESSAGE_MS = (2.0, 5.0)
PUBLISHED_JOB_START_MS = 300.0
PUBLISHED_PROGRESS_HZ = (15.0, 20.0)


def start_service(workdir):
    data_dir = pathlib.Path(workdir) / "data"
    subprocess.run([str(BIN / "dreamforge"), "model", "create-tiny", "--data-dir", str(data_dir),
                    "--name", "tiny", "--family", "sd1"], check=True, capture_output=True)
    endpoint = Endpoint()
    service = ServiceProcess("Dream Forge", [str(BIN / "dreamforge"), "serve", "--data-dir",
                                             str(data_dir), "--port", "0", *endpoint.flags()],
                             env=dict(os.environ))
    atexit.register(service.stop)
    return service, endpoint


def round_trips_ms(client, message, count):
    """REQ->REP round trips of `message` in ms, after 20 unmeasured ones."""
    for _ in range(20):
        client.request(message)
    times = []
    for _ in range(count):
        sent = time.perf_counter()
        client.request(message)
        times.append((time.perf_counter() - sent) * 1000)
    return times


def run_job(client, **fields):
    """Runs one job to its end; returns (monotonic send time, its updates)."""
    request = generate_request(**fields)
    sent = time.monotonic()
    reply = client.request(request)
    if reply["type"] != "job_accepted":
        raise SystemExit(f"the job was not accepted: {reply}")
    updates = client.updates_of(request["id"])
    if updates[-1][1]["type"] != "job_complete":
        raise SystemExit(f"the job failed: {updates[-1][1]}")
    return sent, updates


def job_start_latencies_ms(client, count):
    latencies = []
    for number in range(count):
        sent, updates = run_job(client, prompt=f"start latency {number}", steps=2)
        started = next(at for at, message in updates if message["type"] == "job_started")
        latencies.append((started - sent) * 1000)
    return latencies


def sampling_rate_hz(client, steps):
    _, updates = run_job(client, prompt="progress rate", steps=steps)
    times = [at for at, m in updates
             if m["type"] == "progress" and m["stage"] == "sampling" and m["step"] > 0]
    return (len(times) - 1) / (times[-1] - times[0]), len(times), times[-1] - times[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="round trips per request type")
    parser.add_argument("--jobs", type=int, default=20, help="jobs timed from generate to start")
    parser.add_argument("--sampling-steps", type=int, default=40,
                        help="steps of the job whose progress rate is measured")
    parser.add_argument("--workdir", help="where the data directory goes (default: a temp dir)")
    args = parser.parse_args()
    workdir = args.workdir
    if not workdir:
        workdir = tempfile.mkdtemp(prefix="pixels-bench-")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # after the service stopped

    progress("starting dreamforge serve --zmq with the tiny model")
    service, endpoint = start_service(workdir)
    client = PixelsClient(endpoint)
    run_job(client, prompt="warm-up")  # the runner starts and loads the model
    progress(f"{args.messages} pings and {args.messages} status requests")
    pings = round_trips_ms(client, {"type": "ping"}, args.messages)
    statuses = round_trips_ms(client, {"type": "status"}, args.messages)
    progress(f"{args.jobs} jobs from generate to job_started")
    starts = job_start_latencies_ms(client, args.jobs)
    progress(f"one job of {args.sampling_steps} steps for the progress rate")
    rate, updates, span = sampling_rate_hz(client, args.sampling_steps)
    client.close()
    service.stop()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    print(f"Machine: {machine_description()}; commit {commit}; {datetime.date.today()}")
    print("Published figures are the original DGX-Pixels server's, not measured here.\n")
    print("| measure | Dream Forge | DGX-Pixels (published) | ratio |")
    print("|---|---|---|---|")
    low, high = PUBLISHED_MESSAGE_MS
    for name, times in (("ping", pings), ("status", statuses)):
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        print(f"| {name} round trip p50 / p99 ({len(times)}) | {p50:.3f} / {p99:.3f} ms | "
              f"{low:.0f}–{high:.0f} ms | p50 {p50 / high:.2f}–{p50 / low:.2f} of it |")
    p50, p99 = percentile(starts, 0.5), percentile(starts, 0.99)
    print(f"| job start p50 / p99 ({len(starts)} jobs) | {p50:.0f} / {p99:.0f} ms | "
          f"~{PUBLISHED_JOB_START_MS:.0f} ms | p50 {p50 / PUBLISHED_JOB_START_MS:.2f} of it |")
    low, high = PUBLISHED_PROGRESS_HZ
    print(f"| progress while sampling ({updates} updates in {span:.2f} s) | {rate:.1f} Hz | "
          f"{low:.0f}–{high:.0f} Hz | {rate / high:.2f}–{rate / low:.2f} of it |")


if __name__ == "__main__":
    main()
