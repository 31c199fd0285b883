"""Engine benchmark: SD 1.5-sized random weights at 512x512 on this machine's CPU, Dream Forge's
engine against diffusers in the same run. Reports model load time, seconds per UNet step (batch 2,
as with classifier-free guidance) and peak memory of each, as ratios.

Usage: .venv/bin/python bench/engine_bench.py [--steps 4] [--rounds 2] [--workdir DIR]
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


def build_sd15_sized_pipeline(directory):
    """A pipeline with SD 1.5's architecture and random weights, saved as safetensors."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel, EulerDiscreteScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    sys.path.insert(0, str(ROOT / "tests" / "parity"))
    from parity_support import write_clip_tokenizer
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=[128, 256, 512, 512], layers_per_block=2,
                        down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, latent_channels=4)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                        num_hidden_layers=12, vocab_size=49408, projection_dim=768,
                                        hidden_act="quick_gelu", bos_token_id=49406, eos_token_id=49407))
    tok = CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(pathlib.Path(directory) / "_tok")))
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tok,
                                   scheduler=EulerDiscreteScheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    path = pathlib.Path(directory) / "sd15-random"
    pipe.save_pretrained(str(path), safe_serialization=True)
    return path


DIFFUSERS_RUN = r"""
import json, resource, sys, time, torch
from diffusers import StableDiffusionPipeline
torch.set_grad_enabled(False)
path, steps = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
pipe = StableDiffusionPipeline.from_pretrained(path, torch_dtype=torch.float32)
load = time.perf_counter() - t0
unet = pipe.unet
sample = torch.randn(2, 4, 64, 64); context = torch.randn(2, 77, 768)
times = []
for i in range(steps):
    t = torch.full((2,), 999.0 - 50.0 * i)
    t0 = time.perf_counter(); unet(sample, t, context); times.append(time.perf_counter() - t0)
print(json.dumps({"load_seconds": load, "step_seconds": times,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_diffusers(path, steps):
    out = subprocess.run([sys.executable, "-c", DIFFUSERS_RUN, str(path), str(steps)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_dreamforge(path, steps, workdir):
    from safetensors.torch import load_file
    out_file = pathlib.Path(workdir) / "bench_out.safetensors"
    args = {"path": str(path), "steps": steps, "batch": 2, "height": 512, "width": 512}
    subprocess.run([str(PROBE), "bench_pipeline", "--args", json.dumps(args), "--out", str(out_file)],
                   check=True)
    t = load_file(str(out_file))
    return {"load_seconds": t["load_seconds"].item(), "step_seconds": t["step_seconds"].tolist(),
            "peak_rss_mb": t["peak_rss_mb"].item()}


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="df-bench-")
    path = pathlib.Path(workdir) / "sd15-random"
    if not (path / "model_index.json").exists():
        path = build_sd15_sized_pipeline(workdir)
    # Warm the page cache once so both loaders read from memory, not disk.
    for f in path.rglob("*.safetensors"):
        f.read_bytes()
    # Alternate the two engines so that a disturbance of the machine hits both alike.
    ours_runs, theirs_runs = [], []
    for _ in range(args.rounds):
        ours_runs.append(run_dreamforge(path, args.steps, workdir))
        theirs_runs.append(run_diffusers(path, args.steps))
    # Steady-state steps: the first step of a run also pages the weights in.
    ours_step = median([s for r in ours_runs for s in r["step_seconds"][1:]])
    theirs_step = median([s for r in theirs_runs for s in r["step_seconds"][1:]])
    ours = {"load_seconds": median([r["load_seconds"] for r in ours_runs]),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in ours_runs), "runs": ours_runs}
    theirs = {"load_seconds": median([r["load_seconds"] for r in theirs_runs]),
              "peak_rss_mb": max(r["peak_rss_mb"] for r in theirs_runs), "runs": theirs_runs}
    import torch
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "dreamforge": ours, "diffusers": theirs,
        "unet_step_seconds": {"dreamforge": ours_step, "diffusers": theirs_step,
                              "ratio_dreamforge_over_diffusers": ours_step / theirs_step},
        "load_seconds": {"dreamforge": ours["load_seconds"], "diffusers": theirs["load_seconds"],
                         "speedup_dreamforge_vs_diffusers": theirs["load_seconds"] / ours["load_seconds"]},
        "peak_rss_mb": {"dreamforge": ours["peak_rss_mb"], "diffusers": theirs["peak_rss_mb"]},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
