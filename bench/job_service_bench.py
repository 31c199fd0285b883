"""Job service benchmark: `dreamforge serve` against a plain-Python job service
(bench/python_baseline_service.py) measured in the same run, on the same machine.

1. Job-create throughput and latency (p50/p99) with 1 and 16 concurrent clients, both services
   without a worker (jobs stay queued).
2. Time from sending POST /v1/jobs to the job_started and item_started events (the runner began the
   item) on an idle service with a warm runner: median of --start-samples jobs.
3. Event latency from the runner to SSE clients: for progress events, the client's receive time
   minus the event's recorded "time" (same clock), with 1 and with --sse-clients streams on one job.

The client stays out of the way: requests are pre-encoded bytes on raw keep-alive sockets, and one
selector loop drives all connections of a case (no thread per client, no HTTP library); SSE chunks
are only stamped and stored while streaming and parsed afterwards. The client's CPU use is printed
for every case.

With --database postgres, Dream Forge keeps its jobs in a PostgreSQL server the benchmark starts on
loopback (a fresh database per service), as the end-to-end tests do; the baseline stays on SQLite.

Usage: .venv/bin/python bench/job_service_bench.py [--quick] [--jobs 500] [--rounds 3]
       [--start-samples 10] [--sse-clients 200] [--sse-steps 40] [--database {sqlite,postgres}]
       [--workdir DIR]
"""
import argparse
import atexit
import bisect
import datetime
import json
import os
import pathlib
import platform
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(os.environ.get("DREAMFORGE_BIN", ROOT / "build" / "bin"))
BASELINE = ROOT / "bench" / "python_baseline_service.py"
CONCURRENCIES = (1, 16)
SERVICES = ("Dream Forge", "Python baseline")


class ServiceProcess:
    """A service started as a child process; its address comes from its "serving http://" line."""

    def __init__(self, name, argv, env=None):
        self.name = name
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=env)
        self.output = []
        self.address = None
        ready = threading.Event()

        def pump():
            for line in self.process.stdout:
                self.output.append(line)
                found = re.search(r"serving http://([\d.]+):(\d+)", line)
                if found:
                    self.address = (found.group(1), int(found.group(2)))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60) or self.address is None:
            self.stop()
            raise SystemExit(f"{name} did not start:\n" + "".join(self.output))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def install_tiny_model(data_dir, env):
    subprocess.run([str(BIN / "dreamforge"), "model", "create-tiny", "--data-dir", str(data_dir),
                    "--name", "tiny", "--family", "sd1"], check=True, capture_output=True, env=env)


def dreamforge_env(database_url):
    """Dream Forge's environment: its jobs in `database_url`, or in the data directory's SQLite
    file when None."""
    env = dict(os.environ)
    if database_url is not None:
        env["DREAMFORGE_DATABASE_URL"] = database_url
    return env


def start_dreamforge(data_dir, with_worker, database_url):
    env = dreamforge_env(database_url)
    install_tiny_model(data_dir, env)
    argv = [str(BIN / "dreamforge"), "serve", "--data-dir", str(data_dir), "--port", "0"]
    argv += ["--runner", str(BIN / "dreamforge-runner")] if with_worker else ["--workers", "0"]
    return ServiceProcess(SERVICES[0], argv, env)


def start_postgres():
    """A PostgreSQL server on loopback for this run (the end-to-end tests' helper), stopped at exit;
    returns a function that makes a fresh database and gives its URL."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    import backends

    server = backends.PostgresServer().start()
    atexit.register(server.stop)
    return server.create_database


def start_baseline(data_dir, models_dir=None):
    argv = [sys.executable, str(BASELINE), "--data-dir", str(data_dir), "--port", "0"]
    if models_dir is not None:
        argv += ["--runner", str(BIN / "dreamforge-runner"), "--models-dir", str(models_dir)]
    return ServiceProcess(SERVICES[1], argv)


def job_body(steps):
    return {"model_id": "tiny", "prompt": "a lighthouse at dusk, oil painting", "width": 64,
            "height": 64, "steps": steps, "count": 1}


def post_request(address, body):
    payload = json.dumps(body).encode()
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


def split_response(buffer):
    """(status, body) when `buffer` holds a whole HTTP response, else None."""
    header_end = buffer.find(b"\r\n\r\n")
    if header_end < 0:
        return None
    head = buffer[:header_end].decode("latin-1")
    length = re.search(r"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
    body_start = header_end + 4
    body_end = body_start + (int(length.group(1)) if length else 0)
    if len(buffer) < body_end:
        return None
    return int(head[9:12]), buffer[body_start:body_end]


def connect(address):
    sock = socket.create_connection(address, timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def post_job(sock, request):
    """Sends a pre-encoded POST on a keep-alive socket: (send time, job id)."""
    sent_at = time.time()
    sock.sendall(request)
    buffer = b""
    while (response := split_response(buffer)) is None:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the service closed the connection")
        buffer += chunk
    status, body = response
    if status != 201:
        raise SystemExit(f"POST /v1/jobs answered {status}: {body[:300]!r}")
    return sent_at, json.loads(body)["id"]


def create_jobs(address, request, total, concurrency):
    """Closed loop: `concurrency` connections each send the next create as soon as the last one
    was answered, until `total` were answered. Returns (latencies s, wall s, client CPU s)."""
    selector = selectors.DefaultSelector()
    pending = {}
    latencies, issued = [], 0

    def issue(sock):
        nonlocal issued
        pending[sock] = [time.perf_counter(), b""]
        sock.sendall(request)
        issued += 1

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    sockets = [connect(address) for _ in range(min(concurrency, total))]
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        issue(sock)
    while len(latencies) < total:
        ready = selector.select(timeout=30)
        if not ready:
            raise SystemExit("no answer to a create within 30 s")
        for key, _ in ready:
            sock = key.fileobj
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("the service closed a create connection")
            state = pending[sock]
            state[1] += chunk
            response = split_response(state[1])
            if response is None:
                continue
            latencies.append(time.perf_counter() - state[0])
            if response[0] != 201:
                raise SystemExit(f"POST /v1/jobs answered {response[0]}: {response[1][:300]!r}")
            if issued < total:
                issue(sock)
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    for sock in sockets:
        selector.unregister(sock)
        sock.close()
    return latencies, wall, cpu


def read_event_streams(address, job_id, count, timeout):
    """Opens `count` SSE streams on the job (HTTP/1.0, so frames arrive unchunked) and reads them
    until the service closes each after job_finished. Returns (per-stream [(receive time, bytes)],
    the time the last stream was open, client CPU s)."""
    request = (f"GET /v1/jobs/{job_id}/events HTTP/1.0\r\nHost: {address[0]}:{address[1]}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    selector = selectors.DefaultSelector()
    chunks, open_streams = {}, set()
    cpu_start = time.process_time()
    for _ in range(count):
        sock = connect(address)
        sock.sendall(request)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        chunks[sock] = []
    all_open_at, live, deadline = None, len(chunks), time.time() + timeout
    while live:
        ready = selector.select(timeout=max(0.0, deadline - time.time()))
        if not ready:
            raise SystemExit(f"event streams of job {job_id} did not end within {timeout} s")
        for key, _ in ready:
            sock = key.fileobj
            chunk = sock.recv(262144)
            received_at = time.time()
            if not chunk:
                selector.unregister(sock)
                sock.close()
                live -= 1
                continue
            chunks[sock].append((received_at, chunk))
            if sock not in open_streams and b"\r\n\r\n" in b"".join(c for _, c in chunks[sock]):
                open_streams.add(sock)
                if len(open_streams) == count:
                    all_open_at = received_at
    return list(chunks.values()), all_open_at, time.process_time() - cpu_start


def parse_time(text):
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def stream_frames(chunks):
    """The SSE frames of one stream as [(receive time, event type, data)]: a frame was received
    with the chunk that completed it."""
    ends, data, total = [], b"", 0
    for _, chunk in chunks:
        data += chunk
        total += len(chunk)
        ends.append(total)
    header_end = data.find(b"\r\n\r\n")
    if header_end < 0 or data[9:12] != b"200":
        raise SystemExit(f"event stream refused: {data[:300]!r}")
    frames, position = [], header_end + 4
    while (end := data.find(b"\n\n", position)) >= 0:
        fields = {}
        for line in data[position:end].decode().split("\n"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "data" in fields:
            received_at = chunks[bisect.bisect_left(ends, end + 2)][0]
            frames.append((received_at, fields.get("event", "message"), json.loads(fields["data"])))
        position = end + 2
    return frames


def percentile(values, fraction):
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values):
    return percentile(values, 0.5)


def measure_creates(services, jobs, rounds):
    """Per (service, concurrency): throughput (jobs/s, median of rounds), latency percentiles over
    all rounds (ms), client CPU share of one core."""
    results = {}
    for _ in range(rounds):
        for concurrency in CONCURRENCIES:
            for service in services:
                request = post_request(service.address, job_body(steps=20))
                create_jobs(service.address, request, 20, concurrency)  # warm-up
                latencies, wall, cpu = create_jobs(service.address, request, jobs, concurrency)
                entry = results.setdefault((service.name, concurrency),
                                           {"rates": [], "latencies": [], "cpu": []})
                entry["rates"].append(jobs / wall)
                entry["latencies"] += latencies
                entry["cpu"].append(cpu / wall)
    return {key: {"jobs_per_s": median(e["rates"]),
                  "p50_ms": 1000 * percentile(e["latencies"], 0.5),
                  "p99_ms": 1000 * percentile(e["latencies"], 0.99), "client_cpu": max(e["cpu"])}
            for key, e in results.items()}


def run_watched_job(service, body):
    """Posts a job on a fresh connection and follows its events to job_finished:
    (send time, frames)."""
    with connect(service.address) as sock:
        sent_at, job_id = post_job(sock, post_request(service.address, body))
    streams, _, _ = read_event_streams(service.address, job_id, 1, timeout=300)
    frames = stream_frames(streams[0])
    finished = [data for _, kind, data in frames if kind == "job_finished"]
    status = finished[0].get("data", {}).get("status") if finished else None
    if status != "succeeded":
        raise SystemExit(f"{service.name}: job {job_id} ended {status}:\n"
                         + "".join(service.output[-20:]))
    return sent_at, frames


def first_event_time(frames, kind):
    return next(parse_time(data["time"]) for _, k, data in frames if k == kind)


def measure_start_latency(services, samples, steps):
    """Per service: median ms from sending POST to job_started and to item_started."""
    for service in services:
        run_watched_job(service, job_body(steps))  # warms the runner: model loaded, prompt cached
    kinds = ("job_started", "item_started")
    delays = {(service.name, kind): [] for service in services for kind in kinds}
    for _ in range(samples):
        for service in services:
            sent_at, frames = run_watched_job(service, job_body(steps))
            for kind in kinds:
                delay = first_event_time(frames, kind) - sent_at
                delays[(service.name, kind)].append(1000 * delay)
    return {key: median(values) for key, values in delays.items()}


def measure_event_latency(services, client_counts, steps, rounds):
    """Per (service, clients): progress-event latency percentiles (ms) over all streams, counting
    only events recorded after every stream was open (earlier ones would arrive as a replay); how
    many progress events one stream counted; the client's CPU time per received frame (us)."""
    results = {}
    for _ in range(rounds):
        for clients in client_counts:
            for service in services:
                with connect(service.address) as sock:
                    _, job_id = post_job(sock, post_request(service.address, job_body(steps)))
                streams, all_open_at, cpu = read_event_streams(service.address, job_id, clients,
                                                               timeout=600)
                entry = results.setdefault((service.name, clients),
                                           {"latencies": [], "events": 0, "cpu": 0.0, "frames": 0})
                entry["cpu"] += cpu
                # Recorded times are whole milliseconds, rounded down: compare in that resolution.
                open_ms = int(all_open_at * 1000) + 1
                for stream_index, chunks in enumerate(streams):
                    frames = stream_frames(chunks)
                    entry["frames"] += len(frames)
                    for received_at, kind, data in frames:
                        recorded = parse_time(data["time"])
                        if kind == "progress" and round(recorded * 1000) >= open_ms:
                            entry["latencies"].append(received_at - recorded)
                            entry["events"] += stream_index == 0
    return {key: {"p50_ms": 1000 * percentile(e["latencies"], 0.5),
                  "p99_ms": 1000 * percentile(e["latencies"], 0.99), "events": e["events"],
                  "client_us_per_frame": 1e6 * e["cpu"] / e["frames"]}
            for key, e in results.items()}


def ratio(ours, theirs):
    """Dream Forge's value relative to the baseline's, as "N.NNx higher" or "N.NNx lower"."""
    if ours <= 0 or theirs <= 0:
        return "n/a"
    return f"{ours / theirs:.2f}x higher" if ours >= theirs else f"{theirs / ours:.2f}x lower"


def print_table(rows):
    header = ("measure", *SERVICES, "Dream Forge vs baseline", "client CPU (DF / baseline)")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))


def progress(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_description():
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                      if line.startswith("model name")), platform.machine())
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
            f"load average {load}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run: 100 jobs, 1 round, "
                        "3 start samples, 50 streams, 10 steps")
    parser.add_argument("--jobs", type=int, default=500, help="creates per case")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the create and the SSE cases")
    parser.add_argument("--start-samples", type=int, default=10,
                        help="jobs timed from POST to start")
    parser.add_argument("--sse-clients", type=int, default=200,
                        help="streams in the fan-out case")
    parser.add_argument("--sse-steps", type=int, default=40,
                        help="sampler steps of the streamed job")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="where Dream Forge keeps its jobs (the baseline always uses SQLite)")
    parser.add_argument("--workdir", help="where the data directories go (default: a new temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.rounds, args.start_samples = 100, 1, 3
        args.sse_clients, args.sse_steps = 50, 10
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="df-job-bench-"))
    for binary in ("dreamforge", "dreamforge-runner"):
        if not (BIN / binary).exists():
            raise SystemExit(f"{BIN / binary} is missing: build the project first")
    print(f"machine: {machine_description()}")
    print(f"work directory: {workdir}")
    new_database = start_postgres() if args.database == "postgres" else lambda: None
    print(f"Dream Forge's database: {args.database}; the baseline's: sqlite")
    started = time.perf_counter()
    rows = []

    services = [start_dreamforge(workdir / "df-create", with_worker=False,
                                 database_url=new_database()),
                start_baseline(workdir / "baseline-create")]
    try:
        progress(f"create cases: {args.jobs} jobs x {args.rounds} round(s)")
        creates = measure_creates(services, args.jobs, args.rounds)
    finally:
        for service in services:
            service.stop()
    for concurrency in CONCURRENCIES:
        ours, theirs = creates[(SERVICES[0], concurrency)], creates[(SERVICES[1], concurrency)]
        cpu = f"{ours['client_cpu']:.0%} / {theirs['client_cpu']:.0%} of a core"
        label = f"create, {concurrency} client{'s' if concurrency > 1 else ''}"
        rows.append((f"{label}: jobs/s", f"{ours['jobs_per_s']:.0f}", f"{theirs['jobs_per_s']:.0f}",
                     ratio(ours["jobs_per_s"], theirs["jobs_per_s"]), cpu))
        for key in ("p50_ms", "p99_ms"):
            rows.append((f"{label}: {key[:3]} latency (ms)", f"{ours[key]:.2f}",
                         f"{theirs[key]:.2f}", ratio(ours[key], theirs[key]), ""))

    data_dir = workdir / "df-run"
    checkpoints = data_dir / "models" / "checkpoints"
    services = [start_dreamforge(data_dir, with_worker=True, database_url=new_database()),
                start_baseline(workdir / "baseline-run", models_dir=checkpoints)]
    try:
        progress(f"POST to start: {args.start_samples} jobs per service")
        starts = measure_start_latency(services, args.start_samples, steps=2)
        progress(f"event latency: 1 and {args.sse_clients} streams, {args.sse_steps} steps")
        events = measure_event_latency(services, (1, args.sse_clients), args.sse_steps, args.rounds)
    finally:
        for service in services:
            service.stop()
    for kind in ("job_started", "item_started"):
        ours, theirs = starts[(SERVICES[0], kind)], starts[(SERVICES[1], kind)]
        rows.append((f"POST -> {kind}, median of {args.start_samples} (ms)", f"{ours:.1f}",
                     f"{theirs:.1f}", ratio(ours, theirs), ""))
    for clients in (1, args.sse_clients):
        ours, theirs = events[(SERVICES[0], clients)], events[(SERVICES[1], clients)]
        label = f"progress event -> {clients} SSE client{'s' if clients > 1 else ''}"
        client = (f"{ours['client_us_per_frame']:.0f} / {theirs['client_us_per_frame']:.0f} "
                  "us per frame")
        for key in ("p50_ms", "p99_ms"):
            rows.append((f"{label}: {key[:3]} (ms)", f"{ours[key]:.1f}", f"{theirs[key]:.1f}",
                         ratio(ours[key], theirs[key]), client if key == "p50_ms" else ""))
        rows.append((f"  (progress events counted on one stream, {args.rounds} round(s))",
                     ours["events"], theirs["events"], "", ""))
    print()
    print_table(rows)
    print(f"\ntotal time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
