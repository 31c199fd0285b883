#!/usr/bin/env python3
"""Writes the standard CLIP BPE vocabulary (openai/clip-vit-large-patch14's; SD2/SDXL's OpenCLIP
uses the same) as a Hugging Face tokenizer folder, built from the BPE merges open_clip ships.

Usage: clip_vocabulary.py DIR   (run with the project's .venv Python, which has open_clip)
"""
import gzip
import importlib.util
import json
import pathlib
import sys

VOCAB_SIZE = 49408
SPECIAL_TOKENS = ["<|startoftext|>", "<|endoftext|>"]


def byte_level_alphabet():
    """The characters byte-level BPE uses for the bytes 0-255, in byte order: printable Latin-1
    bytes stand for themselves, the others map to U+0100 onwards."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    alphabet = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in alphabet:
            alphabet[b] = chr(256 + extra)
            extra += 1
    # OpenAI's CLIP orders its base vocabulary printable bytes first, then the remapped ones.
    return [alphabet[b] for b in printable] + [alphabet[b] for b in range(256) if b not in printable]


def open_clip_merges():
    """The merge rules of open_clip's bpe_simple_vocab_16e6.txt.gz that CLIP uses, as pairs."""
    spec = importlib.util.find_spec("open_clip")  # located, not imported: only its data file is used
    if spec is None:
        raise SystemExit("open_clip is not installed (pip install open-clip-torch)")
    bpe = pathlib.Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")
    count = VOCAB_SIZE - 2 * 256 - len(SPECIAL_TOKENS)
    return [tuple(line.split()) for line in lines[1:1 + count]]


def write_clip_vocabulary(directory, pad_token="<|endoftext|>"):
    """Writes vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json of the
    49408-token CLIP vocabulary into `directory` (created if needed); returns its path."""
    merges = open_clip_merges()
    base = byte_level_alphabet()
    vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + SPECIAL_TOKENS
    assert len(vocab) == VOCAB_SIZE
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": pad_token}
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    (directory / "special_tokens_map.json").write_text(json.dumps(special))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
        **special}))
    return directory


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(write_clip_vocabulary(sys.argv[1]))
