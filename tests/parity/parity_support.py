"""Helpers shared by the parity suite: the probe tool, the real CLIP vocabulary, comparisons."""
import gzip
import json
import os
import pathlib
import subprocess

from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DREAMFORGE_BIN", ROOT / "build" / "bin"))
PROBE = BIN / "dreamforge-probe"


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


def _bytes_to_unicode():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, [chr(c) for c in chars]))


def write_clip_tokenizer(directory, pad_token="<|endoftext|>"):
    """Writes the real 49408-token CLIP vocabulary (built from open_clip's BPE merges, as OpenAI's
    CLIP builds it) in the Hugging Face tokenizer layout."""
    import importlib.util
    spec = importlib.util.find_spec("open_clip")  # located, not imported: only its data file is used
    bpe = pathlib.Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    base = list(_bytes_to_unicode().values())
    vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    (directory / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": pad_token}))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": pad_token}))
    return directory


def max_abs_diff(a, b):
    return (a.double() - b.double()).abs().max().item()
