"""SDXL GPU benchmark: the SDXL base UNet at its real size (2.57 B parameters) with random bfloat16
weights, 30 denoising steps at 1024x1024, batch 1, on one GPU: diffusers eager (SDPA attention),
diffusers under torch.compile, and Dream Forge's engine (dreamforge-probe bench_unet), each in a
fresh process, one after the other.

Per variant: seconds per step (median of the timed steps, each step synchronised with the device),
seconds per image (the sum of the 30 step times: the UNet's share of an image; text encoders and
the VAE decode are not in it), peak device memory (NVML's figure for the process from nvidia-smi,
and torch.cuda.max_memory_allocated for diffusers), and the UNet's model-FLOPs utilisation:

    MFU = FLOPs of one UNet call / seconds per step / 989e12

with the FLOPs counted once by torch.utils.flop_counter.FlopCounterMode on diffusers' UNet (two per
multiply-add; convolutions, matrix products and attention) and 989 TFLOP/s the H100 SXM's dense
bfloat16 peak.

--cpu runs the same path at toy size on the CPU (a tiny SDXL-shaped UNet, 64x64 px, 3 steps) so the
script can be proven on a machine without a GPU; its numbers mean nothing.

Usage: python bench/sdxl_gpu_bench.py [--cpu] [--steps 30] [--size 1024] [--workdir DIR]
       [--variants diffusers-eager,dreamforge,diffusers-compile] [--baseline JSON]
       [--compile-mode reduce-overhead] [--compile-timeout 300] [--json FILE] [--markdown FILE]
"""
import argparse
import json
import math
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROBE = pathlib.Path(os.environ.get("DREAMFORGE_BIN", ROOT / "build" / "bin")) / "dreamforge-probe"
H100_DENSE_BF16_FLOPS = 989e12

# stabilityai/stable-diffusion-xl-base-1.0's unet/config.json.
SDXL_CONFIG = dict(
    act_fn="silu", addition_embed_type="text_time", addition_embed_type_num_heads=64,
    addition_time_embed_dim=256, attention_head_dim=[5, 10, 20],
    block_out_channels=[320, 640, 1280],
    cross_attention_dim=2048, in_channels=4, out_channels=4, layers_per_block=2,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn", norm_eps=1e-5, norm_num_groups=32,
    projection_class_embeddings_input_dim=2816, sample_size=128,
    transformer_layers_per_block=[1, 2, 10], use_linear_projection=True)
# The same architecture at toy size, for --cpu.
TINY_CONFIG = dict(SDXL_CONFIG, addition_time_embed_dim=8, attention_head_dim=[2, 4, 4],
                   block_out_channels=[32, 64, 64], cross_attention_dim=64,
                   projection_class_embeddings_input_dim=6 * 8 + 32, sample_size=8,
                   transformer_layers_per_block=[1, 1, 2])


def build_random_unet(directory, config, dtype_name, device):
    """The UNet with random weights allocated in `dtype_name` (initialised on `device`, which is
    quick on a GPU), saved as a diffusers folder with one weights file (the probe reads
    diffusion_pytorch_model.safetensors); a folder saved before is reused. Returns (folder,
    parameter count)."""
    import torch
    from safetensors import safe_open
    path = pathlib.Path(directory) / "unet"
    weights = path / "diffusion_pytorch_model.safetensors"
    if not weights.exists():
        from diffusers import UNet2DConditionModel
        torch.manual_seed(0)
        torch.set_default_dtype(getattr(torch, dtype_name))
        with torch.device(device):
            model = UNet2DConditionModel(**config)
        model.save_pretrained(str(path), safe_serialization=True, max_shard_size="100GB")
        del model
    with safe_open(str(weights), "pt") as f:
        count = sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
    return path, count


def unet_inputs(unet, size, device, dtype):
    import torch
    generator = torch.Generator().manual_seed(1)
    config = unet.config
    pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    return dict(
        sample=torch.randn(1, 4, size // 8, size // 8, generator=generator).to(device, dtype),
        encoder_hidden_states=torch.randn(1, 77, config.cross_attention_dim,
                                          generator=generator).to(device, dtype),
        added_cond_kwargs={"text_embeds": torch.randn(1, pooled,
                                                      generator=generator).to(device, dtype),
                           "time_ids": torch.tensor([[size, size, 0, 0, size, size]],
                                                    dtype=dtype, device=device)})


def diffusers_worker(args):
    """One diffusers variant in this process; prints its readings as one JSON line."""
    import torch
    from diffusers import UNet2DConditionModel
    torch.set_grad_enabled(False)
    device, dtype = args.device, getattr(torch, args.dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    start = time.perf_counter()
    unet = UNet2DConditionModel.from_pretrained(args.path, torch_dtype=dtype).to(device).eval()
    load_seconds = time.perf_counter() - start
    inputs = unet_inputs(unet, args.size, device, dtype)
    call = unet
    result = {"variant": args.worker}
    if args.compile_mode != "none":
        call = torch.compile(unet, mode=args.compile_mode, fullgraph=False)
        start = time.perf_counter()
        call(timestep=torch.tensor([999.0], device=device), **inputs)
        sync()
        result["compile_seconds"] = time.perf_counter() - start
    for i in range(args.warmup):
        call(timestep=torch.tensor([999.0 - i], device=device), **inputs)
    sync()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    steps = []
    for i in range(args.steps):
        timestep = torch.tensor([999.0 - 30.0 * i], device=device)
        start = time.perf_counter()
        call(timestep=timestep, **inputs)
        sync()
        steps.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        result["torch_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if args.count_flops:
        from torch.utils.flop_counter import FlopCounterMode
        with FlopCounterMode(display=False) as counter:
            unet(timestep=torch.tensor([500.0], device=device), **inputs)
        result["flops_per_step"] = counter.get_total_flops()
    result.update(load_seconds=load_seconds, step_seconds=steps,
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result), flush=True)


class DeviceMemoryPeak:
    """The largest device memory NVML reports for one process while it runs (nvidia-smi, polled
    every 0.2 s); None where there is no nvidia-smi or it never lists the process."""

    def __init__(self, pid):
        self.pid, self.peak_mb, self._stop = pid, None, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        if shutil.which("nvidia-smi"):
            self._thread.start()

    def _poll(self):
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                  "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                fields = [f.strip() for f in line.split(",")]
                if len(fields) == 2 and fields[0] == str(self.pid) and fields[1].isdigit():
                    self.peak_mb = max(self.peak_mb or 0, int(fields[1]))
            self._stop.wait(0.2)

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.peak_mb


def run_measured(command, timeout):
    """Runs one variant's process; returns (its standard output, NVML peak MB) or raises."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = DeviceMemoryPeak(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        peak.stop()
        raise RuntimeError(f"timed out after {timeout} s")
    peak_mb = peak.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {err.strip()[-2000:]}")
    return out, peak_mb


def run_diffusers(args, path, variant, compile_mode, count_flops, timeout):
    command = [sys.executable, __file__, "--worker", variant, "--path", str(path),
               "--device", args.device, "--dtype", args.dtype, "--size", str(args.size),
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--compile-mode", compile_mode] + (["--count-flops"] if count_flops else [])
    out, peak_mb = run_measured(command, timeout)
    result = json.loads(out.strip().splitlines()[-1])
    result["nvml_peak_mb"] = peak_mb
    return result


def run_dreamforge(args, path, workdir, timeout):
    from safetensors.torch import load_file
    out_file = pathlib.Path(workdir) / "bench_unet_out.safetensors"
    probe_args = {"path": str(path), "device": args.device, "dtype": args.dtype,
                  "steps": args.warmup + args.steps, "batch": 1, "height": args.size,
                  "width": args.size}
    _, peak_mb = run_measured([str(PROBE), "bench_unet", "--args", json.dumps(probe_args),
                               "--out", str(out_file)], timeout)
    t = load_file(str(out_file))
    return {"variant": "dreamforge", "load_seconds": t["load_seconds"].item(),
            "step_seconds": t["step_seconds"].tolist()[args.warmup:],
            "peak_rss_mb": t["peak_rss_mb"].item(), "nvml_peak_mb": peak_mb}


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def summarise(result, flops_per_step, peak_flops):
    step = median(result["step_seconds"])
    result["median_step_seconds"] = step
    result["image_seconds"] = sum(result["step_seconds"])
    if flops_per_step:
        result["mfu"] = flops_per_step / step / peak_flops
    return result


def markdown(report):
    rows = ["| variant | s/step | s/image (UNet, {steps} steps) | speed vs eager "
            "| peak device MB (NVML) | torch peak allocated MB | MFU | load s | compile s |"
            .format(steps=report["steps"]),
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    eager = next((r for r in report["results"] if r["variant"] == "diffusers-eager"
                  and "median_step_seconds" in r), None)

    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)
    for r in report["results"]:
        if "error" in r:
            rows.append(f"| {r['variant']} | failed: {r['error'][:200]} | | | | | | | |")
            continue
        ratio = eager["median_step_seconds"] / r["median_step_seconds"] if eager else None
        rows.append(" | ".join([
            f"| {r['variant']}", cell(r["median_step_seconds"], ".4f"),
            cell(r["image_seconds"], ".2f"), cell(ratio, ".2f") + ("x" if ratio else ""),
            cell(r.get("nvml_peak_mb"), ".0f"), cell(r.get("torch_peak_allocated_mb"), ".0f"),
            cell(r.get("mfu"), ".1%"), cell(r.get("load_seconds"), ".1f"),
            cell(r.get("compile_seconds"), ".0f")]) + " |")
    head = [f"SDXL UNet ({report['parameters'] / 1e6:,.0f} M parameters, random {report['dtype']} "
            f"weights), {report['size']}x{report['size']} px, batch 1, {report['steps']} steps on "
            f"{report['device_name']}; torch {report['torch']}, diffusers {report['diffusers']}.",
            f"UNet FLOPs per step: {cell(report.get('flops_per_step'), '.4g')}; MFU = FLOPs per "
            f"step / s per step / {report['peak_flops']:.4g}.", ""]
    return "\n".join(head + rows) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpu", action="store_true", help="toy-size dry run on the CPU")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--size", type=int, help="image side in pixels")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--compile-mode", default="reduce-overhead",
                        help="torch.compile mode of the compiled diffusers variant, or none")
    parser.add_argument("--compile-timeout", type=int, default=300)
    parser.add_argument("--timeout", type=int, default=240, help="seconds for each other variant")
    parser.add_argument("--variants", default="diffusers-eager,dreamforge,diffusers-compile",
                        help="comma-separated: diffusers-eager, dreamforge, diffusers-compile")
    parser.add_argument("--baseline", help="JSON of an earlier run whose results to include")
    parser.add_argument("--workdir")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    # A variant's own process (internal).
    parser.add_argument("--worker")
    parser.add_argument("--path")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--count-flops", action="store_true")
    args = parser.parse_args()
    if args.worker:
        return diffusers_worker(args)

    import diffusers
    import torch
    if args.cpu:
        args.device, args.steps, args.size = "cpu", args.steps or 3, args.size or 64
    else:
        args.steps, args.size = args.steps or 30, args.size or 1024
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="df-sdxl-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path, parameters = build_random_unet(workdir, TINY_CONFIG if args.cpu else SDXL_CONFIG,
                                         args.dtype, args.device)
    report = {"device_name": torch.cuda.get_device_name() if not args.cpu else "CPU (dry run)",
              "torch": torch.__version__, "diffusers": diffusers.__version__,
              "dtype": args.dtype, "size": args.size, "steps": args.steps,
              "parameters": parameters, "peak_flops": H100_DENSE_BF16_FLOPS, "results": []}
    if args.baseline:  # results of an earlier run of other variants on the same weights
        baseline = json.loads(pathlib.Path(args.baseline).read_text())
        report["results"] = baseline["results"]
        if "flops_per_step" in baseline:
            report["flops_per_step"] = baseline["flops_per_step"]
    variants = [
        ("diffusers-eager", lambda: run_diffusers(args, path, "diffusers-eager", "none", True,
                                                  args.timeout)),
        ("dreamforge", lambda: run_dreamforge(args, path, workdir, args.timeout)),
        (f"diffusers-compile-{args.compile_mode}",
         lambda: run_diffusers(args, path, f"diffusers-compile-{args.compile_mode}",
                               args.compile_mode, False, args.compile_timeout)),
    ]
    chosen = args.variants.split(",")
    for name, run in variants:
        if name.endswith("-none") or not any(name.startswith(c) for c in chosen):
            continue
        start = time.perf_counter()
        try:
            result = run()
            if "flops_per_step" in result:
                report["flops_per_step"] = result["flops_per_step"]
            summarise(result, report.get("flops_per_step"), H100_DENSE_BF16_FLOPS)
            if name == "diffusers-eager":  # the MFU of variants run before the FLOPs were known
                for earlier in report["results"]:
                    if "median_step_seconds" in earlier:
                        summarise(earlier, report["flops_per_step"], H100_DENSE_BF16_FLOPS)
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            result = {"variant": name, "error": str(e)}
        result["wall_seconds"] = time.perf_counter() - start
        report["results"].append(result)
        print(json.dumps(result), flush=True)
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
        if args.markdown:
            pathlib.Path(args.markdown).write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
