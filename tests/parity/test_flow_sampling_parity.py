"""Parity of the flow-matching model samplings (SD3 / AuraFlow / Z-Image's
ModelSamplingDiscreteFlow, FLUX's ModelSamplingFlux), the schedulers on them, and the samplers'
flow (CONST) forms, against ComfyUI's formulas re-implemented here from ComfyUI's
comfy/model_sampling.py, comfy/samplers.py and comfy/k_diffusion/sampling.py, in float32 tensor
arithmetic as ComfyUI computes them.

The samplers run on a synthetic velocity model both sides evaluate identically (see
probe_flow_sampling.cpp): v(x, t) = 0.1 sin(x) + 0.001 t x at t = sigma * multiplier, denoised
= x - v * sigma (ComfyUI's CONST prediction). Per-step noise is ComfyUI's on the CPU: the default
noise sampler seeded with seed + 1, the SDE samplers' torchsde Brownian tree seeded with seed."""
import math

import numpy as np
import pytest
import torch

from parity_support import max_abs_diff
from test_sampler_parity import ancestral, beta_ppf, brownian_noise, default_noise, to_d

TOLERANCE = 1e-4
SIGMA_TOLERANCE = 2e-6  # float32 sigmas below 1: a few units in the last place


# --- ComfyUI's flow model samplings ---

def time_snr_shift(alpha, t):
    if alpha == 1.0:
        return t
    return alpha * t / (1 + (alpha - 1) * t)


def flux_time_shift(mu, sigma, t):
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** sigma)


class DiscreteFlow:
    """ModelSamplingDiscreteFlow: 1000 sigmas, timestep = sigma * multiplier."""

    def __init__(self, shift, multiplier=1000, timesteps=1000):
        self.shift, self.multiplier = shift, multiplier
        self.sigmas = self.sigma((torch.arange(1, timesteps + 1, 1) / timesteps) * multiplier)

    def timestep(self, sigma):
        return sigma * self.multiplier

    def sigma(self, timestep):
        return time_snr_shift(self.shift, timestep / self.multiplier)

    def percent_to_sigma(self, percent):
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return time_snr_shift(self.shift, 1.0 - percent)


class FluxFlow:
    """ModelSamplingFlux: 10000 sigmas, timestep = sigma."""

    multiplier = 1.0

    def __init__(self, shift, timesteps=10000):
        self.shift = shift
        self.sigmas = self.sigma(torch.arange(1, timesteps + 1, 1) / timesteps)

    def timestep(self, sigma):
        return sigma

    def sigma(self, timestep):
        return flux_time_shift(self.shift, 1.0, timestep)

    def percent_to_sigma(self, percent):
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return flux_time_shift(self.shift, 1.0, 1.0 - percent)


def model_sampling(kind, shift, multiplier=1000.0):
    return FluxFlow(shift) if kind == "flux_flow" else DiscreteFlow(shift, multiplier)


def probe_args(kind, shift, multiplier=1000.0):
    args = {"kind": kind, "shift": shift}
    if kind == "discrete_flow":
        args["multiplier"] = multiplier
    return args


SAMPLINGS = [("discrete_flow", 3.0, 1000.0),   # SD3
             ("discrete_flow", 3.0, 1.0),      # Z-Image (Lumina 2 family: multiplier 1)
             ("discrete_flow", 1.73, 1.0),     # AuraFlow's shift
             ("discrete_flow", 1.0, 1000.0),   # unshifted
             ("flux_flow", 1.15, 1.0),         # FLUX dev at 1024 px
             ("flux_flow", 0.5, 1.0)]


@pytest.mark.parametrize("kind,shift,multiplier", SAMPLINGS)
def test_flow_model_sampling_matches_comfyui(probe, kind, shift, multiplier):
    ms = model_sampling(kind, shift, multiplier)
    sigmas = [0.0291, 0.25, 0.5, 0.9, 1.0]
    timesteps = [float(ms.timestep(torch.tensor(s))) for s in sigmas]
    percents = [0.0, 1e-4, 0.25, 0.5, 0.9, 1.0]
    args = dict(probe_args(kind, shift, multiplier), sigmas=sigmas, timesteps=timesteps,
                percents=percents)
    out, _ = probe("flow_model_sampling", args)
    assert out["table"].dtype == torch.float32 and out["table"].shape == ms.sigmas.shape
    assert max_abs_diff(out["table"], ms.sigmas) <= 2e-7
    assert out["timestep"].tolist() == pytest.approx(timesteps, rel=1e-6)
    expected_sigmas = [float(ms.sigma(torch.tensor(t, dtype=torch.float32))) for t in timesteps]
    assert out["sigma"].tolist() == pytest.approx(expected_sigmas, abs=SIGMA_TOLERANCE)
    expected_percent = [float(ms.percent_to_sigma(p)) for p in percents]
    assert out["percent_to_sigma"].tolist() == pytest.approx(expected_percent, abs=1e-7)
    assert out["percent_to_sigma"][0] == 1.0 and out["percent_to_sigma"][-1] == 0.0


# --- ComfyUI's schedulers (comfy/samplers.py) on a model sampling ---

def comfy_scheduler(ms, name, steps):
    sigma_min, sigma_max = ms.sigmas[0], ms.sigmas[-1]
    if name == "simple":
        stride = len(ms.sigmas) / steps
        return [float(ms.sigmas[-(1 + int(x * stride))]) for x in range(steps)] + [0.0]
    if name in ("normal", "sgm_uniform"):
        start, end = ms.timestep(sigma_max), ms.timestep(sigma_min)
        append_zero = True
        if name == "sgm_uniform":
            timesteps = torch.linspace(start, end, steps + 1)[:-1]
        else:
            if math.isclose(float(ms.sigma(end)), 0, abs_tol=0.00001):
                steps += 1
                append_zero = False
            timesteps = torch.linspace(start, end, steps)
        return [float(ms.sigma(t)) for t in timesteps] + ([0.0] if append_zero else [])
    if name == "karras":
        ramp = torch.linspace(0, 1, steps)
        min_inv, max_inv = float(sigma_min) ** (1 / 7), float(sigma_max) ** (1 / 7)
        return ((max_inv + ramp * (min_inv - max_inv)) ** 7).tolist() + [0.0]
    if name == "exponential":
        return (torch.linspace(math.log(float(sigma_max)), math.log(float(sigma_min)), steps)
                .exp().tolist() + [0.0])
    if name == "ddim_uniform":
        x = 1
        if math.isclose(float(ms.sigmas[x]), 0, abs_tol=0.00001):
            steps += 1
            sigs = []
        else:
            sigs = [0.0]
        stride = max(len(ms.sigmas) // steps, 1)
        while x < len(ms.sigmas):
            sigs.append(float(ms.sigmas[x]))
            x += stride
        return sigs[::-1]
    if name == "beta":
        total = len(ms.sigmas) - 1
        quantiles = [beta_ppf(p) for p in 1 - np.linspace(0, 1, steps, endpoint=False)]
        sigs, last = [], -1
        for t in np.rint(np.array(quantiles) * total):
            if t != last:
                sigs.append(float(ms.sigmas[int(t)]))
            last = t
        return sigs + [0.0]
    if name == "linear_quadratic":
        if steps == 1:
            ramp = [0.0, 1.0]
        else:
            linear = steps // 2
            quadratic = steps - linear
            diff = linear - 0.025 * steps
            q_coef = diff / (linear * quadratic ** 2)
            l_coef = 0.025 / linear - 2 * diff / quadratic ** 2
            const = q_coef * linear ** 2
            ramp = ([i * 0.025 / linear for i in range(linear)]
                    + [q_coef * i ** 2 + l_coef * i + const for i in range(linear, steps)] + [1.0])
        return (torch.tensor([1.0 - r for r in ramp], dtype=torch.float32) * sigma_max).tolist()
    if name == "kl_optimal":
        ramp = torch.arange(steps, dtype=torch.float32) / (steps - 1)
        sigs = (ramp * math.atan(float(sigma_min)) + (1 - ramp) * math.atan(float(sigma_max))).tan()
        return sigs.tolist() + [0.0]
    raise ValueError(name)


SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
              "linear_quadratic", "kl_optimal"]


@pytest.mark.parametrize("kind,shift,multiplier", [SAMPLINGS[0], SAMPLINGS[1], SAMPLINGS[4]])
@pytest.mark.parametrize("steps", [4, 9, 30])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_scheduler_on_flow_matches_comfyui(probe, scheduler, steps, kind, shift, multiplier):
    expected = comfy_scheduler(model_sampling(kind, shift, multiplier), scheduler, steps)
    args = dict(probe_args(kind, shift, multiplier), scheduler=scheduler, steps=steps)
    out, _ = probe("flow_scheduler", args)
    assert out["sigmas"].shape[0] == len(expected)
    assert max_abs_diff(out["sigmas"], torch.tensor(expected, dtype=torch.float32)) <= SIGMA_TOLERANCE


# --- the samplers' CONST forms (comfy/k_diffusion/sampling.py) ---

def flow_model(ms, cfg):
    def denoised_of(x, sigma):
        sigma = float(sigma)
        v = torch.sin(x) * 0.1 + x * (1e-3 * sigma * ms.multiplier)
        return x - v * sigma

    def model(x, sigma):
        cond = denoised_of(x, sigma)
        if cfg is None:
            return cond, cond
        uncond = x - (x - denoised_of(x * 0.8, sigma)) / 0.8
        return uncond + (cond - uncond) * cfg, uncond
    return model


def half_log_snr(sigma):  # sigma_to_half_log_snr for CONST
    return sigma.logit().neg()


def sigma_of(half_log_snr_value):  # half_log_snr_to_sigma for CONST
    return half_log_snr_value.neg().sigmoid()


def offset_first_sigma(s, ms):
    if s[0] >= 1:
        s = s.clone()
        s[0] = ms.percent_to_sigma(1e-4)
    return s


def flow_ancestral(s, i, eta=1.0):
    down = s[i + 1] * (1 + (s[i + 1] / s[i] - 1) * eta)
    alpha_next, alpha_down = 1 - s[i + 1], 1 - down
    renoise = (s[i + 1] ** 2 - down ** 2 * alpha_next ** 2 / alpha_down ** 2) ** 0.5
    return down, alpha_next / alpha_down, renoise


def ref_euler(model, x, s, ms, noise):
    for i in range(len(s) - 1):
        x = x + to_d(x, s[i], model(x, s[i])[0]) * (s[i + 1] - s[i])
    return x


def ref_euler_ancestral_rf(model, x, s, ms, noise):
    for i in range(len(s) - 1):
        denoised = model(x, s[i])[0]
        if s[i + 1] == 0:
            x = denoised
            continue
        down, rescale, renoise = flow_ancestral(s, i)
        ratio = down / s[i]
        x = ratio * x + (1 - ratio) * denoised
        x = rescale * x + noise(s[i], s[i + 1]) * renoise
    return x


def ref_dpm_2_ancestral_rf(model, x, s, ms, noise):
    for i in range(len(s) - 1):
        denoised = model(x, s[i])[0]
        down, rescale, renoise = flow_ancestral(s, i)
        d = to_d(x, s[i], denoised)
        if down == 0:
            x = x + d * (down - s[i])
        else:
            mid = s[i].log().lerp(down.log(), 0.5).exp()
            x_2 = x + d * (mid - s[i])
            d_2 = to_d(x_2, mid, model(x_2, mid)[0])
            x = x + d_2 * (down - s[i])
            x = rescale * x + noise(s[i], s[i + 1]) * renoise
    return x


def ref_dpmpp_2s_ancestral_rf(model, x, s, ms, noise, cfg_pp=False):
    pick = (lambda out: out[1]) if cfg_pp else (lambda out: out[0])
    for i in range(len(s) - 1):
        out = model(x, s[i])
        guidance = out[0] - out[1]
        down, rescale, renoise = flow_ancestral(s, i)
        if s[i + 1] == 0:
            x = x + to_d(x, s[i], pick(out)) * (down - s[i])
        else:
            if s[i] == 1.0:
                sigma_s = torch.tensor(0.9999)
            else:
                lambda_i, lambda_down = ((1 - s[i]) / s[i]).log(), ((1 - down) / down).log()
                sigma_s = (lambda_i + 0.5 * (lambda_down - lambda_i)).exp().add(1) ** -1
            ratio = sigma_s / s[i]
            u = ratio * x + (1 - ratio) * pick(out)
            d_i = pick(model(u, sigma_s))
            ratio = down / s[i]
            x = ratio * x + (1 - ratio) * d_i
            x = rescale * x + noise(s[i], s[i + 1]) * renoise
        if cfg_pp:
            x = x + (1 - s[i + 1]) * guidance
    return x


def ref_euler_ancestral_cfg_pp(model, x, s, ms, noise, eta=1.0):
    for i in range(len(s) - 1):
        denoised, uncond = model(x, s[i])
        if s[i + 1] == 0:
            x = denoised
            continue
        alpha_s = s[i] * half_log_snr(s[i]).exp()
        alpha_t = s[i + 1] * half_log_snr(s[i + 1]).exp()
        d = to_d(x, s[i], alpha_s * uncond)
        down, up = ancestral(s[i] / alpha_s, s[i + 1] / alpha_t, eta=eta)
        x = alpha_t * denoised + alpha_t * down * d
        if eta > 0:
            x = x + alpha_t * noise(s[i], s[i + 1]) * up
    return x


def ref_dpmpp_sde(model, x, s, ms, noise):
    s = offset_first_sigma(s, ms)
    for i in range(len(s) - 1):
        denoised = model(x, s[i])[0]
        if s[i + 1] == 0:
            x = denoised
            continue
        lambda_s, lambda_t = half_log_snr(s[i]), half_log_snr(s[i + 1])
        h = lambda_t - lambda_s
        lambda_s_1 = lambda_s + 0.5 * h
        sigma_s_1 = sigma_of(lambda_s_1)
        alpha_s = s[i] * lambda_s.exp()
        alpha_s_1 = sigma_s_1 * lambda_s_1.exp()
        alpha_t = s[i + 1] * lambda_t.exp()
        sd, su = ancestral(lambda_s.neg().exp(), lambda_s_1.neg().exp())
        h_ = sd.log().neg() - lambda_s
        x_2 = (alpha_s_1 / alpha_s) * (-h_).exp() * x - alpha_s_1 * (-h_).expm1() * denoised
        x_2 = x_2 + alpha_s_1 * noise(s[i], sigma_s_1) * su
        denoised_2 = model(x_2, sigma_s_1)[0]
        sd, su = ancestral(lambda_s.neg().exp(), lambda_t.neg().exp())
        h_ = sd.log().neg() - lambda_s
        x = (alpha_t / alpha_s) * (-h_).exp() * x - alpha_t * (-h_).expm1() * denoised_2
        x = x + alpha_t * noise(s[i], s[i + 1]) * su
    return x


def ref_dpmpp_multistep_sde(model, x, s, ms, noise, order, heun=False):
    s = offset_first_sigma(s, ms)
    denoised_1 = denoised_2 = h = h_1 = h_2 = None
    for i in range(len(s) - 1):
        denoised = model(x, s[i])[0]
        if s[i + 1] == 0:
            x = denoised
        else:
            lambda_s, lambda_t = half_log_snr(s[i]), half_log_snr(s[i + 1])
            h = lambda_t - lambda_s
            h_eta = 2 * h
            alpha_t = s[i + 1] * lambda_t.exp()
            x = s[i + 1] / s[i] * (-h).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised
            phi_2 = h_eta.neg().expm1() / h_eta + 1
            if order == 3 and h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + (alpha_t * phi_2) * d1 - (alpha_t * (phi_2 / h_eta - 0.5)) * d2
            elif order == 3 and h_1 is not None:
                x = x + (alpha_t * phi_2) * ((denoised - denoised_1) / (h_1 / h))
            elif order == 2 and denoised_1 is not None:
                r = h_1 / h
                weight = (-h_eta).expm1().neg()
                scale = (weight / (-h_eta) + 1) if heun else 0.5 * weight
                x = x + alpha_t * scale * (1 / r) * (denoised - denoised_1)
            x = x + noise(s[i], s[i + 1]) * s[i + 1] * (-2 * h).expm1().neg().sqrt()
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


def ref_exp_heun_2_x0(model, x, s, ms, noise, eta=0.0):
    s = offset_first_sigma(s, ms)
    for i in range(len(s) - 1):
        denoised = model(x, s[i])[0]
        if s[i + 1] == 0:
            x = denoised
            continue
        lambda_s, lambda_t = half_log_snr(s[i]), half_log_snr(s[i + 1])
        h = lambda_t - lambda_s
        h_eta = h * (eta + 1)
        sigma_s_1 = sigma_of(lambda_t)
        alpha_s_1 = sigma_s_1 * lambda_t.exp()
        alpha_t = s[i + 1] * lambda_t.exp()
        x_2 = sigma_s_1 / s[i] * (-h * eta).exp() * x - alpha_s_1 * torch.expm1(-h_eta) * denoised
        if eta > 0:
            sde_noise = (-2 * h * eta).expm1().neg().sqrt() * noise(s[i], sigma_s_1)
            x_2 = x_2 + sde_noise * sigma_s_1
        denoised_2 = model(x_2, sigma_s_1)[0]
        b2 = (torch.expm1(-h_eta) + h_eta) / (-h_eta)
        b1 = torch.expm1(-h_eta) - b2
        x = s[i + 1] / s[i] * (-h * eta).exp() * x - alpha_t * (b1 * denoised + b2 * denoised_2)
        if eta > 0:
            noise(sigma_s_1, s[i + 1])  # drawn with weight 0
            x = x + sde_noise * s[i + 1]
    return x


def ref_lcm(model, x, s, ms, noise):
    for i in range(len(s) - 1):
        x = model(x, s[i])[0]
        if s[i + 1] > 0:
            x = s[i + 1] * noise(s[i], s[i + 1]) + (1 - s[i + 1]) * x  # CONST noise_scaling
    return x


FLOW_CASES = {
    # engine sampler: (reference, noise kind "none" | "default" | "brownian", cfg or None)
    "euler": (ref_euler, "none", None),
    "euler_ancestral": (ref_euler_ancestral_rf, "default", None),
    "dpm_2_ancestral": (ref_dpm_2_ancestral_rf, "default", None),
    "dpmpp_2s_ancestral": (ref_dpmpp_2s_ancestral_rf, "default", None),
    "dpmpp_2s_ancestral_cfg_pp": (lambda *a: ref_dpmpp_2s_ancestral_rf(*a, cfg_pp=True),
                                  "default", 3.5),
    "euler_cfg_pp": (lambda *a: ref_euler_ancestral_cfg_pp(*a, eta=0.0), "none", 3.5),
    "euler_ancestral_cfg_pp": (ref_euler_ancestral_cfg_pp, "default", 3.5),
    "dpmpp_sde": (ref_dpmpp_sde, "brownian", None),
    "dpmpp_2m_sde": (lambda *a: ref_dpmpp_multistep_sde(*a, order=2), "brownian", None),
    "dpmpp_2m_sde_heun": (lambda *a: ref_dpmpp_multistep_sde(*a, order=2, heun=True), "brownian",
                          None),
    "dpmpp_3m_sde": (lambda *a: ref_dpmpp_multistep_sde(*a, order=3), "brownian", None),
    "exp_heun_2_x0": (ref_exp_heun_2_x0, "none", None),
    "exp_heun_2_x0_sde": (lambda *a: ref_exp_heun_2_x0(*a, eta=1.0), "default", None),
    "lcm": (ref_lcm, "default", None),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchsde: a query rounded past the tree's end
@pytest.mark.parametrize("kind,shift,multiplier,scheduler,steps,start",
                         [("discrete_flow", 3.0, 1.0, "simple", 8, 0),    # from sigma 1
                          ("discrete_flow", 3.0, 1000.0, "beta", 5, 0),
                          ("flux_flow", 1.15, 1.0, "normal", 7, 2)])     # from below 1
@pytest.mark.parametrize("sampler", list(FLOW_CASES))
def test_flow_sampler_matches_comfyui(probe, sampler, kind, shift, multiplier, scheduler, steps,
                                      start):
    reference, noise_kind, cfg = FLOW_CASES[sampler]
    ms = model_sampling(kind, shift, multiplier)
    sigma_list = [float(v) for v in torch.tensor(comfy_scheduler(ms, scheduler, steps))][start:]
    sigmas = torch.tensor(sigma_list, dtype=torch.float32)
    seed = 2468
    x = torch.randn([1, 4, 8, 8], generator=torch.Generator().manual_seed(5))
    noise = {"none": None, "default": lambda: default_noise(x, seed),
             "brownian": lambda: brownian_noise(x, sigma_list, seed)}[noise_kind]
    expected = reference(flow_model(ms, cfg), x, sigmas, ms, noise() if noise else None)
    args = dict(probe_args(kind, shift, multiplier), sampler=sampler, sigmas=sigma_list,
                noise_seed=seed)
    if cfg is not None:
        args["cfg"] = cfg
    out, _ = probe("flow_sample", args, {"x": x})
    diff = max_abs_diff(out["out"], expected)
    print(f"{sampler}/{kind}/{scheduler}: max abs diff {diff:.3g}")
    assert torch.isfinite(out["out"]).all()
    assert diff <= TOLERANCE * max(1.0, expected.abs().max().item())
