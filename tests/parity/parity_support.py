"""Helpers shared by the parity suite: the probe tool, the real CLIP vocabulary, comparisons."""
import json
import os
import pathlib
import subprocess
import sys

from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DREAMFORGE_BIN", ROOT / "build" / "bin"))
PROBE = BIN / "dreamforge-probe"

# Where the device-aware parity tests (test_device_parity.py) run both the engine and diffusers:
# this machine's CPU in float32 unless DREAMFORGE_PARITY_DEVICE (cpu, cuda, cuda:N) and
# DREAMFORGE_PARITY_DTYPE (float32, float16, bfloat16) say otherwise; scripts/gpu-check sets them.
PARITY_DEVICE = os.environ.get("DREAMFORGE_PARITY_DEVICE", "cpu")
PARITY_DTYPE = os.environ.get("DREAMFORGE_PARITY_DTYPE", "float32")
# Largest max abs difference allowed between the engine and diffusers, relative to the largest
# magnitude of diffusers' output, when both run in the same dtype on the same device. float32 on
# CUDA allows for TF32 convolutions (cuDNN's default in both); half precisions for their rounding
# (float16 keeps 11 significant bits, bfloat16 8).
PARITY_TOLERANCE = {("cpu", "float32"): 1e-4, ("cuda", "float32"): 2e-3,
                    ("cpu", "float16"): 2e-2, ("cuda", "float16"): 2e-2,
                    ("cpu", "bfloat16"): 5e-2, ("cuda", "bfloat16"): 5e-2}

sys.path.insert(0, str(ROOT / "scripts"))
# The real 49408-token CLIP vocabulary in the Hugging Face layout, as scripts/setup installs it.
from clip_vocabulary import write_clip_vocabulary as write_clip_tokenizer  # noqa: E402


def run_probe(command, tmp_path, args=None, inputs=None, expect_ok=True):
    """Runs one dreamforge-probe command; returns (outputs dict, completed process)."""
    in_path = tmp_path / f"{command}_in.safetensors"
    out_path = tmp_path / f"{command}_out.safetensors"
    cmd = [str(PROBE), command, "--args", json.dumps(args or {}), "--out", str(out_path)]
    if inputs:
        save_file({k: v.contiguous() for k, v in inputs.items()}, str(in_path))
        cmd += ["--in", str(in_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if expect_ok:
        assert proc.returncode == 0, f"probe {command} failed:\n{proc.stderr}"
        return load_file(str(out_path)), proc
    return None, proc


def max_abs_diff(a, b):
    return (a.double() - b.double()).abs().max().item()


def write_tiny_split_files(data_dir, family):
    """The tiny split files `dreamforge model create-tiny --kind split` writes for a DiT family
    (flux, flux-schnell, sd3, zimage) into data_dir; returns the models root."""
    subprocess.run([str(BIN / "dreamforge"), "model", "create-tiny", "--data-dir", str(data_dir),
                    "--family", family, "--kind", "split"], check=True, capture_output=True,
                   timeout=600)
    return pathlib.Path(data_dir) / "models"


def parity_tolerance(device, dtype):
    """The relative tolerance of the device-aware tests for a device ("cuda:1" counts as cuda)."""
    key = (device.split(":")[0], dtype)
    if key not in PARITY_TOLERANCE:
        raise ValueError(f"no parity tolerance for device {device!r} and dtype {dtype!r}")
    return PARITY_TOLERANCE[key]
