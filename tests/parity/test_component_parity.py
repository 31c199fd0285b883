"""Parity of component loading: a VAE file of its own (VAELoader) decodes and encodes like diffusers'
AutoencoderKL with the same weights, stored under LDM or diffusers names (SD's 4-channel VAE with
quant convolutions, and the 16-channel kind without them that FLUX.1, SD3 and Z-Image use); CLIPSetLastLayer gives
the conditioning context ComfyUI defines (transformers' hidden_states[stop_at_clip_layer], through
the final LayerNorm for SD1, without it for SDXL's two encoders, concatenated) for the same ids."""
import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

import single_file
import tiny_models
from parity_support import max_abs_diff

TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=[4, 16], ids=["sd", "flow"])
def random_vae(request):
    """A small AutoencoderKL whose every weight (norms and biases too) is random: 4 latent
    channels with quant convolutions, or 16 without them."""
    torch.manual_seed(0)
    channels = request.param
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=channels,
                        norm_num_groups=32, layers_per_block=1,
                        use_quant_conv=channels == 4, use_post_quant_conv=channels == 4)
    with torch.no_grad():
        for parameter in vae.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return vae.eval()


def write_vae(vae, path, naming):
    state = vae.state_dict()
    if naming == "ldm":
        state = single_file.vae_to_ldm(state, vae.config)
    save_file({key: tensor.contiguous() for key, tensor in state.items()}, str(path))
    return str(path)


@pytest.mark.parametrize("naming", ["ldm", "diffusers"])
def test_a_vae_file_decodes_and_encodes_like_diffusers(random_vae, probe, tmp_path, naming):
    path = write_vae(random_vae, tmp_path / f"vae_{naming}.safetensors", naming)
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(1, random_vae.config.latent_channels, 8, 8, generator=generator)
    decoded, _ = probe("vae_file_decode", {"path": path}, {"latents": latents})
    expected = ((random_vae.decode(latents).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
    assert decoded["image"].shape == expected.shape
    assert max_abs_diff(decoded["image"], expected) < TOLERANCE

    image = torch.rand(1, 16, 16, 3, generator=generator)
    encoded, _ = probe("vae_file_encode", {"path": path}, {"image": image})
    mean = random_vae.encode(image.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mean
    assert encoded["mean"].shape == mean.shape
    assert max_abs_diff(encoded["mean"], mean) < TOLERANCE


@pytest.fixture(scope="module", params=["sd1", "sdxl"])
def tiny(request, tmp_path_factory):
    family = request.param
    pipe, path = tiny_models.build(family, tmp_path_factory.mktemp(f"clip_skip_{family}"))
    return family, pipe, path


def layer_output(model, ids, stop_at_clip_layer):
    return model(input_ids=ids, output_hidden_states=True).hidden_states[stop_at_clip_layer]


def expected_context(family, pipe, outputs, stop_at_clip_layer):
    if family == "sd1":
        hidden = layer_output(pipe.text_encoder, outputs["ids_0"], stop_at_clip_layer)
        # transformers 5 flattens the text model into CLIPTextModel; older versions nest it.
        text_model = getattr(pipe.text_encoder, "text_model", pipe.text_encoder)
        return text_model.final_layer_norm(hidden)
    return torch.cat([layer_output(pipe.text_encoder, outputs["ids_0"], stop_at_clip_layer),
                      layer_output(pipe.text_encoder_2, outputs["ids_1"], stop_at_clip_layer)],
                     dim=-1)


@pytest.mark.parametrize("stop_at_clip_layer", [-1, -2, -3])
def test_clip_set_last_layer_gives_comfyuis_context(tiny, probe, stop_at_clip_layer):
    family, pipe, path = tiny
    outputs, _ = probe("clip_skip_encode", {"model": str(path), "prompt": "a red boat at dusk",
                                            "stop_at_clip_layer": stop_at_clip_layer})
    expected = expected_context(family, pipe, outputs, stop_at_clip_layer)
    assert outputs["context"].shape == expected.shape
    assert max_abs_diff(outputs["context"], expected) < TOLERANCE
