"""Memory soak: 1 000 jobs alternating a tiny SD 1.5 and a tiny SDXL checkpoint through one
dreamforge-runner (the real runner over its protocol, on the CPU). After each job it samples the
runner's resident memory from /proc and the runner's own memory report, then reports the drift of
resident memory after warm-up (goal: under 1 %) and the models loaded from disk after warm-up
(goal: none).

Usage: .venv/bin/python bench/soak_memory.py [--jobs 1000] [--warm-up 20] [--steps 1]
       [--ram-budget-mb N] [--workdir DIR] [--json FILE]
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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from job_service_bench import BIN, machine_description, progress  # noqa: E402

CHECKPOINTS = ("tiny-sd1", "tiny-sdxl")


def graph(ckpt_name, seed, steps):
    """txt2img at 64×64: CheckpointLoaderSimple, two prompts, KSampler, VAEDecode, SaveImage."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "soak", "images": ["8", 0]}},
    }


def resident_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def soak(workdir, jobs, steps, runner_args):
    """Runs the jobs; returns one sample per job: resident bytes and the runner's model loads."""
    models = workdir / "models"
    for name, family in zip(CHECKPOINTS, ("sd1", "sdxl")):
        if not (models / name).exists():
            subprocess.run([str(BIN / "dreamforge"), "model", "create-tiny", str(models / name),
                            "--family", family], check=True, capture_output=True)
    runner = subprocess.Popen([str(BIN / "dreamforge-runner"), "--models-dir", str(models),
                               "--input-dir", str(workdir), "--device", "cpu", *runner_args],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    samples = []
    try:
        for job in range(jobs):
            request = {"type": "run", "id": f"soak-{job}", "graph": graph(CHECKPOINTS[job % 2], job, steps),
                       "output_dir": str(workdir / "out")}
            runner.stdin.write(json.dumps(request) + "\n")
            runner.stdin.flush()
            while True:
                event = json.loads(runner.stdout.readline())
                if event["type"] == "run_finished":
                    break
            if event["status"] != "succeeded":
                raise SystemExit(f"job {job} {event['status']}")
            memory = event["memory"]
            samples.append({"rss": resident_bytes(runner.pid), "loads": memory["models"]["loads"],
                            "models_host_bytes": memory["models"]["host_bytes"]})
            for output in (workdir / "out").iterdir():
                output.unlink()
            if (job + 1) % 100 == 0:
                progress(f"{job + 1} jobs, RSS {samples[-1]['rss'] / 2**20:.1f} MiB")
    finally:
        runner.stdin.write(json.dumps({"type": "shutdown"}) + "\n")
        runner.stdin.flush()
        runner.wait(timeout=60)
    return samples


def summary(samples, warm_up):
    """Drift: the median resident memory of the last 100 jobs against that of the 100 jobs
    right after warm-up; reloads: models loaded from disk after warm-up."""
    steady = samples[warm_up:]
    window = min(100, len(steady) // 2)
    first = statistics.median(s["rss"] for s in steady[:window])
    last = statistics.median(s["rss"] for s in steady[-window:])
    rss = [s["rss"] for s in steady]
    return {"jobs": len(samples), "warm_up": warm_up,
            "rss_after_warm_up_mib": first / 2**20, "rss_at_end_mib": last / 2**20,
            "rss_min_mib": min(rss) / 2**20, "rss_max_mib": max(rss) / 2**20,
            "drift_percent": 100.0 * (last - first) / first,
            "reloads_after_warm_up": steady[-1]["loads"] - samples[warm_up - 1]["loads"],
            "models_host_mib": steady[-1]["models_host_bytes"] / 2**20}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=20, help="jobs left out of the drift")
    parser.add_argument("--steps", type=int, default=1, help="sampler steps per job")
    parser.add_argument("--ram-budget-mb", type=int, help="the runner's model RAM budget")
    parser.add_argument("--workdir", type=pathlib.Path)
    parser.add_argument("--json", type=pathlib.Path, help="also write the samples and summary here")
    args = parser.parse_args()
    if args.jobs < args.warm_up + 2:
        parser.error("--jobs must exceed --warm-up by at least 2")
    runner_args = ["--ram-budget-mb", str(args.ram_budget_mb)] if args.ram_budget_mb else []
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or pathlib.Path(scratch)
        (workdir / "out").mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        samples = soak(workdir, args.jobs, args.steps, runner_args)
        result = summary(samples, args.warm_up)
        result["seconds"] = time.monotonic() - started
    result["machine"] = machine_description()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": result, "samples": samples}))


if __name__ == "__main__":
    main()
