"""Parity of the network components (CLIP text encoders, UNet, VAE) with diffusers/transformers on
the tiny SD1, SD2 and SDXL pipelines, both running on the parity device in the parity dtype
(DREAMFORGE_PARITY_DEVICE / DREAMFORGE_PARITY_DTYPE; the CPU in float32 by default), within the
tolerance parity_support.PARITY_TOLERANCE states for that pair."""
import copy

import pytest
import torch

from parity_support import max_abs_diff
from test_model_parity import reference_unet, text_encoders, token_rows, unet_inputs


def on_target(model, parity_target):
    """A copy of a diffusers/transformers model on the parity device in the parity dtype (the
    session's tiny pipelines stay on the CPU in float32 for the other tests)."""
    device, dtype, _ = parity_target
    return copy.deepcopy(model).to(device=device, dtype=getattr(torch, dtype))


def cast(inputs, parity_target, keep_float32=()):
    """Floating inputs moved to the parity device and cast to its dtype, except the names in
    keep_float32 (timesteps and size conditioning stay float32 in both engines)."""
    device, dtype, _ = parity_target
    return {name: (t.to(device) if name in keep_float32 or not t.is_floating_point()
                   else t.to(device=device, dtype=getattr(torch, dtype)))
            for name, t in inputs.items()}


def assert_relative(label, actual, expected, tolerance):
    expected = expected.float().cpu()
    assert actual.shape == expected.shape, \
        f"{label}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    relative = max_abs_diff(actual, expected) / max(expected.abs().max().item(), 1e-12)
    print(f"{label}: max abs diff / max abs = {relative:.3g} (tolerance {tolerance:g})")
    assert relative <= tolerance, f"{label}: relative difference {relative:.3g} > {tolerance:g}"


def engine_args(path, parity_target):
    device, dtype, _ = parity_target
    return {"path": str(path), "device": device, "dtype": dtype}


@pytest.mark.parametrize("height,width", [(8, 8), (9, 10)])
def test_unet_on_device(tiny_pipeline, probe, parity_target, height, width):
    family, pipe, path = tiny_pipeline
    inputs = unet_inputs(pipe.unet, height, width, [999.0, 500.5])
    expected = reference_unet(on_target(pipe.unet, parity_target),
                              cast(inputs, parity_target, keep_float32=("timesteps", "time_ids")))
    out, _ = probe("unet", engine_args(path / "unet", parity_target), inputs)
    assert_relative(f"{family} unet {height}x{width} {parity_target[:2]}", out["out"], expected,
                    parity_target[2])


def test_text_encoders_on_device(tiny_pipeline, probe, parity_target):
    family, pipe, path = tiny_pipeline
    ids = token_rows()
    for name, directory, model in text_encoders(pipe, path):
        expected = on_target(model, parity_target)(ids.to(parity_target[0]))
        out, _ = probe("clip_text", engine_args(directory, parity_target), {"ids": ids})
        assert_relative(f"{family} {name} {parity_target[:2]}", out["last_hidden_state"],
                        expected.last_hidden_state, parity_target[2])


def test_vae_on_device(tiny_pipeline, probe, parity_target):
    family, pipe, path = tiny_pipeline
    vae = on_target(pipe.vae, parity_target)
    image = torch.rand(2, 3, 36, 40, generator=torch.Generator().manual_seed(3)) * 2 - 1
    expected = vae.encode(cast({"image": image}, parity_target)["image"]).latent_dist.mean
    out, _ = probe("vae_encode", engine_args(path / "vae", parity_target), {"image": image})
    assert_relative(f"{family} vae encode {parity_target[:2]}", out["mean"], expected,
                    parity_target[2])
    latents = torch.randn(2, 4, 9, 10, generator=torch.Generator().manual_seed(4))
    expected = vae.decode(cast({"latents": latents}, parity_target)["latents"]).sample
    out, _ = probe("vae_decode", engine_args(path / "vae", parity_target), {"latents": latents})
    assert_relative(f"{family} vae decode {parity_target[:2]}", out["image"], expected,
                    parity_target[2])
