"""fp8 weights on a tiny Z-Image transformer (fp32 CPU) against diffusers'
ZImageTransformer2DModel:

- a file whose matrix weights are stored as torch.float8_e4m3fn / float8_e5m2, and one in
  ComfyUI's "scaled fp8" format ("scaled_fp8" marker, per-weight float32 "scale_weight" and
  "scale_input", real weight = fp8 · scale_weight), each against diffusers running the very weights
  the file holds (upcast, times their scales): the engine must reproduce them to fp32 accuracy
  (1e-4 of the output's scale), since dequantisation itself is exact in float32;
- UNETLoader's fp8 weight storage of a float32 file, which quantizes each matrix weight with the
  scale max|w| / (the fp8 dtype's largest value): against diffusers running those quantized
  weights, to fp32 accuracy again, and against the unquantized model within fp8's rounding
  (relative RMS error, FP8_VS_FP32 below);
- the memory the fp8 storage keeps for a mid-sized model."""
import re

import pytest
import torch
from diffusers import ZImageTransformer2DModel
from safetensors.torch import save_file

from test_zimage_transformer_parity import (TINY, captions, comfy_names, diffusers_velocity,
                                            random_transformer)

TOLERANCE = 1e-4
# Quantizing every matrix to fp8 rounds each weight by up to 2^-4 (e4m3, 3 mantissa bits) or 2^-3
# (e5m2) of itself. This untrained random model amplifies such perturbations: its output moves by
# a relative RMS of 0.15 (e4m3) and 0.26 (e5m2) against float32 (the same for diffusers running the
# quantized weights, which the engine matches to 1e-4). The bounds below leave room for that
# while still catching a lost scale (scales here are ~1e-3: errors of 100% and more). The exact
# comparisons against the dequantized weights are what pin the engine's fp8 handling.
FP8_VS_FP32 = {torch.float8_e4m3fn: 0.25, torch.float8_e5m2: 0.4}
FP8_NAMES = {torch.float8_e4m3fn: "fp8_e4m3fn", torch.float8_e5m2: "fp8_e5m2"}


def diffusers_from_comfy(comfy):
    """The inverse of comfy_names: fused qkv split, original names back to diffusers'."""
    out = {}
    for key, tensor in comfy.items():
        if m := re.fullmatch(r"(.+\.attention)\.qkv\.weight", key):
            for part, chunk in zip("qkv", tensor.chunk(3)):
                out[f"{m[1]}.to_{part}.weight"] = chunk
            continue
        name = re.sub(r"^x_embedder\.", "all_x_embedder.2-1.", key)
        name = re.sub(r"^final_layer\.", "all_final_layer.2-1.", name)
        name = name.replace(".attention.out.", ".attention.to_out.0.")
        name = name.replace(".attention.q_norm.", ".attention.norm_q.")
        name = name.replace(".attention.k_norm.", ".attention.norm_k.")
        out[name] = tensor
    return out


def is_matrix_weight(name, tensor):
    return name.endswith(".weight") and tensor.ndim == 2


def comfy_quantized(comfy, dtype, scaled):
    """(stored tensors, the weights they stand for): matrix weights as `dtype`, with ComfyUI's
    per-tensor scale max|w| / finfo.max when `scaled`."""
    stored, real = {}, {}
    for name, tensor in comfy.items():
        if not is_matrix_weight(name, tensor):
            stored[name] = real[name] = tensor
            continue
        scale = tensor.abs().max() / torch.finfo(dtype).max if scaled else torch.tensor(1.0)
        quantized = (tensor / scale).to(dtype)
        stored[name] = quantized
        real[name] = quantized.float() * scale
        if scaled:
            stored[name.removesuffix("weight") + "scale_weight"] = scale.float().reshape(())
            stored[name.removesuffix("weight") + "scale_input"] = torch.ones((), dtype=torch.float32)
    if scaled:
        stored["scaled_fp8"] = torch.empty(0, dtype=dtype)
    return stored, real


def model_with(state):
    model = ZImageTransformer2DModel(**TINY).eval()
    model.load_state_dict(diffusers_from_comfy(state))
    return model


@pytest.fixture(scope="module")
def model():
    return random_transformer(seed=11)


@pytest.fixture(scope="module")
def comfy(model):
    return {k: v.contiguous() for k, v in comfy_names(model.state_dict()).items()}


@pytest.fixture(scope="module")
def inputs():
    x = torch.randn(2, 16, 8, 6, generator=torch.Generator().manual_seed(12))
    sigma = torch.tensor([0.7, 0.3])
    context, mask = captions([9, 20], seed=13)
    return x, sigma, context, mask


def engine_velocity(probe, path, inputs, weight_dtype="default"):
    x, sigma, context, mask = inputs
    out, _ = probe("dit_forward", {"weights": str(path), "weight_dtype": weight_dtype},
                   {"x": x, "timestep": sigma, "context": context, "context_mask": mask})
    return out["out"]


def relative_error(ours, reference):
    assert ours.shape == reference.shape
    return ((ours.double() - reference.double()).abs().max() / reference.abs().max()).item()


def relative_rms_error(ours, reference):
    assert ours.shape == reference.shape
    return ((ours.double() - reference.double()).norm() / reference.double().norm()).item()


def test_round_trip_of_the_helpers(model, comfy):
    assert diffusers_from_comfy(comfy).keys() == model.state_dict().keys()


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
@pytest.mark.parametrize("scaled", [False, True], ids=["plain", "scaled"])
def test_fp8_file_matches_its_dequantized_weights(probe, model, comfy, inputs, tmp_path, dtype,
                                                  scaled):
    stored, real = comfy_quantized(comfy, dtype, scaled)
    path = tmp_path / "z_image_fp8.safetensors"
    save_file(stored, str(path))
    ours = engine_velocity(probe, path, inputs)
    assert relative_error(ours, diffusers_velocity(model_with(real), *inputs)) <= TOLERANCE
    if scaled:  # a plain cast leaves small weights in fp8's subnormals: no bound to promise
        error = relative_rms_error(ours, diffusers_velocity(model, *inputs))
        assert error <= FP8_VS_FP32[dtype]


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_fp8_weight_storage_quantizes_each_matrix_with_its_scale(probe, model, comfy, inputs,
                                                                 tmp_path, dtype):
    path = tmp_path / "z_image_fp32.safetensors"
    save_file(comfy, str(path))
    ours = engine_velocity(probe, path, inputs, FP8_NAMES[dtype])
    _, real = comfy_quantized(comfy, dtype, scaled=True)
    assert relative_error(ours, diffusers_velocity(model_with(real), *inputs)) <= TOLERANCE
    error = relative_rms_error(ours, diffusers_velocity(model, *inputs))
    assert 0 < error <= FP8_VS_FP32[dtype]
    # "_fast" has no fp8 matrix multiplication here: it computes as fp8_e4m3fn.
    if dtype == torch.float8_e4m3fn:
        fast = engine_velocity(probe, path, inputs, "fp8_e4m3fn_fast")
        assert torch.equal(fast, ours)


def test_fp8_storage_halves_the_resident_weights(probe, tmp_path):
    """A mid-sized random Z-Image (dim 1024, 4 layers, ~100M parameters) in bfloat16: the memory
    the loaded model keeps (RssAnon growth over the load), default against fp8_e4m3fn."""
    torch.manual_seed(0)
    config = dict(TINY, dim=1024, n_layers=4, n_refiner_layers=1, n_heads=8, n_kv_heads=8,
                  cap_feat_dim=1024, axes_dims=[32, 48, 48])
    with torch.no_grad():
        state = {k: v.contiguous() for k, v in
                 comfy_names(ZImageTransformer2DModel(**config).state_dict()).items()}
    path = tmp_path / "z_image_mid.safetensors"
    save_file(state, str(path))  # float32: both loads convert, so both hold their own copy
    params = sum(t.numel() for t in state.values())
    matrix = sum(t.numel() for k, t in state.items() if is_matrix_weight(k, t))
    grown = {}
    for weight_dtype in ("default", "fp8_e4m3fn"):
        out, _ = probe("dit_load_memory", {"weights": str(path), "dtype": "bfloat16",
                                           "weight_dtype": weight_dtype})
        before, after = out["rss_anon_kib"].tolist()
        grown[weight_dtype] = (after - before) * 1024
    print(f"\n{params / 1e6:.1f}M parameters ({matrix / params:.1%} in matrices): "
          f"bf16 {grown['default'] / 2**20:.0f} MiB, fp8 {grown['fp8_e4m3fn'] / 2**20:.0f} MiB")
    assert grown["default"] >= 0.9 * 2 * params
    # fp8 matrices (1 byte) plus the other tensors in bfloat16 and allocator slack.
    assert grown["fp8_e4m3fn"] <= 0.6 * grown["default"]
