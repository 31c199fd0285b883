"""Whole text-to-image runs: Dream Forge's engine against diffusers' pipelines on the same tiny
weights, the same initial latents and the same sigmas (fp32 CPU)."""
import pytest
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler, KDPM2DiscreteScheduler,
                       LCMScheduler,
                       UniPCMultistepScheduler)

from parity_support import max_abs_diff
from scheduler_layouts import ddim, dpm_solver, karras_like, lcm, unipc

PROMPT = "a painting of a squirrel eating a burger"
NEGATIVE = "blurry, low quality"
STEPS = 4
GUIDANCE = 6.0
NOISE_SEED = 7


def dpm_solver_factory(algorithm):
    return lambda config: DPMSolverMultistepScheduler.from_config(
        config, algorithm_type=algorithm, solver_order=2, final_sigmas_type="zero")


# engine sampler -> (diffusers scheduler from the pipeline's config, how its run maps to ours).
# dpm_2 evaluates the model between table timesteps, where diffusers feeds a fractional timestep:
# the engine runs it with diffusers' timestep mapping instead of ComfyUI's nearest index.
CASES = {
    "dpm_2": (KDPM2DiscreteScheduler.from_config, karras_like),
    "euler": (EulerDiscreteScheduler.from_config, karras_like),
    "euler_ancestral": (EulerAncestralDiscreteScheduler.from_config, karras_like),
    "heun": (HeunDiscreteScheduler.from_config, karras_like),
    "dpmpp_2m": (dpm_solver_factory("dpmsolver++"), dpm_solver),
    # dpmpp_2m_sde is not here: the engine draws its noise from ComfyUI's Brownian tree, the
    # pipeline from its generator (test_sampler_parity feeds diffusers' step the tree's noise).
    "ddim": (lambda c: DDIMScheduler.from_config(c, set_alpha_to_one=False, clip_sample=False), ddim),
    "lcm": (LCMScheduler.from_config, lcm),
    "uni_pc": (lambda c: UniPCMultistepScheduler.from_config(
        c, solver_order=2, solver_type="bh1", final_sigmas_type="sigma_min"), unipc),
    "uni_pc_bh2": (lambda c: UniPCMultistepScheduler.from_config(
        c, solver_order=2, solver_type="bh2", final_sigmas_type="sigma_min"), unipc),
}


def run_diffusers(pipe, latents):
    kwargs = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS,
                  guidance_scale=GUIDANCE, latents=latents.clone(), output_type="pt",
                  generator=torch.manual_seed(NOISE_SEED + 1), height=64, width=64)
    with torch.no_grad():
        images = pipe(**kwargs).images
        latent_out = pipe(**{**kwargs, "output_type": "latent",
                             "generator": torch.manual_seed(NOISE_SEED + 1)}).images
    return images, latent_out


@pytest.mark.parametrize("sampler", list(CASES))
def test_txt2img_matches_diffusers(tiny_pipeline, sampler, probe):
    family, pipe, path = tiny_pipeline
    if family != "sd1" and sampler != "euler":
        pytest.skip("every sampler is compared on SD1; every family runs euler")
    make_scheduler, layout = CASES[sampler]
    original = pipe.scheduler  # the pipeline is shared by the session: leave it as found
    pipe.scheduler = make_scheduler(original.config)
    try:
        latents = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(0))
        images, latent_out = run_diffusers(pipe, latents)
        pipe.scheduler.set_timesteps(STEPS)
        sigmas, _, diffusers_scale, engine_scale, output_scale = layout(pipe.scheduler)
    finally:
        pipe.scheduler = original

    out, _ = probe("txt2img", {"path": str(path), "prompt": PROMPT, "negative": NEGATIVE,
                               "cfg": GUIDANCE, "sampler": sampler, "noise_seed": NOISE_SEED,
                               "timesteps": "interpolated" if sampler == "dpm_2" else "nearest"},
                   {"latents": latents * diffusers_scale * engine_scale,
                    "sigmas": torch.tensor(sigmas, dtype=torch.float32)})
    # float32 pipelines: 1e-4, relative to the latents' magnitude where that exceeds 1 (LCM).
    assert max_abs_diff(out["latents"] * output_scale, latent_out) < 1e-4 * max(
        1.0, latent_out.abs().max().item())
    assert max_abs_diff(out["image"], images) < 2 / 255


def test_single_file_gives_the_same_image_as_the_folder(tiny_pipeline, probe, tmp_path, clip_tokenizer_dir):
    """The same weights saved as an original-layout single .safetensors file give the same image,
    up to float rounding."""
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
    # The same values, but not bit for bit on every CPU: the two loaders build the weights apart
    # (renamed keys; OpenCLIP's fused attention split into q/k/v; text_projection transposed; the
    # VAE's 1x1 attention convolutions squeezed to matrices), so the tensors differ in layout and
    # alignment, and the CPU's matrix kernels may then sum in another order. Which kernels run
    # depends on the CPU's vector units: one CPU gives identical results, another differs by about
    # 1e-6. The bounds leave that rounding room (pixels lie in [0, 1]; latents are compared relative
    # to their magnitude, up to about 50) and are stricter than the diffusers parity above (2/255,
    # 1e-4), while a mapping mistake shows far above them: q and k swapped in a single attention
    # layer moves the image by 1e-2 and the latents by 1e-2 of their magnitude.
    assert max_abs_diff(from_file["image"], from_folder["image"]) < 1e-4
    assert max_abs_diff(from_file["latents"], from_folder["latents"]) < 1e-5 * max(
        1.0, from_folder["latents"].abs().max().item())
