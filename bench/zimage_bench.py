"""Z-Image benchmark: the Z-Image Turbo transformer at its real size (dim 3840, 30 layers, 2 + 2
refiner layers, 6.15 B parameters) with random weights on this machine's CPU, Dream Forge's
engine against diffusers' ZImageTransformer2DModel in the same run. Reports load time, seconds
per transformer call (batch 1, no classifier-free guidance, as Z-Image Turbo samples) and peak
memory of each, as ratios.

The weights are bfloat16 by default: in float32 the model alone takes 24.6 GB, more than a
24 GB machine holds. Each engine runs in a fresh process, one after the other, so only one copy
of the weights is resident at a time.

Usage: .venv/bin/python bench/zimage_bench.py [--steps 3] [--rounds 1] [--size 256]
       [--caption-tokens 32] [--dtype bfloat16] [--workdir DIR]
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROBE = pathlib.Path(os.environ.get("DREAMFORGE_BIN", ROOT / "build" / "bin")) / "dreamforge-probe"

# Tongyi-MAI/Z-Image-Turbo's transformer/config.json.
REAL_CONFIG = dict(all_patch_size=[2], all_f_patch_size=[1], in_channels=16, dim=3840, n_layers=30,
                   n_refiner_layers=2, n_heads=30, n_kv_heads=30, norm_eps=1e-5, qk_norm=True,
                   cap_feat_dim=2560, rope_theta=256.0, t_scale=1000.0, axes_dims=[32, 48, 48],
                   axes_lens=[1536, 512, 512])


def build_random_transformer(directory, dtype_name):
    """The real-size transformer with random weights, allocated directly in `dtype_name` and saved
    as a diffusers folder."""
    import torch
    from diffusers import ZImageTransformer2DModel
    torch.manual_seed(0)
    torch.set_default_dtype(getattr(torch, dtype_name))
    model = ZImageTransformer2DModel(**REAL_CONFIG)
    path = pathlib.Path(directory) / f"zimage-turbo-random-{dtype_name}"
    model.save_pretrained(str(path), safe_serialization=True, max_shard_size="5GB")
    return path


DIFFUSERS_RUN = r"""
import json, resource, sys, time, torch
from diffusers import ZImageTransformer2DModel
torch.set_grad_enabled(False)
path, steps, size, tokens, dtype = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
t0 = time.perf_counter()
model = ZImageTransformer2DModel.from_pretrained(path, torch_dtype=getattr(torch, dtype)).eval()
load = time.perf_counter() - t0
dtype = getattr(torch, dtype)
x = [torch.randn(16, 1, size // 8, size // 8, dtype=dtype)]
caption = [torch.randn(tokens, model.config.cap_feat_dim, dtype=dtype)]
times = []
for i in range(steps):
    t = torch.full((1,), 0.25 * i)  # diffusers' t = 1 - sigma
    t0 = time.perf_counter(); model(x, t, caption, return_dict=False); times.append(time.perf_counter() - t0)
print(json.dumps({"load_seconds": load, "step_seconds": times,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_diffusers(path, args):
    out = subprocess.run([sys.executable, "-c", DIFFUSERS_RUN, str(path), str(args.steps),
                          str(args.size), str(args.caption_tokens), args.dtype],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_dreamforge(path, args, workdir):
    from safetensors.torch import load_file
    out_file = pathlib.Path(workdir) / "zimage_bench_out.safetensors"
    probe_args = {"weights": str(path), "dtype": args.dtype, "steps": args.steps,
                  "height": args.size, "width": args.size, "caption_tokens": args.caption_tokens}
    subprocess.run([str(PROBE), "bench_zimage_step", "--args", json.dumps(probe_args), "--out",
                    str(out_file)], check=True)
    t = load_file(str(out_file))
    return {"load_seconds": t["load_seconds"].item(), "step_seconds": t["step_seconds"].tolist(),
            "peak_rss_mb": t["peak_rss_mb"].item()}


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def summary(runs):
    return {"load_seconds": median([r["load_seconds"] for r in runs]),
            "step_seconds": median([s for r in runs for s in r["step_seconds"][1:]]),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs": runs}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--caption-tokens", type=int, default=32)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="df-zimage-bench-")
    path = pathlib.Path(workdir) / f"zimage-turbo-random-{args.dtype}"
    if not (path / "config.json").exists():
        path = build_random_transformer(workdir, args.dtype)
    # Alternate the two engines so that a disturbance of the machine hits both alike. The first
    # call of a run also pages the weights in and is left out of the step median.
    ours_runs, theirs_runs = [], []
    for _ in range(args.rounds):
        ours_runs.append(run_dreamforge(path, args, workdir))
        theirs_runs.append(run_diffusers(path, args))
    ours, theirs = summary(ours_runs), summary(theirs_runs)
    import torch
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"torch {torch.__version__}",
        "measured": f"Z-Image Turbo transformer, real size, random {args.dtype} weights, one call "
                    f"at {args.size}x{args.size} px ({(args.size // 16) ** 2} image tokens) with "
                    f"{args.caption_tokens} caption tokens, batch 1, CPU",
        "dreamforge": ours, "diffusers": theirs,
        "step_seconds": {"dreamforge": ours["step_seconds"], "diffusers": theirs["step_seconds"],
                         "ratio_dreamforge_over_diffusers":
                             ours["step_seconds"] / theirs["step_seconds"]},
        "load_seconds": {"dreamforge": ours["load_seconds"], "diffusers": theirs["load_seconds"]},
        "peak_rss_mb": {"dreamforge": ours["peak_rss_mb"], "diffusers": theirs["peak_rss_mb"]},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
