"""Parity of inpainting (9-channel UNet) and InstructPix2Pix (8-channel UNet) SD 1.x models with
diffusers on tiny random models, from a diffusers folder and from a single file detected by its
conv_in shape: one model call with the extra inputs (mask + masked-image latent, or image latent)
against UNet2DConditionModel as StableDiffusionInpaintPipeline / StableDiffusionInstructPix2Pix
Pipeline call it, and the extra inputs InpaintModelConditioning / InstructPixToPixConditioning
build against the pipelines' prepare_mask_latents / prepare_image_latents.

Masked pixels: ComfyUI sets them to grey 0.5 in [0, 1] pixels; diffusers multiplies the [-1, 1]
image by the inverted mask, i.e. sets them to 0 in [-1, 1] -- the same colour, so the masked-image
latents agree. Both encode with the VAE's mean (diffusers' inpaint pipeline samples by default;
the test makes it take the mean, as ComfyUI does)."""
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from diffusers import (StableDiffusionInpaintPipeline, StableDiffusionInstructPix2PixPipeline,
                       UNet2DConditionModel)
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_inpaint

import single_file
import tiny_models
from parity_support import max_abs_diff, write_clip_tokenizer

TOLERANCE = 1e-4
PIPELINES = {9: StableDiffusionInpaintPipeline, 8: StableDiffusionInstructPix2PixPipeline}


def _unet(in_channels):
    torch.manual_seed(1)
    return UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                in_channels=in_channels, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)


def _single_file_without_unet_config(pipe, path):
    """A single-file checkpoint whose UNet config the loader must infer from the tensors (the
    tiny CLIP's and VAE's configs stay in the metadata: their widths are not inferable)."""
    tensors = single_file.pipeline_to_single_file(pipe, "sd1", path)
    with safe_open(str(path), "pt") as stored:
        metadata = dict(stored.metadata())
    del metadata["dreamforge.unet_config"]
    save_file(tensors, str(path), metadata=metadata)


@pytest.fixture(scope="module", params=[(9, "folder"), (9, "single_file"), (8, "folder"),
                                        (8, "single_file")],
                ids=["inpaint-folder", "inpaint-single-file", "ip2p-folder", "ip2p-single-file"])
def model(request, tmp_path_factory):
    """(in_channels, diffusers pipeline, probe args) for a tiny SD 1.x model of that kind."""
    in_channels, layout = request.param
    directory = tmp_path_factory.mktemp(f"model_{in_channels}_{layout}")
    tokenizer = write_clip_tokenizer(directory / "_tok")
    base = tiny_models.build_sd1(tokenizer)
    components = {name: getattr(base, name) for name in
                  ("vae", "text_encoder", "tokenizer", "scheduler", "safety_checker",
                   "feature_extractor")}
    pipe = PIPELINES[in_channels](unet=_unet(in_channels), requires_safety_checker=False,
                                  **components)
    if layout == "folder":
        pipe.save_pretrained(str(directory / "model"), safe_serialization=True)
        args = {"path": str(directory / "model")}
    else:
        path = directory / "model.safetensors"
        _single_file_without_unet_config(pipe, path)
        args = {"path": str(path), "clip_vocab_dir": str(tokenizer)}
    return in_channels, pipe, args


def _sigma_at(pipe, timestep):
    alphas = pipe.scheduler.alphas_cumprod[timestep].double()
    return float(((1 - alphas) / alphas) ** 0.5)


def _image_and_mask():
    generator = torch.Generator().manual_seed(3)
    pixels = torch.rand(1, 32, 48, 3, generator=generator)
    mask = torch.zeros(1, 32, 48)
    mask[:, 8:24, 16:40] = 1.0  # whole 8-pixel cells, so diffusers' nearest resize agrees
    return pixels, mask


def _diffusers_denoised(pipe, x, sigma, timestep, context, extra):
    c_in = 1.0 / (sigma ** 2 + 1.0) ** 0.5
    sample = torch.cat([x * c_in, extra], dim=1)
    eps = pipe.unet(sample, timestep, encoder_hidden_states=context).sample
    return x - eps * sigma


def test_one_model_call_reads_the_extra_inputs_as_diffusers_does(model, probe):
    in_channels, pipe, args = model
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 4, 6, generator=generator)
    context = torch.randn(1, 77, 32, generator=generator)
    image_latent = torch.randn(1, 4, 4, 6, generator=generator)
    timestep = 500
    sigma = _sigma_at(pipe, timestep)
    inputs = {"x": x, "context": context, "concat_latent_image": image_latent}
    scale = pipe.vae.config.scaling_factor
    if in_channels == 9:
        mask = torch.zeros(1, 32, 48)
        mask[:, :, :24] = 1.0
        inputs["concat_mask"] = mask
        mask_latent = torch.zeros(1, 1, 4, 6)
        mask_latent[..., :3] = 1.0
        extra = torch.cat([mask_latent, image_latent * scale], dim=1)
    else:
        extra = image_latent  # InstructPix2Pix reads the VAE's latent unscaled
    out, _ = probe("concat_denoise", {**args, "sigma": sigma}, inputs)
    expected = _diffusers_denoised(pipe, x, sigma, timestep, context.repeat(2, 1, 1),
                                   extra.repeat(2, 1, 1, 1))
    assert max_abs_diff(out["denoised"], expected) < TOLERANCE


def test_the_inpainting_fallback_reads_the_latent_and_its_noise_mask(model, probe):
    """VAEEncodeForInpaint's way: no concat inputs, so the model reads the rounded noise mask and
    the sampled latent (in the sampler's space)."""
    in_channels, pipe, args = model
    if in_channels != 9:
        pytest.skip("only inpainting models fall back to the latent")
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(1, 4, 4, 6, generator=generator)
    context = torch.randn(1, 77, 32, generator=generator)
    latent = torch.randn(1, 4, 4, 6, generator=generator)
    noise_mask = torch.zeros(1, 1, 4, 6)
    noise_mask[..., 2:, :] = 0.8  # rounds to 1
    timestep = 700
    sigma = _sigma_at(pipe, timestep)
    out, _ = probe("concat_denoise", {**args, "sigma": sigma},
                   {"x": x, "context": context, "latent": latent, "noise_mask": noise_mask})
    extra = torch.cat([noise_mask.round(), latent * pipe.vae.config.scaling_factor], dim=1)
    expected = _diffusers_denoised(pipe, x, sigma, timestep, context, extra)
    assert max_abs_diff(out["denoised"], expected) < TOLERANCE


def _vae_mean(encoded, generator=None, sample_mode="sample"):
    return encoded.latent_dist.mode()


def test_inpaint_model_conditioning_builds_what_the_inpaint_pipeline_prepares(model, probe,
                                                                             monkeypatch):
    in_channels, pipe, args = model
    if in_channels != 9:
        pytest.skip("InpaintModelConditioning is for inpainting models")
    pixels, mask = _image_and_mask()
    out, _ = probe("inpaint_conditioning", args, {"pixels": pixels, "mask": mask})
    monkeypatch.setattr(pipeline_stable_diffusion_inpaint, "retrieve_latents", _vae_mean)
    image = pipe.image_processor.preprocess(pixels.permute(0, 3, 1, 2), height=32, width=48)
    mask_image = pipe.mask_processor.preprocess(mask.unsqueeze(1), height=32, width=48)
    masked_image = image * (mask_image < 0.5)
    mask_latent, masked_latent = pipe.prepare_mask_latents(
        mask_image, masked_image, 1, 32, 48, torch.float32, torch.device("cpu"), None, False)
    assert max_abs_diff(out["concat"][:, :1], mask_latent) == 0
    assert max_abs_diff(out["concat"][:, 1:], masked_latent) < TOLERANCE
    whole = pipe.vae.encode(pixels.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mode()
    assert max_abs_diff(out["latent"], whole) < TOLERANCE
    assert torch.equal(out["noise_mask"], mask.unsqueeze(1))


def test_instruct_pix2pix_conditioning_builds_what_the_pipeline_prepares(model, probe):
    in_channels, pipe, args = model
    if in_channels != 8:
        pytest.skip("InstructPixToPixConditioning is for InstructPix2Pix models")
    pixels, _ = _image_and_mask()
    out, _ = probe("ip2p_conditioning", args, {"pixels": pixels})
    image = pipe.image_processor.preprocess(pixels.permute(0, 3, 1, 2))
    image_latents = pipe.prepare_image_latents(image, 1, 1, torch.float32, torch.device("cpu"),
                                               False)
    assert max_abs_diff(out["concat"], image_latents) < TOLERANCE
    assert torch.equal(out["latent"], torch.zeros(1, 4, 4, 6))
