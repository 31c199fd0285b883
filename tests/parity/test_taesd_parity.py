"""VAELoader's Tiny AutoEncoders (taesd, taesdxl) against diffusers' AutoencoderTiny: random weights
in TAESD's own file layout, decoding latents and encoding images in float32."""
import pytest
import torch

import tiny_taesd
from parity_support import max_abs_diff

LATENT_SCALES = {"taesd": 0.18215, "taesdxl": 0.13025}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def taesd_files(tmp_path_factory):
    model = tiny_taesd.build(seed=0)
    encoder, decoder = tiny_taesd.save_taesd(model, tmp_path_factory.mktemp("vae_approx"))
    return model, {"encoder": str(encoder), "decoder": str(decoder)}


@pytest.mark.parametrize("name", sorted(LATENT_SCALES))
def test_decode_matches_diffusers(taesd_files, probe, name):
    model, files = taesd_files
    scale = LATENT_SCALES[name]
    latents = torch.randn(2, 4, 8, 12, generator=torch.Generator().manual_seed(1)) * 4
    out, _ = probe("taesd_decode", {**files, "latent_scale": scale}, {"latents": latents})
    raw = model.decode(latents * scale).sample
    assert out["raw"].shape == (2, 3, 64, 96)
    assert max_abs_diff(out["raw"], raw) < TOLERANCE
    image = ((raw + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
    assert max_abs_diff(out["image"], image) < TOLERANCE
    # The comparison means something: the random decoder's pixels are not all clipped.
    assert ((image > 0) & (image < 1)).float().mean() > 0.05


@pytest.mark.parametrize("name", sorted(LATENT_SCALES))
def test_encode_matches_diffusers(taesd_files, probe, name):
    model, files = taesd_files
    scale = LATENT_SCALES[name]
    image = torch.rand(2, 64, 48, 3, generator=torch.Generator().manual_seed(2))
    out, _ = probe("taesd_encode", {**files, "latent_scale": scale}, {"image": image})
    expected = model.encode(image.permute(0, 3, 1, 2) * 2 - 1).latents / scale
    assert out["latents"].shape == (2, 4, 8, 6)
    assert max_abs_diff(out["latents"], expected) < TOLERANCE * max(1.0, expected.abs().max().item())


def test_encode_crops_to_whole_latent_cells(taesd_files, probe):
    model, files = taesd_files
    image = torch.rand(1, 70, 45, 3, generator=torch.Generator().manual_seed(3))
    out, _ = probe("taesd_encode", {**files, "latent_scale": 1.0}, {"image": image})
    cropped = image[:, 3:67, 2:42].permute(0, 3, 1, 2)
    assert max_abs_diff(out["latents"], model.encode(cropped * 2 - 1).latents) < TOLERANCE


def test_wrong_shaped_file_is_refused(tmp_path, taesd_files, probe):
    _, files = taesd_files
    out, proc = probe("taesd_decode", {"encoder": files["decoder"], "decoder": files["decoder"],
                                       "latent_scale": 1.0},
                      {"latents": torch.zeros(1, 4, 2, 2)}, expect_ok=False)
    assert proc.returncode != 0
    assert "0.weight" in proc.stderr
