"""Runner start benchmark: how long a native dreamforge-runner takes from its start to its hello,
without a model (goal: under 2 s), the time a worker waits when it starts a runner on demand.

Each round starts build/bin/dreamforge-runner (DREAMFORGE_BIN names another folder) with an empty
models folder, sends the hello request of the runner protocol and times until the runner's hello
event; then it closes the runner's input (a shutdown) and waits for it to exit. It reports the
median, the fastest and the slowest round.

Usage: python3 bench/runner_start_bench.py [--rounds 20] [--device cpu]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

PROTOCOL_VERSION = 2  # src/runner/protocol.h kProtocolVersion


def runner_path() -> pathlib.Path:
    folder = os.environ.get("DREAMFORGE_BIN") or pathlib.Path(__file__).resolve().parent.parent / "build" / "bin"
    return pathlib.Path(folder) / "dreamforge-runner"


def start_to_hello(runner: pathlib.Path, models: str, device: str) -> float:
    """Seconds from starting the runner to reading its hello event."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(runner), "--models-dir", models, "--input-dir", models, "--device", device],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    process.stdin.write(json.dumps({"type": "hello", "protocol": PROTOCOL_VERSION}) + "\n")
    process.stdin.flush()
    for line in process.stdout:
        if json.loads(line).get("type") == "hello":
            elapsed = time.perf_counter() - started
            break
    else:
        raise RuntimeError(f"the runner exited without a hello (status {process.wait()})")
    process.stdin.close()
    process.wait(timeout=30)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    runner = runner_path()
    if not runner.exists():
        print(f"no runner at {runner}: build it first (ninja -C build dreamforge-runner)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="df_runner_start_") as models:
        start_to_hello(runner, models, args.device)  # the first start also warms the page cache
        times = [start_to_hello(runner, models, args.device) for _ in range(args.rounds)]
    print(f"dreamforge-runner start to hello, no model, --device {args.device}, {args.rounds} rounds: "
          f"median {statistics.median(times) * 1000:.0f} ms, fastest {min(times) * 1000:.0f} ms, "
          f"slowest {max(times) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
