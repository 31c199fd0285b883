"""T2I adapters against diffusers' T2IAdapter on tiny random weights: the adapter's features, the
UNet's output with them (ComfyUI's placement on the input blocks and, for SDXL, the mid block),
strength and step window, chaining after a ControlNet, and the original .pth layout (fp32 CPU)."""
import re

import pytest
import torch
from diffusers import T2IAdapter
from safetensors.torch import save_file

import tiny_models
from parity_support import max_abs_diff
from test_controlnet_parity import added_kwargs, call_inputs, random_controlnet

TOLERANCE = 1e-4
# The full adapter on a UNet whose first level has attention (diffusers adds an adapter feature
# after a plain DownBlock2D's downsampler, ComfyUI before it), and SDXL's variant.
ADAPTER_FAMILIES = {"sd2": ("full_adapter", 8), "sdxl": ("full_adapter_xl", 16)}


def random_adapter(adapter_type, downscale, seed):
    torch.manual_seed(seed)
    adapter = T2IAdapter(in_channels=3, channels=[32, 64], num_res_blocks=2,
                         downscale_factor=downscale, adapter_type=adapter_type)
    with torch.no_grad():
        for parameter in adapter.parameters():
            parameter.normal_(0, 0.1)
    return adapter.eval()


def original_layout(adapter):
    """The adapter's weights under TencentARC's names ("conv_in", "body.N.*" with N = stage * 2 +
    block), written independently of the engine's mapping."""
    out = {}
    for key, tensor in adapter.state_dict().items():
        name = key.removeprefix("adapter.")
        if m := re.fullmatch(r"body\.(\d+)\.resnets\.(\d+)\.(.+)", name):
            name = f"body.{int(m[1]) * 2 + int(m[2])}.{m[3]}"
        elif m := re.fullmatch(r"body\.(\d+)\.in_conv\.(.+)", name):
            name = f"body.{int(m[1]) * 2}.in_conv.{m[2]}"
        out[name] = tensor.contiguous()
    return out


@pytest.fixture(scope="module", params=list(ADAPTER_FAMILIES))
def adapted(request, tmp_path_factory):
    """(family, pipeline, pipeline folder, adapter, its diffusers-named file, work folder)."""
    family = request.param
    work = tmp_path_factory.mktemp(f"t2i_{family}")
    pipe, path = tiny_models.build(family, work)
    adapter = random_adapter(*ADAPTER_FAMILIES[family], seed=7)
    file = work / "adapter.safetensors"
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, str(file))
    return family, pipe, path, adapter, file, work


def intrablock_residuals(family, features, scale):
    """diffusers' down_intrablock_additional_residuals that put the features where ComfyUI does:
    SDXL's last stage goes to the mid block, so the level before it takes a zero."""
    scaled = [f * scale for f in features]
    if family == "sdxl":
        return scaled[:-1] + [torch.zeros_like(scaled[-1]), scaled[-1]]
    return scaled


def reference(family, pipe, adapter, inputs, scale=1.0, controlnet=None):
    features = adapter(inputs["hint"])
    kwargs = dict(added_kwargs(inputs),
                  down_intrablock_additional_residuals=intrablock_residuals(family, features, scale))
    if controlnet is not None:
        down, mid = controlnet(inputs["sample"], inputs["timesteps"],
                               encoder_hidden_states=inputs["context"],
                               controlnet_cond=inputs["hint"], return_dict=False,
                               **added_kwargs(inputs))
        kwargs.update(down_block_additional_residuals=down, mid_block_additional_residual=mid)
    return pipe.unet(inputs["sample"], inputs["timesteps"], encoder_hidden_states=inputs["context"],
                     **kwargs).sample


def plain_unet(pipe, inputs):
    return pipe.unet(inputs["sample"], inputs["timesteps"], encoder_hidden_states=inputs["context"],
                     **added_kwargs(inputs)).sample


@torch.no_grad()
def test_features_match_diffusers(adapted, probe):
    family, _, _, adapter, file, _ = adapted
    hint = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(1))
    out, _ = probe("t2i_adapter_features", {"adapter": str(file)}, {"hint": hint})
    expected = adapter(hint)
    assert len(out) == len(expected)
    for i, feature in enumerate(expected):
        assert max_abs_diff(out[f"feature_{i}"], feature) < TOLERANCE, f"{family} stage {i}"


@torch.no_grad()
@pytest.mark.parametrize("strength", [1.0, 0.7])
def test_unet_with_adapter_matches_diffusers(adapted, probe, strength):
    family, pipe, path, adapter, file, _ = adapted
    inputs = call_inputs(pipe.unet)
    out, _ = probe("t2i_adapter_unet", {"pipeline": str(path), "adapter": str(file),
                                        "strength": strength}, inputs)
    expected = reference(family, pipe, adapter, inputs, scale=strength)
    assert max_abs_diff(out["out"], expected) < TOLERANCE
    assert max_abs_diff(plain_unet(pipe, inputs), expected) > 100 * TOLERANCE


@torch.no_grad()
@pytest.mark.parametrize("window", [{"strength": 0.0}, {"start_percent": 0.5, "sigma": 1000.0}])
def test_no_strength_or_outside_its_window_adds_nothing(adapted, probe, window):
    _, pipe, path, _, file, _ = adapted
    inputs = call_inputs(pipe.unet, seed=8)
    out, _ = probe("t2i_adapter_unet", {"pipeline": str(path), "adapter": str(file), **window},
                   inputs)
    assert max_abs_diff(out["out"], plain_unet(pipe, inputs)) < TOLERANCE


@torch.no_grad()
def test_chained_after_a_controlnet_both_apply(adapted, probe):
    family, pipe, path, adapter, file, work = adapted
    net = random_controlnet(pipe.unet, seed=9)
    net.save_pretrained(str(work / "controlnet"), safe_serialization=True)
    inputs = call_inputs(pipe.unet, seed=10)
    out, _ = probe("t2i_adapter_unet", {"pipeline": str(path), "adapter": str(file),
                                        "controlnet": str(work / "controlnet")}, inputs)
    expected = reference(family, pipe, adapter, inputs, controlnet=net)
    assert max_abs_diff(out["out"], expected) < TOLERANCE
    adapter_only = reference(family, pipe, adapter, inputs)
    assert max_abs_diff(adapter_only, expected) > 100 * TOLERANCE


@torch.no_grad()
@pytest.mark.parametrize("wrapped", [False, True])
def test_original_layout_pth_loads_to_the_same_features(adapted, probe, wrapped):
    family, _, _, adapter, file, work = adapted
    state = original_layout(adapter)
    pth = work / f"original_{wrapped}.pth"
    torch.save({"adapter": state} if wrapped else state, str(pth))
    hint = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    from_pth, _ = probe("t2i_adapter_features", {"adapter": str(pth)}, {"hint": hint})
    from_diffusers, _ = probe("t2i_adapter_features", {"adapter": str(file)}, {"hint": hint})
    for name, value in from_diffusers.items():
        assert max_abs_diff(from_pth[name], value) < 1e-6, f"{family} {name}"


def light_original_layout(adapter):
    """A light adapter's weights under TencentARC's names ("body.S.in_conv", "body.S.body.J.*",
    "body.S.out_conv")."""
    return {re.sub(r"^body\.(\d+)\.resnets\.", r"body.\1.body.", key.removeprefix("adapter.")):
            tensor.contiguous() for key, tensor in adapter.state_dict().items()}


@torch.no_grad()
def test_light_adapter_features_match_diffusers(probe, tmp_path):
    adapter = random_adapter("light_adapter", 8, seed=11)
    diffusers_file = tmp_path / "light.safetensors"
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, str(diffusers_file))
    original_file = tmp_path / "light.pth"
    torch.save(light_original_layout(adapter), str(original_file))
    # Even sizes at every stage: for odd ones ComfyUI pads its average pools where diffusers rounds
    # up, and the engine follows ComfyUI.
    hint = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    expected = adapter(hint)
    for file in (diffusers_file, original_file):
        out, _ = probe("t2i_adapter_features", {"adapter": str(file)}, {"hint": hint})
        assert len(out) == len(expected)
        for i, feature in enumerate(expected):
            assert max_abs_diff(out[f"feature_{i}"], feature) < TOLERANCE, f"{file.name} stage {i}"
