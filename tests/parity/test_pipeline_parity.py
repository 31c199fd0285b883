"""Whole text-to-image runs: Dream Forge's engine against diffusers' pipelines on the same tiny
weights, the same initial latents and the same sigmas (fp32 CPU)."""
import math

import pytest
import torch
from diffusers import (DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler)

from parity_support import max_abs_diff

PROMPT = "a painting of a squirrel eating a burger"
NEGATIVE = "blurry, low quality"
STEPS = 4
GUIDANCE = 6.0
NOISE_SEED = 7


def scheduler_for(sampler, config):
    """The diffusers scheduler that runs the same algorithm as the engine's `sampler`."""
    if sampler == "euler":
        return EulerDiscreteScheduler.from_config(config)
    if sampler == "euler_ancestral":
        return EulerAncestralDiscreteScheduler.from_config(config)
    if sampler == "heun":
        return HeunDiscreteScheduler.from_config(config)
    if sampler == "dpmpp_2m":
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero")
    raise ValueError(sampler)


def engine_start(pipe, sampler, latents):
    """diffusers' starting sample and sigmas expressed in the engine's (VE) convention."""
    scheduler = pipe.scheduler
    scheduler.set_timesteps(STEPS)
    if sampler == "dpmpp_2m":  # VP state: x_VE = x_VP * sqrt(1 + sigma^2)
        sigmas = scheduler.sigmas.clone()
        return latents * math.sqrt(1 + sigmas[0].item() ** 2), sigmas
    sigmas = torch.unique_consecutive(scheduler.sigmas)
    return latents * scheduler.init_noise_sigma, sigmas


def run_diffusers(pipe, family, latents):
    kwargs = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS,
                  guidance_scale=GUIDANCE, latents=latents.clone(), output_type="pt",
                  generator=torch.manual_seed(NOISE_SEED + 1), height=64, width=64)
    with torch.no_grad():
        images = pipe(**kwargs).images
        latent_out = pipe(**{**kwargs, "output_type": "latent",
                             "generator": torch.manual_seed(NOISE_SEED + 1)}).images
    return images, latent_out


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "heun", "dpmpp_2m"])
def test_txt2img_matches_diffusers(tiny_pipeline, sampler, probe):
    family, pipe, path = tiny_pipeline
    if family != "sd1" and sampler != "euler":
        pytest.skip("other samplers are compared on SD1; every family runs euler")
    original = pipe.scheduler  # the pipeline is shared by the session: leave it as found
    pipe.scheduler = scheduler_for(sampler, original.config)
    try:
        latents = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(0))
        images, latent_out = run_diffusers(pipe, family, latents)
        start, sigmas = engine_start(pipe, sampler, latents)
    finally:
        pipe.scheduler = original
    out, _ = probe("txt2img", {"path": str(path), "prompt": PROMPT, "negative": NEGATIVE,
                               "cfg": GUIDANCE, "sampler": sampler, "noise_seed": NOISE_SEED},
                   {"latents": start, "sigmas": sigmas.float()})
    assert max_abs_diff(out["latents"], latent_out) < 1e-4
    assert max_abs_diff(out["image"], images) < 2 / 255


def test_single_file_gives_the_same_image_as_the_folder(tiny_pipeline, probe, tmp_path, clip_tokenizer_dir):
    """The same weights saved as an original-layout single .safetensors file run identically."""
    import single_file
    family, pipe, path = tiny_pipeline
    checkpoint = tmp_path / f"{family}.safetensors"
    single_file.pipeline_to_single_file(pipe, family, checkpoint)
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(3))
    sigmas = torch.tensor([14.6146, 4.0817, 1.6129, 0.6932, 0.0])
    args = {"prompt": PROMPT, "negative": NEGATIVE, "cfg": GUIDANCE, "sampler": "euler",
            "clip_vocab_dir": str(clip_tokenizer_dir)}
    inputs = {"latents": latents * sigmas[0], "sigmas": sigmas}
    from_folder, _ = probe("txt2img", {**args, "path": str(path)}, inputs)
    from_file, _ = probe("txt2img", {**args, "path": str(checkpoint)}, inputs)
    assert max_abs_diff(from_file["image"], from_folder["image"]) == 0
    assert max_abs_diff(from_file["latents"], from_folder["latents"]) == 0
