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
