"""Parity of inpainting (9-channel UNet) and InstructPix2Pix (8-channel UNet) SD 1.x and SDXL
models with diffusers on tiny random models, from a diffusers folder and (SD 1.x) from a single
file whose UNet is detected by its conv_in shape: one model call with the extra inputs (mask and
masked-image latent, or image latent) against UNet2DConditionModel as the inpaint and
InstructPix2Pix pipelines call it, and the extra inputs InpaintModelConditioning /
InstructPixToPixConditioning build against the pipelines' prepare_mask_latents /
prepare_image_latents.

Masked pixels: ComfyUI sets them to grey 0.5 in [0, 1] pixels; diffusers multiplies the [-1, 1]
image by the inverted mask, i.e. sets them to 0 in [-1, 1] -- the same colour, so the masked-image
latents agree. Both encode with the VAE's mean (diffusers' inpaint pipeline samples by default;
the test makes it take the mean, as ComfyUI does)."""
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from diffusers import (StableDiffusionInpaintPipeline, StableDiffusionInstructPix2PixPipeline,
                       StableDiffusionXLInpaintPipeline, StableDiffusionXLInstructPix2PixPipeline,
                       UNet2DConditionModel)
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_inpaint
from diffusers.pipelines.stable_diffusion_xl import pipeline_stable_diffusion_xl_inpaint

import single_file
import tiny_models
from parity_support import max_abs_diff

TOLERANCE = 1e-4
PIPELINES = {("sd1", 9): StableDiffusionInpaintPipeline,
             ("sd1", 8): StableDiffusionInstructPix2PixPipeline,
             ("sdxl", 9): StableDiffusionXLInpaintPipeline,
             ("sdxl", 8): StableDiffusionXLInstructPix2PixPipeline}
# The modules whose retrieve_latents the inpaint pipelines encode the masked image with.
INPAINT_MODULES = {"sd1": pipeline_stable_diffusion_inpaint,
                   "sdxl": pipeline_stable_diffusion_xl_inpaint}


def _pipeline(family, in_channels, directory):
    """The tiny pipeline of `family` (tiny_models) with a UNet of `in_channels` inputs."""
    base, _ = tiny_models.build(family, directory)
    config = dict(base.unet.config, in_channels=in_channels)
    torch.manual_seed(1)
    unet = UNet2DConditionModel.from_config(config)
    components = {name: module for name, module in base.components.items()
                  if name not in ("unet", "safety_checker", "feature_extractor", "image_encoder")}
    extra = {"requires_safety_checker": False, "safety_checker": None,
             "feature_extractor": None} if family == "sd1" else {}
    return PIPELINES[(family, in_channels)](unet=unet, **components, **extra)


def _single_file_without_unet_config(pipe, path):
    """A single-file checkpoint whose UNet config the loader must infer from the tensors (the
    tiny CLIP's and VAE's configs stay in the metadata: their widths are not inferable)."""
    tensors = single_file.pipeline_to_single_file(pipe, "sd1", path)
    with safe_open(str(path), "pt") as stored:
        metadata = dict(stored.metadata())
    del metadata["dreamforge.unet_config"]
    save_file(tensors, str(path), metadata=metadata)


# The tiny SDXL CLIP and UNet widths are not inferable from tensors alone: SDXL only as a folder.
@pytest.fixture(scope="module", params=[("sd1", 9, "folder"), ("sd1", 9, "single_file"),
                                        ("sd1", 8, "folder"), ("sd1", 8, "single_file"),
                                        ("sdxl", 9, "folder"), ("sdxl", 8, "folder")],
                ids=["sd1-inpaint-folder", "sd1-inpaint-single-file", "sd1-ip2p-folder",
                     "sd1-ip2p-single-file", "sdxl-inpaint-folder", "sdxl-ip2p-folder"])
def model(request, tmp_path_factory):
    """(family, in_channels, diffusers pipeline, probe args) for a tiny model of that kind."""
    family, in_channels, layout = request.param
    directory = tmp_path_factory.mktemp(f"model_{family}_{in_channels}_{layout}")
    pipe = _pipeline(family, in_channels, directory)
    tokenizer = directory / "_tok"
    if layout == "folder":
        pipe.save_pretrained(str(directory / "model"), safe_serialization=True)
        args = {"path": str(directory / "model")}
    else:
        path = directory / "model.safetensors"
        _single_file_without_unet_config(pipe, path)
        args = {"path": str(path), "clip_vocab_dir": str(tokenizer)}
    return family, in_channels, pipe, args


def _sigma_at(pipe, timestep):
    alphas = pipe.scheduler.alphas_cumprod[timestep].double()
    return float(((1 - alphas) / alphas) ** 0.5)


def _image_and_mask():
    generator = torch.Generator().manual_seed(3)
    pixels = torch.rand(1, 32, 48, 3, generator=generator)
    mask = torch.zeros(1, 32, 48)
    mask[:, 8:24, 16:40] = 1.0  # whole 8-pixel cells, so diffusers' nearest resize agrees
    return pixels, mask


def _text_inputs(family, generator):
    """Probe inputs standing in for an encoded prompt: the context, and SDXL's pooled embedding."""
    if family == "sdxl":
        return {"context": torch.randn(1, 77, 64, generator=generator),
                "pooled": torch.randn(1, 32, generator=generator)}
    return {"context": torch.randn(1, 77, 32, generator=generator)}


def _diffusers_denoised(pipe, x, sigma, timestep, text, extra):
    """The eps model's denoised estimate through diffusers' UNet; SDXL's size conditioning is
    the latent's pixel size, as ComfyUI sets it without CLIPTextEncodeSDXL."""
    batch = x.shape[0]
    c_in = 1.0 / (sigma ** 2 + 1.0) ** 0.5
    sample = torch.cat([x * c_in, extra.repeat(batch // extra.shape[0], 1, 1, 1)], dim=1)
    added = None
    if "pooled" in text:
        height, width = x.shape[2] * 8, x.shape[3] * 8
        time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32)
        added = {"text_embeds": text["pooled"].repeat(batch, 1),
                 "time_ids": time_ids.repeat(batch, 1)}
    eps = pipe.unet(sample, timestep, encoder_hidden_states=text["context"].repeat(batch, 1, 1),
                    added_cond_kwargs=added).sample
    return x - eps * sigma


def test_one_model_call_reads_the_extra_inputs_as_diffusers_does(model, probe):
    family, in_channels, pipe, args = model
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 4, 6, generator=generator)
    text = _text_inputs(family, generator)
    image_latent = torch.randn(1, 4, 4, 6, generator=generator)
    timestep = 500
    sigma = _sigma_at(pipe, timestep)
    inputs = {"x": x, "concat_latent_image": image_latent, **text}
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
    expected = _diffusers_denoised(pipe, x, sigma, timestep, text, extra)
    assert max_abs_diff(out["denoised"], expected) < TOLERANCE


def test_the_inpainting_fallback_reads_the_latent_and_its_noise_mask(model, probe):
    """VAEEncodeForInpaint's way: no concat inputs, so the model reads the rounded noise mask and
    the sampled latent (in the sampler's space)."""
    family, in_channels, pipe, args = model
    if in_channels != 9:
        pytest.skip("only inpainting models fall back to the latent")
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(1, 4, 4, 6, generator=generator)
    text = _text_inputs(family, generator)
    latent = torch.randn(1, 4, 4, 6, generator=generator)
    noise_mask = torch.zeros(1, 1, 4, 6)
    noise_mask[..., 2:, :] = 0.8  # rounds to 1
    timestep = 700
    sigma = _sigma_at(pipe, timestep)
    out, _ = probe("concat_denoise", {**args, "sigma": sigma},
                   {"x": x, "latent": latent, "noise_mask": noise_mask, **text})
    extra = torch.cat([noise_mask.round(), latent * pipe.vae.config.scaling_factor], dim=1)
    expected = _diffusers_denoised(pipe, x, sigma, timestep, text, extra)
    assert max_abs_diff(out["denoised"], expected) < TOLERANCE


def _vae_mean(encoded, generator=None, sample_mode="sample"):
    return encoded.latent_dist.mode()


def test_inpaint_model_conditioning_builds_what_the_inpaint_pipeline_prepares(model, probe,
                                                                             monkeypatch):
    family, in_channels, pipe, args = model
    if in_channels != 9:
        pytest.skip("InpaintModelConditioning is for inpainting models")
    pixels, mask = _image_and_mask()
    out, _ = probe("inpaint_conditioning", args, {"pixels": pixels, "mask": mask})
    monkeypatch.setattr(INPAINT_MODULES[family], "retrieve_latents", _vae_mean)
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
    family, in_channels, pipe, args = model
    if in_channels != 8:
        pytest.skip("InstructPixToPixConditioning is for InstructPix2Pix models")
    pixels, _ = _image_and_mask()
    out, _ = probe("ip2p_conditioning", args, {"pixels": pixels})
    image = pipe.image_processor.preprocess(pixels.permute(0, 3, 1, 2))
    image_latents = pipe.prepare_image_latents(image, 1, 1, torch.float32, torch.device("cpu"),
                                               False)  # unscaled (SDXL's too, unless CosXL edit)
    assert max_abs_diff(out["concat"], image_latents) < TOLERANCE
    assert torch.equal(out["latent"], torch.zeros(1, 4, 4, 6))
