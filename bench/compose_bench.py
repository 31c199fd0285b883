"""Compose start benchmark: seconds from `deploy/compose up -d` on a fresh project (new volumes: the
database cluster initialised, the schema applied, the bucket created) to the API's first /readyz
200, and from `deploy/compose restart api` to /readyz 200 again, with the images already built.

Each round makes a project of its own (its env file, ports and volumes), times both, and brings it
down with its volumes. It reports the median, the fastest and the slowest round of each.

Usage: python3 bench/compose_bench.py [--rounds 3]
"""
import argparse
import os
import pathlib
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

COMPOSE = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "compose"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def until_ready(port, started, timeout=300):
    while time.perf_counter() - started < timeout:
        if ready(port):
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"/readyz on port {port} did not answer 200 within {timeout} s")


def one_round(folder):
    port = free_port()
    env_file = folder / f"{uuid.uuid4().hex}.env"
    env_file.write_text("\n".join([
        f"POSTGRES_PASSWORD={uuid.uuid4().hex}", f"REDIS_PASSWORD={uuid.uuid4().hex}",
        "MINIO_ROOT_USER=dreamforge", f"MINIO_ROOT_PASSWORD={uuid.uuid4().hex}",
        f"DREAMFORGE_SECRET={uuid.uuid4().hex}", "COMPOSE_PROFILES=cpu",
        f"DREAMFORGE_API_PORT={port}", f"DREAMFORGE_S3_PORT={free_port()}", ""]))
    env = {**os.environ, "DREAMFORGE_COMPOSE_ENV_FILE": str(env_file),
           "COMPOSE_PROJECT_NAME": "dfbench" + uuid.uuid4().hex[:8]}

    def compose(*args):
        subprocess.run([str(COMPOSE), *args], env=env, check=True, capture_output=True)

    try:
        started = time.perf_counter()
        compose("up", "--detach")  # returns once /readyz answers (deploy/compose waits for it)
        up = until_ready(port, started)
        started = time.perf_counter()
        compose("restart", "api")
        restart = until_ready(port, started)
        return up, restart
    finally:
        compose("down", "--volumes", "--remove-orphans")


def describe(name, values):
    return (f"{name}: median {statistics.median(values):.1f} s, fastest {min(values):.1f} s, "
            f"slowest {max(values):.1f} s ({len(values)} rounds)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ups, restarts = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            up, restart = one_round(pathlib.Path(folder))
            ups.append(up)
            restarts.append(restart)
    print(describe("compose up -d to /readyz 200 (fresh volumes)", ups))
    print(describe("restart api to /readyz 200", restarts))


if __name__ == "__main__":
    main()
