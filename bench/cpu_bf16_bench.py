"""CPU bfloat16 benchmark: Dream Forge's UNet step in bfloat16 against diffusers in float32 (the
peer's CPU default) on SD 1.5-sized random weights at 512x512, batch 2, in the same run, with
Dream Forge float32 and diffusers bfloat16 (channels-last) for reference; then a short full
generation (text encoders, 4 Euler steps with CFG, VAE decode) in Dream Forge bfloat16 and float32
from the same weights, latents and seed, compared pixel by pixel. Also times the TAESD decode a
live preview costs at 512x512 (a 64x64 latent, float32, random weights of TAESD's shape).

Usage: .venv/bin/python bench/cpu_bf16_bench.py [--steps 4] [--rounds 3] [--workdir DIR]
"""
import argparse
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from engine_bench import PROBE, build_sd15_sized_pipeline, median  # noqa: E402

DIFFUSERS_STEPS = r"""
import json, sys, time, torch
from diffusers import UNet2DConditionModel
torch.set_grad_enabled(False)
path, steps, dtype_name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
dtype = getattr(torch, dtype_name)
unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtype)
sample = torch.randn(2, 4, 64, 64, dtype=dtype); context = torch.randn(2, 77, 768, dtype=dtype)
if dtype != torch.float32:  # the usual recipe for reduced precision on a CPU
    unet = unet.to(memory_format=torch.channels_last)
    sample = sample.to(memory_format=torch.channels_last)
times = []
for i in range(steps):
    t = torch.full((2,), 999.0 - 50.0 * i)
    t0 = time.perf_counter(); unet(sample, t, context); times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""

PROMPT = "a lighthouse on a cliff at sunset, oil painting"
NEGATIVE = "blurry"


def diffusers_steps(path, steps, dtype):
    out = subprocess.run([sys.executable, "-c", DIFFUSERS_STEPS, str(path), str(steps), dtype],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe(command, args, workdir, inputs=None):
    from safetensors.torch import load_file, save_file
    out_file = pathlib.Path(workdir) / f"{command}_out.safetensors"
    cmd = [str(PROBE), command, "--args", json.dumps(args), "--out", str(out_file)]
    if inputs:
        in_file = pathlib.Path(workdir) / f"{command}_in.safetensors"
        save_file({k: v.contiguous() for k, v in inputs.items()}, str(in_file))
        cmd += ["--in", str(in_file)]
    subprocess.run(cmd, check=True)
    return load_file(str(out_file))


def dreamforge_steps(path, steps, dtype, workdir):
    args = {"path": str(path), "steps": steps, "batch": 2, "height": 512, "width": 512, "dtype": dtype}
    return probe("bench_pipeline", args, workdir)["step_seconds"].tolist()


def taesd_preview_steps(workdir, steps):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "parity"))
    import tiny_taesd
    encoder, decoder = tiny_taesd.save_taesd(tiny_taesd.build(seed=0), pathlib.Path(workdir) / "taesd")
    args = {"encoder": str(encoder), "decoder": str(decoder), "steps": steps, "height": 64, "width": 64}
    return probe("bench_taesd_decode", args, workdir)["step_seconds"].tolist()


def generate(path, dtype, workdir):
    """4 Euler steps at 512x512 with CFG 7 from fixed latents; the image as uint8 [H, W, 3]."""
    import torch
    from diffusers import EulerDiscreteScheduler
    scheduler = EulerDiscreteScheduler.from_pretrained(str(path), subfolder="scheduler")
    scheduler.set_timesteps(4)
    sigmas = scheduler.sigmas.to(torch.float32)
    latents = torch.randn((1, 4, 64, 64), generator=torch.Generator("cpu").manual_seed(0)) * sigmas[0]
    out = probe("txt2img", {"path": str(path), "prompt": PROMPT, "negative": NEGATIVE, "cfg": 7.0,
                            "sampler": "euler", "noise_seed": 0, "dtype": dtype},
                workdir, {"latents": latents, "sigmas": sigmas})
    return (out["image"][0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)


def image_difference(test, reference):
    diff = (test.double() - reference.double()).abs()
    mse = (diff ** 2).mean().item()
    return {"mean_abs_diff_0_255": diff.mean().item(), "max_abs_diff_0_255": diff.max().item(),
            "pixels_off_by_more_than_8": (diff > 8).double().mean().item(),
            "psnr_db": math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="df-bf16-bench-")
    path = pathlib.Path(workdir) / "sd15-random"
    if not (path / "model_index.json").exists():
        path = build_sd15_sized_pipeline(workdir)
    for f in path.rglob("*.safetensors"):  # warm the page cache for every process alike
        f.read_bytes()

    # Interleaved, each run a fresh process: a disturbance of the shared machine hits all alike.
    cases = {"diffusers float32": lambda: diffusers_steps(path, args.steps, "float32"),
             "dreamforge bfloat16": lambda: dreamforge_steps(path, args.steps, "bfloat16", workdir),
             "dreamforge float32": lambda: dreamforge_steps(path, args.steps, "float32", workdir),
             "diffusers bfloat16": lambda: diffusers_steps(path, args.steps, "bfloat16")}
    runs = {name: [] for name in cases}
    preview_runs = []
    for _ in range(args.rounds):
        for name, run in cases.items():
            runs[name].append(run())
        preview_runs.append(taesd_preview_steps(workdir, args.steps))
    # The first step of a run also pages weights in and plans kernels: left out of the median.
    step = {name: median([s for r in rs for s in r[1:]]) for name, rs in runs.items()}
    baseline = step["diffusers float32"]
    preview = median([s for r in preview_runs for s in r[1:]])

    reference = generate(path, "float32", workdir)
    fast = generate(path, "bfloat16", workdir)
    from PIL import Image
    Image.fromarray(reference.numpy()).save(pathlib.Path(workdir) / "generate_float32.png")
    Image.fromarray(fast.numpy()).save(pathlib.Path(workdir) / "generate_bfloat16.png")

    import torch
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"torch {torch.__version__}",
        "unet_step_seconds_median": step,
        "speedup_vs_diffusers_float32": {name: baseline / s for name, s in step.items()},
        "step_seconds": runs,
        "taesd_preview_decode_seconds_median": preview,
        "taesd_preview_share_of_step": {name: preview / s for name, s in step.items()
                                        if name.startswith("dreamforge")},
        "image_bfloat16_vs_float32": image_difference(fast, reference),
        "images": str(workdir),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
