"""`dreamforge model create-tiny --kind lora`: tiny LoRAs in each layout whose tensors address the
modules of the tiny checkpoint of their family, with fitting sizes, and load into diffusers."""
import math
import os

import pytest
import torch
from safetensors import safe_open

FAMILIES = ("sd1", "sd2", "sdxl")
MODULE_SUFFIXES = (".lora_up.weight", ".lora_down.weight", ".lora_B.weight", ".lora_A.weight",
                   ".alpha", ".hada_w1_a", ".hada_w1_b", ".hada_w2_a", ".hada_w2_b", ".lokr_w1",
                   ".lokr_w2", ".lokr_w2_a", ".lokr_w2_b")

torch.set_grad_enabled(False)


@pytest.fixture(scope="module", params=FAMILIES)
def checkpoint(request, dreamforge, tmp_path_factory):
    """(family, path) of a tiny checkpoint written by the CLI."""
    family = request.param
    path = tmp_path_factory.mktemp(f"tiny_{family}") / "model"
    dreamforge("model", "create-tiny", path, "--family", family, "--seed", 1)
    return family, path


def file_tensors(path):
    with safe_open(str(path), "pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}


def write_lora(dreamforge, directory, family, lora_format, seed=2):
    path = directory / f"{family}_{lora_format}.safetensors"
    proc = dreamforge("model", "create-tiny", path, "--kind", "lora", "--family", family,
                      "--lora-format", lora_format, "--seed", seed)
    assert proc.stdout.strip() == os.path.abspath(path)
    return path


def modules(tensors):
    """LoRA module name -> {suffix: tensor}."""
    out = {}
    for key, tensor in tensors.items():
        suffix = next(s for s in MODULE_SUFFIXES if key.endswith(s))
        out.setdefault(key[:-len(suffix)], {})[suffix] = tensor
    return out


def checkpoint_weights(path, family):
    """kohya module name -> weight shape, from the checkpoint's diffusers names (SD1/SD2: kohya
    trains them on the diffusers UNet)."""
    names = {}
    unet = file_tensors(path / "unet" / "diffusion_pytorch_model.safetensors")
    for key, tensor in unet.items():
        names["lora_unet_" + key.removesuffix(".weight").replace(".", "_")] = tensor.shape
    prefixes = {"text_encoder": "lora_te_"}
    if family == "sdxl":
        prefixes = {"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}
    for folder, prefix in prefixes.items():
        for key, tensor in file_tensors(path / folder / "model.safetensors").items():
            names[prefix + key.removesuffix(".weight").replace(".", "_")] = tensor.shape
    return names


def difference_size(parts):
    """How many values the module's difference has (it must equal its weight's)."""
    if ".lora_up.weight" in parts:
        return parts[".lora_up.weight"].shape[0] * parts[".lora_down.weight"][0].numel()
    if ".hada_w1_a" in parts:
        return parts[".hada_w1_a"].shape[0] * parts[".hada_w1_b"].shape[1]
    w2 = parts.get(".lokr_w2")
    w2_size = w2.numel() if w2 is not None else (parts[".lokr_w2_a"].shape[0] *
                                                 parts[".lokr_w2_b"].shape[1])
    return parts[".lokr_w1"].numel() * w2_size


@pytest.mark.parametrize("lora_format", ["kohya", "loha", "lokr"])
def test_kohya_names_address_checkpoint_weights(checkpoint, lora_format, dreamforge, tmp_path):
    family, path = checkpoint
    lora = modules(file_tensors(write_lora(dreamforge, tmp_path, family, lora_format)))
    weights = checkpoint_weights(path, family)
    assert lora
    for name, parts in lora.items():
        if family == "sdxl" and name.startswith("lora_unet_"):
            assert "_input_blocks_" in name or "_middle_block_" in name or "_output_blocks_" in name
            continue  # LDM names, checked by loading into diffusers below
        assert name in weights, name
        assert difference_size(parts) == math.prod(weights[name]), name
        assert parts[".alpha"].item() == 2.0


def lora_layers(module):
    return sum(1 for m in module.modules() if hasattr(m, "lora_A") and "tiny" in m.lora_A)


@pytest.mark.parametrize("lora_format", ["kohya", "peft"])
def test_loads_into_diffusers_on_every_module(checkpoint, lora_format, dreamforge, tmp_path):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    family, path = checkpoint
    lora_path = write_lora(dreamforge, tmp_path, family, lora_format)
    names = modules(file_tensors(lora_path))
    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    pipe = cls.from_pretrained(str(path), local_files_only=True)
    pipe.load_lora_weights(str(lora_path), adapter_name="tiny")
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    assert lora_layers(pipe.unet) == sum(n.startswith(("lora_unet_", "unet.")) for n in names)
    assert sum(lora_layers(e) for e in encoders) == sum(
        n.startswith(("lora_te", "text_encoder")) for n in names)


def test_installs_into_the_loras_folder_and_repeats_bytes(dreamforge, tmp_path):
    for name in ("a", "b"):
        dreamforge("model", "create-tiny", "--kind", "lora", "--family", "sd1", "--data-dir",
                   tmp_path, "--name", name, "--seed", 7)
    first, second = (tmp_path / "models" / "loras" / f"{n}.safetensors" for n in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    with safe_open(str(first), "pt") as f:
        assert f.metadata()["dreamforge_test_model"] == "random weights"


def test_writes_into_a_folder_and_refuses_other_files(dreamforge, tmp_path):
    proc = dreamforge("model", "create-tiny", tmp_path / "out", "--kind", "lora", "--family",
                      "sdxl", "--lora-format", "lokr")
    assert proc.stdout.strip() == os.path.abspath(tmp_path / "out" / "tiny-lora.safetensors")
    other = tmp_path / "mine.safetensors"
    other.write_bytes(b"keep me")
    proc = dreamforge("model", "create-tiny", other, "--kind", "lora", "--family", "sd1",
                      check=False)
    assert proc.returncode == 1
    assert "refusing to overwrite" in proc.stderr
    assert other.read_bytes() == b"keep me"


def test_rejects_an_unknown_kind_and_format(dreamforge, tmp_path):
    for options in (["--kind", "nonesuch"], ["--kind", "lora", "--lora-format", "glora"]):
        proc = dreamforge("model", "create-tiny", tmp_path / "x", "--family", "sd1", *options,
                          check=False)
        assert proc.returncode != 0
        assert options[-1] in proc.stderr
    assert not (tmp_path / "x").exists()
