"""Dispatch benchmark: Dream Forge's queues (the database queue on PostgreSQL, Redis Streams)
against the simplest Redis dispatch (a plain list, LPUSH / BRPOP), measured in the same run.

Each case runs `dreamforge-dispatch-bench` once with a fresh PostgreSQL database and a fresh Redis
key prefix: N worker threads claim, finish and settle jobs whose runner does no work, so the run
times the dispatch and the store work around it, nothing else. Two modes:

- backlog: every job is created and enqueued before the workers start; throughput is jobs / time
  from the first worker's start to the last finish;
- rate: jobs are created at a steady rate, well below what the queues can take; latency is the
  time from enqueue to a worker holding the claimed job.

The DB queue on SQLite runs once (4 workers) as a reference line. The servers (PostgreSQL, Redis)
are started on loopback for the run, like the end-to-end tests do.

Build the program first (no libtorch needed):
  cmake -S . -B build -G Ninja -DDF_WITH_TORCH=OFF && ninja -C build dreamforge-dispatch-bench

Usage: python3 bench/dispatch_bench.py [--backlog-jobs 2000] [--rate 100] [--rate-jobs 400]
       [--workers 1,4,16] [--rounds 2] [--workdir DIR]
(DREAMFORGE_BIN names another folder of binaries than build/bin.)
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))
import backends  # noqa: E402
from job_service_bench import BIN, machine_description, progress  # noqa: E402

PROGRAM = BIN / "dreamforge-dispatch-bench"
QUEUES = ("DB queue", "Redis Streams", "Redis list")


class Servers:
    """PostgreSQL and Redis for the whole run; every case gets its own database and key prefix."""

    def __init__(self):
        self.postgres = backends.PostgresServer().start()
        try:
            self.redis = backends.RedisServer().start()
        except Exception:
            self.postgres.stop()
            raise
        self.cases = 0

    def case_urls(self, queue):
        """(database URL, queue URL) for a new case of `queue`."""
        self.cases += 1
        redis_address = f"127.0.0.1:{self.redis.port}/0?prefix=dispatch{self.cases}"
        queue_url = {"DB queue": "db", "Redis Streams": f"redis://{redis_address}",
                     "Redis list": f"redis-list://{redis_address}"}[queue]
        return self.postgres.create_database(), queue_url

    def stop(self):
        try:
            self.redis.stop()
        finally:
            self.postgres.stop()


def run_case(database_url, queue_url, workers, jobs, rate=None):
    """One run of the program: its JSON report. Fails loudly when a job did not end exactly once."""
    argv = [str(PROGRAM), "--database-url", database_url, "--queue-url", queue_url,
            "--workers", str(workers), "--jobs", str(jobs)]
    if rate is not None:
        argv += ["--rate", str(rate)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def measures(report):
    """The numbers a case contributes to the table."""
    latency = report["claim_latency_ms"]
    return {"jobs_per_s": report["jobs_per_s"],
            "producer_jobs_per_s": report["jobs"] / report["producer_seconds"],
            "p50": latency["p50"], "p95": latency["p95"], "p99": latency["p99"]}


def median_of_rounds(rounds):
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def run_all(servers, args, workdir):
    """{(queue, workers, mode): measures (median of rounds)} plus the SQLite reference under
    ("DB queue on SQLite", 4, mode)."""
    modes = {"backlog": (args.backlog_jobs, None), "rate": (args.rate_jobs, args.rate)}
    collected = {}
    for round_index in range(args.rounds):
        for workers in args.workers:
            for mode, (jobs, rate) in modes.items():
                # Alternate the order of the queues between rounds.
                order = QUEUES if round_index % 2 == 0 else tuple(reversed(QUEUES))
                for queue in order:
                    progress(f"round {round_index + 1}: {queue}, {workers} workers, {mode}")
                    report = run_case(*servers.case_urls(queue), workers, jobs, rate)
                    collected.setdefault((queue, workers, mode), []).append(measures(report))
        for mode, (jobs, rate) in modes.items():
            progress(f"round {round_index + 1}: DB queue on SQLite, 4 workers, {mode}")
            database = workdir / f"sqlite-{round_index}-{mode}.sqlite3"
            report = run_case(f"sqlite://{database}", "db", 4, jobs, rate)
            collected.setdefault(("DB queue on SQLite", 4, mode), []).append(measures(report))
    return {key: median_of_rounds(rounds) for key, rounds in collected.items()}


def ratio(a, b):
    return f"{a / b:.2f}" if a > 0 and b > 0 else "n/a"


def table_rows(results, workers_list):
    rows = []
    measures_shown = (("backlog", "jobs_per_s", "backlog: dispatched jobs/s", "{:.0f}"),
                      ("backlog", "producer_jobs_per_s", "backlog: created+enqueued jobs/s",
                       "{:.0f}"),
                      ("rate", "p50", "rate: enqueue -> claim p50 (ms)", "{:.2f}"),
                      ("rate", "p95", "rate: enqueue -> claim p95 (ms)", "{:.2f}"),
                      ("rate", "p99", "rate: enqueue -> claim p99 (ms)", "{:.2f}"))
    for mode, key, label, shape in measures_shown:
        for workers in workers_list:
            db, streams, plain = (results[(queue, workers, mode)][key] for queue in QUEUES)
            rows.append((f"{label}, {workers} workers", shape.format(db), shape.format(streams),
                         shape.format(plain), ratio(streams, db), ratio(db, plain),
                         ratio(streams, plain)))
        sqlite = results[("DB queue on SQLite", 4, mode)][key]
        rows.append(("reference: DB queue on SQLite, 4 workers", shape.format(sqlite), "", "",
                     "", ratio(sqlite, results[("Redis list", 4, mode)][key]), ""))
    return rows


def print_markdown_table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog-jobs", type=int, default=2000, help="jobs per backlog case")
    parser.add_argument("--rate", type=float, default=100, help="jobs/s in the rate cases")
    parser.add_argument("--rate-jobs", type=int, default=400, help="jobs per rate case")
    parser.add_argument("--workers", default="1,4,16", help="worker counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of all cases; the table shows the median of the rounds")
    parser.add_argument("--workdir", help="where SQLite files go (default: a new temp dir)")
    args = parser.parse_args()
    args.workers = [int(n) for n in args.workers.split(",")]
    if 4 not in args.workers:
        raise SystemExit("--workers must include 4 (the SQLite reference runs with 4)")
    if not PROGRAM.exists():
        raise SystemExit(f"{PROGRAM} is missing: build it first (see the top of this file)")
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="df-dispatch-bench-"))
    print(f"machine: {machine_description()}")
    started = time.perf_counter()
    servers = Servers()
    try:
        results = run_all(servers, args, workdir)
    finally:
        servers.stop()
    print(f"\nbacklog: {args.backlog_jobs} jobs; rate: {args.rate_jobs} jobs at {args.rate:g}/s; "
          f"median of {args.rounds} round(s); machine after the run: {machine_description()}\n")
    print_markdown_table(("measure", *QUEUES, "Streams / DB", "DB / list", "Streams / list"),
                         table_rows(results, args.workers))
    print(f"\ntotal time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
