"""Whole-pipeline parity of Z-Image: the tiny model `dreamforge model create-tiny --family zimage
--kind split` writes, run through the engine's KSampler path (the frontend's default graph:
UNETLoader, CLIPLoader lumina2, ModelSamplingAuraFlow, EmptySD3LatentImage, KSampler cfg 1,
VAEDecode; see probe_flow_sampling.cpp) against diffusers' ZImagePipeline built from the same
files: ZImageTransformer2DModel (ComfyUI names mapped back to diffusers' here), transformers'
Qwen3Model and the tokenizer beside the text encoder, and AutoencoderKL (the original VAE names
converted by diffusers' own single-file converter), fp32 on the CPU.

Where the conventions meet: ComfyUI's initial latent is model_sampling.noise_scaling(sigma_0,
noise, empty latent) = noise at sigma_0 = 1 (diffusers starts from the noise itself); the same
seeded noise (ComfyUI's prepare_noise: torch.manual_seed(seed), one randn) is handed to
diffusers as `latents`. ComfyUI's sigmas (the simple scheduler on ModelSamplingAuraFlow's
shift) go to FlowMatchEulerDiscreteScheduler as custom sigmas with its own shift set to 1, so
they are used as given. diffusers calls the transformer at t = (1000 - 1000 sigma) / 1000 and
negates its output into the velocity noise - x0 that its Euler step follows; ComfyUI's CONST
prediction reads the same velocity v as denoised = x - v sigma, so its Euler step
x + (x - denoised) / sigma * dt is diffusers' x + v dt. Both then decode latent / 0.3611 + 0.1159."""
import re

import pytest
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline
from diffusers import ZImageTransformer2DModel
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors.torch import load_file
from transformers import AutoTokenizer, Qwen3Config, Qwen3Model

from parity_support import max_abs_diff, write_tiny_split_files
from test_flow_sampling_parity import DiscreteFlow, comfy_scheduler

LATENT_TOLERANCE = 1e-4   # relative to the latents' magnitude
IMAGE_TOLERANCE = 2 / 255
PROMPT = "a campfire in the wilderness at night, a milky way sky"
SHIFT = 3.0
WIDTH, HEIGHT = 64, 48


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return write_tiny_split_files(tmp_path_factory.mktemp("zimage_data"), "zimage")


def diffusers_transformer_names(comfy):
    """ComfyUI / original Z-Image names -> diffusers' (the fused qkv split into q, k, v)."""
    out = {}
    for key, tensor in comfy.items():
        key = key.removeprefix("model.diffusion_model.")
        if m := re.fullmatch(r"(.+\.attention)\.qkv\.weight", key):
            q, k, v = tensor.chunk(3)
            out.update({f"{m[1]}.to_q.weight": q, f"{m[1]}.to_k.weight": k,
                        f"{m[1]}.to_v.weight": v})
            continue
        key = re.sub(r"^x_embedder\.", "all_x_embedder.2-1.", key)
        key = re.sub(r"^final_layer\.", "all_final_layer.2-1.", key)
        key = key.replace(".attention.out.", ".attention.to_out.0.")
        key = key.replace(".attention.q_norm.", ".attention.norm_q.")
        key = key.replace(".attention.k_norm.", ".attention.norm_k.")
        out[key] = tensor
    return out


def build_transformer(path, cap_feat_dim):
    # The engine's tiny Z-Image config (zimage_config.cpp tiny_zimage_config).
    model = ZImageTransformer2DModel(
        all_patch_size=[2], all_f_patch_size=[1], in_channels=16, dim=32, n_layers=2,
        n_refiner_layers=1, n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True,
        cap_feat_dim=cap_feat_dim, rope_theta=256.0, t_scale=1000.0, axes_dims=[4, 6, 6],
        axes_lens=[1536, 512, 512])
    model.load_state_dict(diffusers_transformer_names(load_file(path)), strict=True)
    return model.eval()


def build_text_encoder(path):
    weights = {k.removeprefix("model."): v for k, v in load_file(path).items()}
    vocab_size, hidden = weights["embed_tokens.weight"].shape
    # The engine's tiny Qwen3 config (qwen3_config.cpp tiny_qwen3_config).
    config = Qwen3Config(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=64,
                         num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, rms_norm_eps=1e-6, rope_theta=1000000.0,
                         max_position_embeddings=40960, attn_implementation="eager")
    model = Qwen3Model(config)
    model.load_state_dict(weights, strict=True)
    return model.eval()


def build_vae(path):
    # The engine's tiny flow VAE (flow_vae.cpp tiny_flow_vae_config, Z-Image's scale and shift).
    config = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                  up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[32, 32, 64, 64],
                  layers_per_block=1, latent_channels=16, norm_num_groups=32, sample_size=64,
                  scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                  use_post_quant_conv=False)
    vae = AutoencoderKL(**config)
    vae.load_state_dict(convert_ldm_vae_checkpoint(load_file(path), vae.config), strict=True)
    return vae.eval()


@pytest.fixture(scope="module")
def pipeline(models_dir):
    text_file = models_dir / "text_encoders" / "qwen_3_4b.safetensors"
    text_encoder = build_text_encoder(text_file)
    return ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0),
        vae=build_vae(models_dir / "vae" / "ae.safetensors"),
        text_encoder=text_encoder,
        tokenizer=AutoTokenizer.from_pretrained(str(models_dir / "text_encoders" /
                                                    "qwen_3_4b.tokenizer")),
        transformer=build_transformer(
            models_dir / "diffusion_models" / "z_image_turbo_bf16.safetensors",
            text_encoder.config.hidden_size))


def comfy_noise(seed, shape):
    """ComfyUI's prepare_noise for one latent: a CPU generator seeded with seed, one randn."""
    return torch.randn(shape, generator=torch.manual_seed(seed), dtype=torch.float32)


def comfy_sigmas(steps):
    return [float(s) for s in torch.tensor(comfy_scheduler(DiscreteFlow(SHIFT, 1.0), "simple",
                                                           steps))]


def engine_run(probe, models_dir, seed, steps, extra=None, inputs=None):
    args = {"models_dir": str(models_dir), "prompt": PROMPT, "seed": seed, "steps": steps,
            "shift": SHIFT, "sampler": "euler", "scheduler": "simple", "width": WIDTH,
            "height": HEIGHT, **(extra or {})}
    out, _ = probe("zimage_pipeline", args, inputs)
    return out


def latent_shape():
    return [1, 16, HEIGHT // 8, WIDTH // 8]


@pytest.mark.parametrize("steps", [1, 4])
def test_zimage_pipeline_matches_diffusers(probe, models_dir, pipeline, steps):
    seed = 123
    sigmas = comfy_sigmas(steps)
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0
    noise = comfy_noise(seed, latent_shape())
    with torch.no_grad():
        latents = pipeline(prompt=PROMPT, height=HEIGHT, width=WIDTH, num_inference_steps=steps,
                           sigmas=sigmas[:-1], guidance_scale=0.0, latents=noise.clone(),
                           output_type="latent").images
        vae_latents = latents / 0.3611 + 0.1159
        image = pipeline.vae.decode(vae_latents).sample
        image = (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)

    out = engine_run(probe, models_dir, seed, steps)
    scale = max(1.0, vae_latents.abs().max().item())
    latent_diff = max_abs_diff(out["latent"], vae_latents)
    image_diff = max_abs_diff(out["image"], image)
    print(f"steps {steps}: latent diff {latent_diff:.3g} (scale {scale:.3g}), "
          f"image diff {image_diff:.3g}")
    assert latent_diff <= LATENT_TOLERANCE * scale
    assert image_diff <= IMAGE_TOLERANCE


def diffusers_velocity(pipeline, x, sigma, prompt_embeds):
    """The velocity ZImagePipeline steps along: the transformer at t = 1 - sigma, negated."""
    t = torch.full([x.shape[0]], (1000 - 1000 * sigma) / 1000, dtype=torch.float32)
    out = pipeline.transformer(list(x.unsqueeze(2)), t, prompt_embeds, return_dict=False)[0]
    return -torch.stack([o.float() for o in out]).squeeze(2)


def test_set_latent_noise_mask_keeps_the_latent_as_ksampler_inpaint(probe, models_dir, pipeline):
    """SetLatentNoiseMask on the Z-Image graph: ComfyUI's KSamplerX0Inpaint around Euler steps on
    the diffusers transformer, the kept cells noised by CONST's noise_scaling
    sigma * noise + (1 - sigma) * latent."""
    seed, steps = 9, 3
    sigmas = comfy_sigmas(steps)
    source = torch.randn(latent_shape(), generator=torch.Generator().manual_seed(3))
    h, w = latent_shape()[2:]
    mask = torch.ones([1, 1, h, w])
    mask[..., : w // 2] = 0
    noise = comfy_noise(seed, latent_shape())
    latent = (source - 0.1159) * 0.3611  # process_in
    with torch.no_grad():
        embeds = pipeline.encode_prompt(PROMPT, do_classifier_free_guidance=False,
                                        device="cpu")[0]
        x = sigmas[0] * noise + (1 - sigmas[0]) * latent
        for sigma, next_sigma in zip(sigmas[:-1], sigmas[1:]):
            x_in = x * mask + (sigma * noise + (1 - sigma) * latent) * (1 - mask)
            denoised = x_in - diffusers_velocity(pipeline, x_in, sigma, embeds) * sigma
            denoised = denoised * mask + latent * (1 - mask)
            x = x + (x - denoised) / sigma * (next_sigma - sigma)
        expected = x / 0.3611 + 0.1159
    out = engine_run(probe, models_dir, seed, steps, {"mask": True}, {"latent": source})
    scale = max(1.0, expected.abs().max().item())
    diff = max_abs_diff(out["latent"], expected)
    print(f"masked: latent diff {diff:.3g} (scale {scale:.3g})")
    assert diff <= LATENT_TOLERANCE * scale
    assert max_abs_diff(out["latent"][..., : w // 2], source[..., : w // 2]) <= 1e-5 * scale
