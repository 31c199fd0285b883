"""UpscaleModelLoader's networks against spandrel (the library ComfyUI loads them with): random
weights in each key layout, the forward pass in float32 within 1e-4, the scale and channels
spandrel reads from the file, and ImageUpscaleWithModel's clamped output."""
import pytest
import torch
from spandrel import ModelLoader

import tiny_upscalers
from parity_support import max_abs_diff

TOLERANCE = 1e-4


def _old_esrgan(**kw):
    net = tiny_upscalers.esrgan(**kw)
    return net.state_dict()


def _new_esrgan(**kw):
    return tiny_upscalers.new_layout(tiny_upscalers.esrgan(**kw).state_dict())


CASES = {
    # name: (state dict, prefix stored in the file, expected scale, input size H x W)
    "old_rrdb_x4": (lambda: _old_esrgan(seed=1, scale=4), "", 4, (12, 10)),
    "old_rrdb_x1": (lambda: _old_esrgan(seed=2, scale=1), "", 1, (9, 11)),
    "old_rrdb_x2": (lambda: _old_esrgan(seed=3, scale=2), "", 2, (10, 7)),
    "old_rrdb_x8": (lambda: _old_esrgan(seed=4, scale=8, blocks=1), "", 8, (6, 5)),
    "esrgan_plus_x4": (lambda: _old_esrgan(seed=5, plus=True), "", 4, (8, 9)),
    "new_rrdb_x4": (lambda: _new_esrgan(seed=6, scale=4), "params_ema.", 4, (11, 12)),
    # Real-ESRGAN x2plus: a x4 network behind a pixel unshuffle by 2 (12 input channels); odd
    # sizes are padded by reflection and the output cropped.
    "realesrgan_x2plus": (lambda: _new_esrgan(seed=7, scale=4, in_nc=12, shuffle=2), "params.", 2, (13, 9)),
    "compact_x4": (lambda: tiny_upscalers.compact(seed=8, scale=4).state_dict(), "", 4, (10, 13)),
    "compact_x2": (lambda: tiny_upscalers.compact(seed=9, scale=2, convs=2).state_dict(), "params.", 2, (7, 8)),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def upscaler(request, tmp_path_factory):
    build, prefix, scale, size = CASES[request.param]
    state = build()
    path = tiny_upscalers.save(state, tmp_path_factory.mktemp("upscale_models") / "model.safetensors", prefix)
    reference = ModelLoader().load_from_state_dict(state).eval()
    return {"name": request.param, "path": str(path), "reference": reference, "scale": scale, "size": size}


def test_forward_matches_spandrel(upscaler, probe):
    height, width = upscaler["size"]
    images = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(10))
    out, _ = probe("upscale_forward", {"model": upscaler["path"]}, {"images": images})
    expected = upscaler["reference"].model(images)
    scale = upscaler["scale"]
    assert out["output"].shape == (2, 3, height * scale, width * scale)
    assert max_abs_diff(out["output"], expected) < TOLERANCE * max(1.0, expected.abs().max().item())
    # The comparison means something: the random network's output varies.
    assert expected.std().item() > 0.01


def test_scale_and_channels_match_spandrel(upscaler, probe):
    images = torch.rand(1, 3, 4, 4)
    out, _ = probe("upscale_forward", {"model": upscaler["path"]}, {"images": images})
    reference = upscaler["reference"]
    assert int(out["scale"]) == reference.scale == upscaler["scale"]
    assert int(out["input_channels"]) == reference.input_channels
    assert int(out["output_channels"]) == reference.output_channels


def test_image_upscale_node_output(upscaler, probe):
    """ImageUpscaleWithModel on an image within one tile is spandrel's descriptor call, which
    pads to the model's size requirements (ESRGAN with unshuffle: multiples of 4), clamps and
    crops."""
    height, width = upscaler["size"]
    image = torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(11))
    out, _ = probe("upscale_image", {"model": upscaler["path"]}, {"image": image})
    expected = upscaler["reference"](image.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert out["image"].shape == expected.shape
    assert max_abs_diff(out["image"], expected) < TOLERANCE


def test_one_pixel_image_is_padded_as_spandrel_pads_it(tmp_path, probe):
    state = _new_esrgan(seed=14, scale=4, in_nc=12, shuffle=2)
    path = tiny_upscalers.save(state, tmp_path / "x2plus.safetensors")
    image = torch.rand(1, 1, 3, 3, generator=torch.Generator().manual_seed(15))
    out, _ = probe("upscale_image", {"model": str(path)}, {"image": image})
    expected = ModelLoader().load_from_state_dict(state)(image.permute(0, 3, 1, 2))
    assert out["image"].shape == (1, 2, 6, 3)
    assert max_abs_diff(out["image"], expected.permute(0, 2, 3, 1)) < TOLERANCE


def test_unknown_architecture_is_unsupported(tmp_path, probe):
    path = tiny_upscalers.save({"layers.0.residual_group.blocks.0.norm1.weight": torch.ones(4)},
                               tmp_path / "swinir.safetensors")
    _, proc = probe("upscale_forward", {"model": str(path)}, {"images": torch.zeros(1, 3, 4, 4)},
                    expect_ok=False)
    assert proc.returncode != 0
    assert "error[unsupported]" in proc.stderr and "layers.0.residual_group" in proc.stderr


def test_missing_tensor_is_a_corrupt_file(tmp_path, probe):
    state = _old_esrgan(seed=12)
    del state["model.1.sub.1.RDB2.conv3.0.weight"]
    path = tiny_upscalers.save(state, tmp_path / "broken.safetensors")
    _, proc = probe("upscale_forward", {"model": str(path)}, {"images": torch.zeros(1, 3, 4, 4)},
                    expect_ok=False)
    assert "error[corrupt_file]" in proc.stderr and "model.1.sub.1.RDB2.conv3.0.weight" in proc.stderr


def test_mis_shaped_tensor_is_a_corrupt_file(tmp_path, probe):
    state = tiny_upscalers.compact(seed=13).state_dict()
    state["body.3.weight"] = torch.ones(5)
    path = tiny_upscalers.save(state, tmp_path / "broken.safetensors")
    _, proc = probe("upscale_forward", {"model": str(path)}, {"images": torch.zeros(1, 3, 4, 4)},
                    expect_ok=False)
    assert "error[corrupt_file]" in proc.stderr and "body.3.weight" in proc.stderr


@pytest.mark.parametrize("wrapper", ["params_ema", "params", None])
def test_pth_upscalers_load_like_spandrel(tmp_path, probe, wrapper):
    """Most upscalers people have are torch.save'd .pth files (Real-ESRGAN's keep the weights
    under "params_ema" or "params"): read through the weights-only reader, they run as spandrel
    runs the same state dict."""
    state = _new_esrgan(seed=16, scale=4)
    path = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({wrapper: state} if wrapper else state, path)
    image = torch.rand(1, 9, 10, 3, generator=torch.Generator().manual_seed(17))
    out, _ = probe("upscale_image", {"model": str(path)}, {"image": image})
    expected = ModelLoader().load_from_state_dict(state)(image.permute(0, 3, 1, 2))
    assert max_abs_diff(out["image"], expected.permute(0, 2, 3, 1)) < TOLERANCE
