"""Parity of the engine's schedules, seeded noise and samplers: schedules and KSampler sigma
selection against ComfyUI's formulas (re-derived here in PyTorch), initial noise against
torch.manual_seed + torch.randn, and every sampler that has a diffusers counterpart against that
scheduler's step loop on a synthetic model both sides evaluate identically."""
import math

import mpmath
import numpy as np
import pytest
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler,
                       KDPM2AncestralDiscreteScheduler, KDPM2DiscreteScheduler, LCMScheduler,
                       UniPCMultistepScheduler)

from parity_support import max_abs_diff
from scheduler_layouts import ddim, dpm_solver, karras_like, lcm, unipc

TOLERANCE = 1e-4
SD_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                   beta_schedule="scaled_linear")


# --- ComfyUI's schedule formulas (ModelSamplingDiscrete and comfy/samplers.py), in PyTorch ---

def comfy_tables():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
    return sigmas.float(), sigmas.log().float()


SIGMAS, LOG_SIGMAS = comfy_tables()


def comfy_timestep(sigma):
    distances = torch.tensor(sigma, dtype=torch.float32).log() - LOG_SIGMAS
    return float(distances.abs().argmin())


def comfy_sigma(t):
    t = torch.clamp(torch.as_tensor(t, dtype=torch.float32), 0, 999)
    low, high, w = t.floor().long(), t.ceil().long(), t.frac()
    return float(((1 - w) * LOG_SIGMAS[low] + w * LOG_SIGMAS[high]).exp())


def beta_ppf(p, a=0.6, b=0.6):
    """Beta(a, b) quantile by bisection on the arbitrary-precision regularized incomplete beta."""
    mpmath.mp.dps = 30
    low, high = mpmath.mpf(0), mpmath.mpf(1)
    for _ in range(80):
        mid = (low + high) / 2
        if mpmath.betainc(a, b, 0, mid, regularized=True) < p:
            low = mid
        else:
            high = mid
    return float((low + high) / 2)


def comfy_scheduler(name, steps):
    sigma_min, sigma_max = float(SIGMAS[0]), float(SIGMAS[-1])
    if name in ("normal", "sgm_uniform"):
        start, end = comfy_timestep(sigma_max), comfy_timestep(sigma_min)
        ts = (torch.linspace(start, end, steps + 1)[:-1] if name == "sgm_uniform"
              else torch.linspace(start, end, steps))
        return [comfy_sigma(t) for t in ts] + [0.0]
    if name == "karras":
        ramp = torch.linspace(0, 1, steps)
        min_inv, max_inv = sigma_min ** (1 / 7), sigma_max ** (1 / 7)
        return ((max_inv + ramp * (min_inv - max_inv)) ** 7).tolist() + [0.0]
    if name == "exponential":
        return torch.linspace(math.log(sigma_max), math.log(sigma_min), steps).exp().tolist() + [0.0]
    if name == "simple":
        stride = len(SIGMAS) / steps
        return [float(SIGMAS[-(1 + int(i * stride))]) for i in range(steps)] + [0.0]
    if name == "ddim_uniform":
        stride = max(len(SIGMAS) // steps, 1)
        return [float(SIGMAS[t]) for t in range(1, len(SIGMAS), stride)][::-1] + [0.0]
    if name == "beta":
        quantiles = [beta_ppf(p) for p in 1 - np.linspace(0, 1, steps, endpoint=False)]
        ts = np.rint(np.array(quantiles) * 999)
        picked = [t for i, t in enumerate(ts) if i == 0 or t != ts[i - 1]]
        return [float(SIGMAS[int(t)]) for t in picked] + [0.0]
    raise ValueError(name)


def comfy_ksampler_sigmas(scheduler, sampler, steps, denoise=1.0):
    """KSampler.set_steps with DISCARD_PENULTIMATE_SIGMA_SAMPLERS."""
    def calculate(n):
        if sampler in ("dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"):
            sigmas = comfy_scheduler(scheduler, n + 1)
            return sigmas[:-2] + sigmas[-1:]
        return comfy_scheduler(scheduler, n)
    if denoise > 0.9999:
        return calculate(steps)
    return calculate(int(steps / denoise))[-(steps + 1):]


def comfy_advanced_sigmas(scheduler, sampler, steps, start, end, leftover):
    """KSampler.sample's start/last step slicing (force_full_denoise = not leftover)."""
    sigmas = comfy_ksampler_sigmas(scheduler, sampler, steps)
    if end < len(sigmas) - 1:
        sigmas = sigmas[:end + 1]
        if not leftover:
            sigmas[-1] = 0.0
    if start >= len(sigmas) - 1:
        return []
    return sigmas[start:]


def diffusers_timestep(sigma):
    """diffusers' _sigma_to_t over its float32 table."""
    scheduler = EulerDiscreteScheduler(**SD_SCHEDULE)
    sigmas = np.array(((1 - scheduler.alphas_cumprod) / scheduler.alphas_cumprod) ** 0.5)
    return float(scheduler._sigma_to_t(np.array(sigma), np.log(sigmas)))


def assert_sigmas(actual, expected):
    assert actual.dtype == torch.float32
    assert actual.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("steps", [1, 3, 4, 10, 25])
@pytest.mark.parametrize("scheduler", ["normal", "karras", "exponential", "sgm_uniform", "simple",
                                       "ddim_uniform", "beta"])
def test_scheduler_matches_comfyui(probe, scheduler, steps):
    out, _ = probe("schedule", {"scheduler": scheduler, "steps": steps})
    expected = comfy_scheduler(scheduler, steps)
    assert_sigmas(out["sigmas"], expected)
    nonzero = [s for s in out["sigmas"].tolist() if s > 0]
    assert out["nearest"].tolist() == [comfy_timestep(s) for s in nonzero]
    # diffusers takes float32 logs with numpy, the engine with libtorch: an ulp apart at times.
    assert out["interpolated"].tolist() == pytest.approx([diffusers_timestep(s) for s in nonzero],
                                                         abs=1e-4)


@pytest.mark.parametrize("scheduler,sampler,steps,denoise", [
    ("normal", "euler", 20, 0.6), ("karras", "dpmpp_2m", 7, 0.35), ("karras", "dpm_2", 10, 1.0),
    ("simple", "uni_pc", 6, 0.5), ("beta", "heun", 9, 0.8), ("ddim_uniform", "euler", 12, 0.45),
])
def test_denoise_selection_matches_ksampler(probe, scheduler, sampler, steps, denoise):
    out, _ = probe("schedule", {"scheduler": scheduler, "sampler": sampler, "steps": steps,
                                "denoise": denoise})
    assert_sigmas(out["sigmas"], comfy_ksampler_sigmas(scheduler, sampler, steps, denoise))


@pytest.mark.parametrize("start,end,leftover", [
    (0, 10000, False), (3, 8, False), (3, 8, True), (0, 4, True), (12, 10000, False), (5, 5, False),
])
def test_advanced_selection_matches_ksampler_advanced(probe, start, end, leftover):
    args = {"scheduler": "karras", "sampler": "dpm_2", "steps": 12, "start_at_step": start,
            "end_at_step": end, "return_with_leftover_noise": leftover}
    out, _ = probe("schedule", args)
    assert_sigmas(out["sigmas"], comfy_advanced_sigmas("karras", "dpm_2", 12, start, end, leftover))


def comfy_prepare_noise(shape, seed, batch_index=None):
    """comfy.sample.prepare_noise."""
    generator = torch.manual_seed(seed)
    if batch_index is None:
        return torch.randn(shape, dtype=torch.float32, generator=generator)
    unique, inverse = np.unique(batch_index, return_inverse=True)
    draws = []
    for i in range(unique[-1] + 1):
        draw = torch.randn([1] + list(shape[1:]), dtype=torch.float32, generator=generator)
        if i in unique:
            draws.append(draw)
    return torch.cat([draws[i] for i in inverse])


@pytest.mark.parametrize("shape,seed,batch_index", [
    ([1, 4, 64, 64], 0, None), ([2, 4, 13, 7], 123456789, None), ([1, 4, 2, 2], 5, None),
    ([1, 4, 8, 8], 2 ** 64 - 1, None), ([3, 4, 16, 16], 77, [4, 1, 4]),
])
def test_initial_noise_matches_prepare_noise(probe, shape, seed, batch_index):
    args = {"shape": shape, "seed": seed}
    if batch_index is not None:
        args["batch_index"] = batch_index
    out, _ = probe("noise", args)
    assert torch.equal(out["noise"], comfy_prepare_noise(shape, seed, batch_index))


# --- samplers against diffusers scheduler loops ---

def synthetic_output(x_in, t):
    """The model both sides run: m(x_in, t) = 0.1 sin(x_in) + 0.001 t x_in."""
    return 0.1 * torch.sin(x_in) + 1e-3 * float(t) * x_in


def run_diffusers(scheduler, x, seed):
    generator = torch.Generator().manual_seed(seed + 1) if seed is not None else None
    for t in scheduler.timesteps:
        model_output = synthetic_output(scheduler.scale_model_input(x, t), t)
        kwargs = {"generator": generator} if generator is not None else {}
        x = scheduler.step(model_output, t, x, **kwargs).prev_sample
    return x


SD = dict(SD_SCHEDULE, steps_offset=1)
CASES = {
    # id: (engine sampler, diffusers scheduler, steps, prediction, seeded, layout)
    "euler": ("euler", lambda p: EulerDiscreteScheduler(**SD, prediction_type=p), 10,
              "epsilon", False, karras_like),
    "euler_v": ("euler", lambda p: EulerDiscreteScheduler(**SD, prediction_type=p), 10,
                "v_prediction", False, karras_like),
    "euler_sample": ("euler", lambda p: EulerDiscreteScheduler(**SD, prediction_type=p), 6,
                     "sample", False, karras_like),
    "euler_karras": ("euler", lambda p: EulerDiscreteScheduler(
        **SD, prediction_type=p, use_karras_sigmas=True), 12, "epsilon", False, karras_like),
    "euler_trailing": ("euler", lambda p: EulerDiscreteScheduler(
        **SD, prediction_type=p, timestep_spacing="trailing"), 4, "epsilon", False, karras_like),
    "euler_ancestral": ("euler_ancestral", lambda p: EulerAncestralDiscreteScheduler(
        **SD, prediction_type=p), 10, "epsilon", True, karras_like),
    "heun": ("heun", lambda p: HeunDiscreteScheduler(**SD, prediction_type=p), 8,
             "epsilon", False, karras_like),
    "heun_v": ("heun", lambda p: HeunDiscreteScheduler(**SD, prediction_type=p), 8,
               "v_prediction", False, karras_like),
    "dpm_2": ("dpm_2", lambda p: KDPM2DiscreteScheduler(**SD, prediction_type=p), 8,
              "epsilon", False, karras_like),
    "dpm_2_ancestral": ("dpm_2_ancestral", lambda p: KDPM2AncestralDiscreteScheduler(
        **SD, prediction_type=p), 8, "epsilon", True, karras_like),
    "dpmpp_2m": ("dpmpp_2m", lambda p: DPMSolverMultistepScheduler(
        **SD, prediction_type=p, algorithm_type="dpmsolver++", lower_order_final=False), 12,
        "epsilon", False, dpm_solver),
    "dpmpp_2m_v_karras": ("dpmpp_2m", lambda p: DPMSolverMultistepScheduler(
        **SD, prediction_type=p, algorithm_type="dpmsolver++", lower_order_final=False,
        use_karras_sigmas=True), 12, "v_prediction", False, dpm_solver),
    "dpmpp_2m_sde": ("dpmpp_2m_sde", lambda p: DPMSolverMultistepScheduler(
        **SD, prediction_type=p, algorithm_type="sde-dpmsolver++", lower_order_final=False), 12,
        "epsilon", True, dpm_solver),
    "ddim": ("ddim", lambda p: DDIMScheduler(
        **SD, prediction_type=p, set_alpha_to_one=False, clip_sample=False), 10,
        "epsilon", False, ddim),
    "ddim_v": ("ddim", lambda p: DDIMScheduler(
        **SD, prediction_type=p, set_alpha_to_one=False, clip_sample=False), 10,
        "v_prediction", False, ddim),
    "lcm": ("lcm", lambda p: LCMScheduler(**SD, prediction_type=p), 4, "epsilon", True, lcm),
    "uni_pc": ("uni_pc", lambda p: UniPCMultistepScheduler(
        **SD, prediction_type=p, solver_order=3, solver_type="bh1",
        final_sigmas_type="sigma_min"), 10, "epsilon", False, unipc),
    "uni_pc_bh2": ("uni_pc_bh2", lambda p: UniPCMultistepScheduler(
        **SD, prediction_type=p, solver_order=3, solver_type="bh2",
        final_sigmas_type="sigma_min"), 10, "epsilon", False, unipc),
    "uni_pc_bh2_v": ("uni_pc_bh2", lambda p: UniPCMultistepScheduler(
        **SD, prediction_type=p, solver_order=3, solver_type="bh2",
        final_sigmas_type="sigma_min"), 7, "v_prediction", False, unipc),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sampler_matches_diffusers(probe, case):
    sampler, make_scheduler, steps, prediction, seeded, layout = CASES[case]
    scheduler = make_scheduler(prediction)
    scheduler.set_timesteps(steps)
    sigmas, timesteps, diffusers_scale, engine_scale, output_scale = layout(scheduler)
    seed = 1234 if seeded else None
    noise = torch.randn([1, 4, 8, 8], generator=torch.Generator().manual_seed(7))

    expected = run_diffusers(scheduler, noise * diffusers_scale, seed)
    args = {"sampler": sampler, "sigmas": sigmas, "timesteps": timesteps,
            "noise_seed": seed or 0, "prediction": prediction}
    out, _ = probe("sample", args, {"x": noise * diffusers_scale * engine_scale})
    actual = out["out"] * output_scale
    diff = max_abs_diff(actual, expected)
    print(f"{case}: max abs diff {diff:.3g} (magnitude {expected.abs().max().item():.3g})")
    assert diff <= TOLERANCE, f"{case}: max abs diff {diff} > {TOLERANCE}"


def test_sde_samplers_are_seeded_but_not_brownian(probe):
    """dpmpp_sde has no diffusers counterpart without torchsde's Brownian tree; the engine's run
    is at least reproducible and seed-dependent."""
    sigmas = comfy_scheduler("karras", 6)
    x = torch.randn([1, 4, 8, 8], generator=torch.Generator().manual_seed(3)) * sigmas[0]
    runs = [probe("sample", {"sampler": "dpmpp_sde", "sigmas": sigmas, "noise_seed": seed,
                             "prediction": "epsilon"}, {"x": x})[0]["out"] for seed in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])
