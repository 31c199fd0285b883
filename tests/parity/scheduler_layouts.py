"""How a diffusers scheduler's run maps onto the engine's sigma walk: each layout returns
(sigmas, timesteps, diffusers_scale, engine_scale, output_scale): the engine starts from
x * diffusers_scale * engine_scale where diffusers starts from x * diffusers_scale, and the
engine's result times output_scale is diffusers' result."""
import math

import torch
from diffusers import (HeunDiscreteScheduler, KDPM2AncestralDiscreteScheduler,
                       KDPM2DiscreteScheduler)


def vp_sigma(scheduler, t):
    alpha_cumprod = scheduler.alphas_cumprod[int(t)]
    return float(((1 - alpha_cumprod) / alpha_cumprod) ** 0.5)


def karras_like(scheduler):
    """Euler/Heun/KDPM2 families: VE state, engine sigmas = the distinct scheduler sigmas, with the
    timestep the scheduler feeds at each of them."""
    sigmas = torch.unique_consecutive(scheduler.sigmas).tolist()
    ts = scheduler.timesteps.tolist()
    if isinstance(scheduler, HeunDiscreteScheduler):
        ts = ts[:1] + ts[1::2]
    elif isinstance(scheduler, (KDPM2DiscreteScheduler, KDPM2AncestralDiscreteScheduler)):
        ts = ts[0::2]
    noise_scale = float(scheduler.init_noise_sigma)
    return sigmas, ts, noise_scale, 1.0, 1.0


def dpm_solver(scheduler):
    """VP state; the engine starts from x_vp * sqrt(1 + sigma0^2) and ends at sigma 0."""
    sigmas = scheduler.sigmas.tolist()
    return sigmas, scheduler.timesteps.tolist(), 1.0, math.sqrt(1 + sigmas[0] ** 2), 1.0


def ddim(scheduler):
    """DDIM (eta 0) is Euler in VE space over DDIM's sigmas, ending at final_alpha_cumprod."""
    ts = scheduler.timesteps.tolist()
    final = float(scheduler.final_alpha_cumprod)
    sigmas = [vp_sigma(scheduler, t) for t in ts] + [math.sqrt((1 - final) / final)]
    return sigmas, ts, 1.0, math.sqrt(1 + sigmas[0] ** 2), 1 / math.sqrt(1 + sigmas[-1] ** 2)


def lcm(scheduler):
    ts = scheduler.timesteps.tolist()
    sigmas = [vp_sigma(scheduler, t) for t in ts] + [0.0]
    return sigmas, ts, 1.0, math.sqrt(1 + sigmas[0] ** 2), 1.0


def unipc(scheduler):
    """UniPC ending at sigma_min (the engine replaces a final 0 by 0.001, as ComfyUI does)."""
    sigmas = scheduler.sigmas.tolist()
    return (sigmas, scheduler.timesteps.tolist(), 1.0, math.sqrt(1 + sigmas[0] ** 2),
            1 / math.sqrt(1 + sigmas[-1] ** 2))
