"""LoRA parity: the engine's LoRA patches against diffusers and the LyCORIS formulas.

Tiny SD1 and SDXL pipelines get LoRAs written by `dreamforge model create-tiny --kind lora`
(kohya names, LDM-style for SDXL; PEFT names; LoHa; LoKr). For kohya and PEFT files the patched
UNet and text-encoder weights, and the modules' outputs, must equal diffusers' load_lora_weights +
fuse_lora; for LoHa and LoKr the weights must equal the formulas computed here. fp32, within
1e-4."""
import json
import subprocess

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from safetensors.torch import load_file

import single_file
import tiny_models
from parity_support import BIN, max_abs_diff

STRENGTH_MODEL = 0.7
STRENGTH_CLIP = -0.4
TOLERANCE = 1e-4
ALPHA = 2.0  # what the tiny LoRA writer stores (rank 4)


@pytest.fixture(scope="module", params=["sd1", "sdxl"])
def tiny(request, tmp_path_factory):
    """(family, saved pipeline folder, base weights under the probe's names)."""
    family = request.param
    pipe, path = tiny_models.build(family, tmp_path_factory.mktemp(f"lora_{family}"))
    return family, path, probe_names(pipe)


def pipeline_class(family):
    return StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline


def text_encoder_names(family):
    return ["text_encoder", "text_encoder_2"] if family == "sdxl" else ["text_encoder"]


def probe_names(pipe):
    """The pipeline's UNet and text-encoder weights as the probe names them."""
    out = {f"unet.{key}": value.clone() for key, value in pipe.unet.state_dict().items()}
    for name in ("text_encoder", "text_encoder_2"):
        module = getattr(pipe, name, None)
        if module is None:
            continue
        for key, value in module.state_dict().items():
            if not key.endswith("position_ids"):
                out[f"{name}.{key.removeprefix('text_model.')}"] = value.clone()
    return out


def write_lora(directory, family, lora_format, seed=5):
    path = directory / f"{family}_{lora_format}.safetensors"
    subprocess.run([str(BIN / "dreamforge"), "model", "create-tiny", str(path), "--kind", "lora",
                    "--family", family, "--lora-format", lora_format, "--seed", str(seed)],
                   check=True, capture_output=True, text=True)
    return path


def engine_patched(probe, model, lora, inputs=None):
    """(patched weights, outputs of the patched modules for `inputs`, the probe's report)."""
    tensors, proc = probe("lora_apply", {"model": str(model), "lora": str(lora),
                                         "strength_model": STRENGTH_MODEL,
                                         "strength_clip": STRENGTH_CLIP}, inputs)
    report = json.loads(proc.stdout)
    assert report["unmatched"] == [] and report["rejected"] == [], report
    outputs = {k[len("output."):]: tensors.pop(k) for k in list(tensors) if k.startswith("output.")}
    return tensors, outputs, report


def module_inputs(family):
    """UNet and text-encoder inputs: a 16x16 latent, context and (SDXL) added conditioning, and
    token ids ending in the end token."""
    generator = torch.Generator().manual_seed(3)
    xl = family == "sdxl"
    inputs = {"sample": torch.randn(1, 4, 16, 16, generator=generator),
              "timestep": torch.tensor([500.0]),
              "context": torch.randn(1, 77, 64 if xl else 32, generator=generator),
              "ids": torch.tensor([[49406, 320, 1125, 539, 49407] + [49407] * 72])}
    if xl:
        inputs["text_embeds"] = torch.randn(1, 32, generator=generator)
        inputs["time_ids"] = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])
    return inputs


def diffusers_outputs(pipe, family, inputs):
    added = None
    if family == "sdxl":
        added = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
    out = {"unet": pipe.unet(inputs["sample"], inputs["timestep"], inputs["context"],
                             added_cond_kwargs=added).sample}
    for name in text_encoder_names(family):
        encoded = getattr(pipe, name)(inputs["ids"])
        out[f"{name}.last_hidden_state"] = encoded.last_hidden_state
        out[f"{name}.pooled"] = encoded[1] if name == "text_encoder" else encoded.text_embeds
    return out


def module_count(lora):
    """How many weights the file patches (one name per module, before its tensor suffix)."""
    suffixes = (".lora_down.weight", ".lora_A.weight", ".hada_w1_a", ".lokr_w1")
    return sum(key.endswith(suffixes) for key in load_file(str(lora)))


def diffusers_fused(family, model, lora):
    pipe = pipeline_class(family).from_pretrained(str(model), torch_dtype=torch.float32)
    pipe.load_lora_weights(dict(load_file(str(lora))), adapter_name="tiny")
    pipe.fuse_lora(components=["unet"], lora_scale=STRENGTH_MODEL)
    pipe.fuse_lora(components=text_encoder_names(family), lora_scale=STRENGTH_CLIP)
    pipe.unload_lora_weights()
    return pipe


def assert_same_weights(got, expected, base):
    assert sorted(got) == sorted(expected)
    worst = max(max_abs_diff(got[key], expected[key]) for key in expected)
    assert worst < TOLERANCE, worst
    changes = {key: max_abs_diff(expected[key], base[key]) for key in expected}
    # The tolerance must be small beside what the LoRA changes, or the comparison proves nothing.
    assert max(changes.values()) > 100 * TOLERANCE
    return [key for key, change in changes.items() if change > TOLERANCE]


@pytest.mark.parametrize("lora_format", ["kohya", "peft"])
def test_lora_matches_diffusers_fuse_lora(tiny, lora_format, probe, tmp_path):
    family, model, base = tiny
    lora = write_lora(tmp_path, family, lora_format)
    inputs = module_inputs(family)
    got, outputs, report = engine_patched(probe, model, lora, inputs)
    assert report["patched"] == module_count(lora)
    pipe = diffusers_fused(family, model, lora)
    changed = assert_same_weights(got, probe_names(pipe), base)
    assert any(key.startswith("unet.") for key in changed)
    for encoder in text_encoder_names(family):
        assert any(key.startswith(encoder + ".") for key in changed), encoder
    expected = diffusers_outputs(pipe, family, inputs)
    assert sorted(outputs) == sorted(expected)
    for name, value in expected.items():
        assert max_abs_diff(outputs[name], value) < TOLERANCE, name


# ---- LoHa / LoKr against their formulas ----

def kohya_targets(family, base, config):
    """kohya module name -> probe weight name, built here from the diffusers names (SDXL's via the
    test suite's own diffusers -> LDM converter)."""
    unet_keys = {key[len("unet."):]: key for key in base if key.startswith("unet.")}
    if family == "sdxl":
        unet_keys = {ldm: unet_keys[key] for ldm, key in
                     single_file.unet_to_ldm({k: k for k in unet_keys}, config).items()}
    targets = {f"lora_unet_{name.removesuffix('.weight').replace('.', '_')}": key
               for name, key in unet_keys.items() if name.endswith(".weight")}
    prefixes = {"text_encoder": "lora_te1_" if family == "sdxl" else "lora_te_",
                "text_encoder_2": "lora_te2_"}
    for key in base:
        encoder, _, name = key.partition(".")
        if encoder in prefixes and name.endswith(".weight"):
            module = "text_model." + name.removesuffix(".weight")
            targets[prefixes[encoder] + module.replace(".", "_")] = key
    return targets


def loha_delta(t, name, shape):
    w1 = t[name + ".hada_w1_a"] @ t[name + ".hada_w1_b"]
    w2 = t[name + ".hada_w2_a"] @ t[name + ".hada_w2_b"]
    rank = t[name + ".hada_w1_b"].shape[0]
    return (w1 * w2 * (ALPHA / rank)).reshape(shape)


def lokr_delta(t, name, shape):
    w1 = t[name + ".lokr_w1"]
    if name + ".lokr_w2" in t:  # both sides whole: alpha does not apply
        w2 = t[name + ".lokr_w2"]
        scale = 1.0
    else:
        w2 = t[name + ".lokr_w2_a"] @ t[name + ".lokr_w2_b"]
        scale = ALPHA / t[name + ".lokr_w2_b"].shape[0]
    if w2.dim() == 4:
        w1 = w1[:, :, None, None]
    return (torch.kron(w1, w2) * scale).reshape(shape)


@pytest.mark.parametrize("lora_format,delta", [("loha", loha_delta), ("lokr", lokr_delta)])
def test_lycoris_matches_its_formula(tiny, lora_format, delta, probe, tmp_path):
    family, model, base = tiny
    lora = write_lora(tmp_path, family, lora_format)
    got, _, report = engine_patched(probe, model, lora)
    tensors = load_file(str(lora))
    config = json.loads((model / "unet" / "config.json").read_text())
    targets = kohya_targets(family, base, config)
    names = {key.rsplit(".", 1)[0] for key in tensors}
    assert report["patched"] == len(names)
    expected = dict(base)
    for name in names:
        key = targets[name]
        strength = STRENGTH_MODEL if key.startswith("unet.") else STRENGTH_CLIP
        expected[key] = base[key] + strength * delta(tensors, name, base[key].shape)
    assert_same_weights(got, expected, base)
