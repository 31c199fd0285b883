"""The FLUX.1 transformer (dev and schnell) against diffusers' FluxTransformer2DModel: tiny random
weights saved as a diffusers folder, run by the engine through its diffusers -> BFL key map and
again from the converted BFL-named file, on inputs built the way FluxPipeline builds them; and the
engine's tensor layouts against diffusers' state dicts (tiny and real-shaped, the latter on the
meta device)."""
import pytest
import torch
from diffusers import FluxPipeline, FluxTransformer2DModel

from parity_support import max_abs_diff

TOLERANCE = 1e-4  # relative to the output's scale
TEXT_TOKENS = 7
GUIDANCE = 3.5


def tiny_config(guidance_embeds):
    return dict(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
                attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                pooled_projection_dim=32, guidance_embeds=guidance_embeds,
                axes_dims_rope=[4, 6, 6])


@pytest.fixture(scope="module", params=[True, False], ids=["dev", "schnell"])
def tiny_flux(request, tmp_path_factory):
    """(model, saved transformer folder) with random weights (norm scales around 1)."""
    torch.manual_seed(0)
    model = FluxTransformer2DModel(**tiny_config(request.param)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn_like(param) * 0.2
            param.copy_(1 + noise if ".norm_" in name else noise)
    folder = tmp_path_factory.mktemp("flux") / "transformer"
    model.save_pretrained(folder)
    return model, folder


def pipeline_inputs(batch, height, width, guidance_embeds, seed):
    gen = torch.Generator().manual_seed(seed)
    inputs = {
        "x": torch.randn(batch, 16, height, width, generator=gen),
        "timestep": torch.rand(batch, generator=gen),
        "context": torch.randn(batch, TEXT_TOKENS, 32, generator=gen),
        "pooled": torch.randn(batch, 32, generator=gen),
    }
    if guidance_embeds:
        inputs["guidance"] = torch.full([batch], GUIDANCE)
    return inputs


def diffusers_velocity(model, inputs):
    """FluxPipeline's transformer call: packed latents, ids, timestep in [0, 1]; unpacked after."""
    x = inputs["x"]
    batch, channels, height, width = x.shape
    packed = FluxPipeline._pack_latents(x, batch, channels, height, width)
    img_ids = FluxPipeline._prepare_latent_image_ids(batch, height // 2, width // 2, x.device,
                                                     x.dtype)
    txt_ids = torch.zeros(TEXT_TOKENS, 3)
    out = model(hidden_states=packed, timestep=inputs["timestep"], guidance=inputs.get("guidance"),
                pooled_projections=inputs["pooled"], encoder_hidden_states=inputs["context"],
                txt_ids=txt_ids, img_ids=img_ids, return_dict=False)[0]
    return FluxPipeline._unpack_latents(out, height * 8, width * 8, 8)


def assert_close(actual, expected):
    scale = max(1.0, expected.abs().max().item())
    assert actual.shape == expected.shape
    assert max_abs_diff(actual, expected) <= TOLERANCE * scale


@pytest.mark.parametrize("shape", [(1, 8, 8), (2, 6, 10)])
def test_forward_matches_diffusers(tiny_flux, probe, shape):
    model, folder = tiny_flux
    guidance_embeds = model.config.guidance_embeds
    inputs = pipeline_inputs(*shape, guidance_embeds, seed=sum(shape))
    with torch.no_grad():
        expected = diffusers_velocity(model, inputs)
    out, _ = probe("flux_forward", {"weights": str(folder)}, inputs)
    assert_close(out["out"], expected)


def test_converted_bfl_file_gives_the_same_output(tiny_flux, probe, tmp_path):
    model, folder = tiny_flux
    bfl = tmp_path / "flux_bfl.safetensors"
    probe("flux_to_bfl", {"weights": str(folder), "out": str(bfl)})
    inputs = pipeline_inputs(2, 6, 10, model.config.guidance_embeds, seed=5)
    from_folder, _ = probe("flux_forward", {"weights": str(folder)}, inputs)
    from_bfl, _ = probe("flux_forward", {"weights": str(bfl)}, inputs)
    # The same weights by two load paths: equal within the tolerance (the paths may lay tensors out
    # differently, and other CPUs' kernels then round differently), not bit for bit.
    assert_close(from_bfl["out"], from_folder["out"])


def test_schnell_ignores_guidance_and_dev_uses_it(tiny_flux, probe):
    model, folder = tiny_flux
    inputs = pipeline_inputs(1, 8, 8, True, seed=9)
    without = {k: v for k, v in inputs.items() if k != "guidance"}
    with_out, _ = probe("flux_forward", {"weights": str(folder)}, inputs)
    without_out, _ = probe("flux_forward", {"weights": str(folder)}, without)
    same = max_abs_diff(with_out["out"], without_out["out"]) == 0.0
    assert same != model.config.guidance_embeds


@pytest.mark.parametrize("guidance_embeds", [True, False], ids=["dev", "schnell"])
def test_written_diffusers_folder_loads_in_diffusers(probe, tmp_path, guidance_embeds):
    folder, bfl = tmp_path / "transformer", tmp_path / "flux_tiny.safetensors"
    probe("flux_write_tiny", {"guidance": guidance_embeds, "seed": 3, "bfl": str(bfl),
                              "diffusers": str(folder)})
    model, info = FluxTransformer2DModel.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values()), info
    assert model.config.guidance_embeds == guidance_embeds
    inputs = pipeline_inputs(1, 8, 8, guidance_embeds, seed=4)
    with torch.no_grad():
        expected = diffusers_velocity(model.eval(), inputs)
    out, _ = probe("flux_forward", {"weights": str(bfl)}, inputs)
    assert_close(out["out"], expected)


def layout_shapes(probe, config, naming):
    out, _ = probe("flux_layout", {"config": config, "naming": naming})
    return {name: list(shape.tolist()) for name, shape in out.items()}


def state_dict_shapes(model):
    return {name: list(t.shape) for name, t in model.state_dict().items()}


def test_tiny_layout_matches_diffusers(tiny_flux, probe):
    model, _ = tiny_flux
    config = dict(model.config)
    assert layout_shapes(probe, config, "diffusers") == state_dict_shapes(model)
    # Top-level layers (16 with guidance_in, 12 without), 24 per double block, 8 per single
    # block, 4 in the final layer.
    assert len(layout_shapes(probe, config, "bfl")) == (52 if config["guidance_embeds"] else 48)


@pytest.mark.parametrize("guidance_embeds,bfl_count", [(True, 780), (False, 776)])
def test_real_shaped_layout_matches_diffusers(probe, guidance_embeds, bfl_count):
    with torch.device("meta"):
        model = FluxTransformer2DModel(guidance_embeds=guidance_embeds)
    config = dict(model.config)
    assert layout_shapes(probe, config, "diffusers") == state_dict_shapes(model)
    bfl = layout_shapes(probe, config, "bfl")
    assert len(bfl) == bfl_count
    assert bfl["double_blocks.0.img_attn.qkv.weight"] == [9216, 3072]
    assert bfl["single_blocks.37.linear1.weight"] == [21504, 3072]
