"""Whole-pipeline parity of SD3.5 on the tiny model `dreamforge model create-tiny --family sd3
--kind split` writes (MMDiT with SD3.5's qk norm and SD3.5 Medium's second attention, CLIP-L,
CLIP-G, a 4096-wide T5 with tokenizers beside them, 16-channel VAE), fp32 on the CPU.

The text side is compared on its own: the engine's conditioning (probe sd3_encode, as
TripleCLIPLoader + CLIPTextEncode / CLIPTextEncodeSD3 give it) against transformers' CLIPTextModel,
CLIPTextModelWithProjection and T5EncoderModel on the same files, combined by a re-implementation
of ComfyUI's SD3ClipModel here: CLIP-L and CLIP-G penultimate hidden states side by side, zero
padded to 4096, followed by T5's states along the sequence; pooled = CLIP-L's pooler output (its
projection unused, as ComfyUI's return_projected_pooled=False) + CLIP-G's text_embeds. ComfyUI
and diffusers differ here on purpose (diffusers pads T5 to 256 tokens where ComfyUI pads to 77,
and pools CLIP-L through its projection), so the pipeline comparison hands diffusers the
conditioning the engine computed (prompt_embeds, pooled_prompt_embeds and their negatives).

The sampling: the engine runs the split-file KSampler graph (ModelSamplingSD3 shift 3, euler,
simple scheduler, cfg 4; probe sd3_pipeline) and diffusers' StableDiffusion3Pipeline runs
SD3Transformer2DModel (the same weights written as a diffusers folder by the engine's writer) and
AutoencoderKL (the original VAE names converted by diffusers' own single-file converter) from the
same initial latents (ComfyUI's seeded noise; sigma_0 = 1 makes noise_scaling the noise itself)
and the same sigmas (FlowMatchEulerDiscreteScheduler given ComfyUI's sigmas, its own shift 1).
diffusers guides the velocity, ComfyUI the denoised estimate x - v sigma: both are linear, so the
steps agree. Both decode latent / 1.5305 + 0.0609."""
import json

import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from diffusers import StableDiffusion3Pipeline
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
from transformers import CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

from parity_support import max_abs_diff, write_tiny_split_files
from test_flow_sampling_parity import DiscreteFlow, comfy_scheduler

LATENT_TOLERANCE = 1e-4   # relative to the latents' magnitude
IMAGE_TOLERANCE = 2 / 255
TEXT_TOLERANCE = 1e-4     # relative to the states' magnitude
PROMPT = "a glass bottle on a beach at sunset"
NEGATIVE = "blurry"
SHIFT = 3.0
CFG = 4.0
WIDTH, HEIGHT = 64, 48
SCALE, SHIFT_FACTOR = 1.5305, 0.0609


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return write_tiny_split_files(tmp_path_factory.mktemp("sd3_data"), "sd3")


# ---- ComfyUI's SD3 text side, on transformers' encoders ----

def clip_model(path):
    with safe_open(str(path), "pt") as file:
        config = json.loads(file.metadata()["dreamforge.text_encoder_config"])
    projected = config.get("architectures") == ["CLIPTextModelWithProjection"]
    model_class = CLIPTextModelWithProjection if projected else CLIPTextModel
    model = model_class(CLIPTextConfig(**config))
    own = set(model.state_dict())  # transformers 5's CLIPTextModel has no "text_model." level
    weights = {k if k in own else k.removeprefix("text_model."): v
               for k, v in load_file(str(path)).items()}
    model.load_state_dict(weights, strict=True)
    return model.eval(), projected


def clip_part(models_dir, name, prompt):
    """(penultimate states [1, 77, C], pooled [1, P]) of one CLIP on one 77-token chunk."""
    path = models_dir / "text_encoders" / f"{name}.safetensors"
    tokenizer = CLIPTokenizer.from_pretrained(str(path.with_suffix(".tokenizer")))
    ids = tokenizer(prompt, padding="max_length", max_length=77, return_tensors="pt").input_ids
    model, projected = clip_model(path)
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    return out.hidden_states[-2], out.text_embeds if projected else out.pooler_output


def t5_model(path):
    weights = load_file(str(path))
    vocab, d_model = weights["shared.weight"].shape
    heads = weights["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape
    inner = weights["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
    layers = len({k.split(".")[2] for k in weights if k.startswith("encoder.block.")})
    config = T5Config(vocab_size=vocab, d_model=d_model, d_kv=inner // heads[1],
                      num_heads=heads[1], relative_attention_num_buckets=heads[0],
                      d_ff=weights["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0],
                      num_layers=layers, feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6)
    model = T5EncoderModel(config)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert set(missing) <= {"encoder.embed_tokens.weight"} and not unexpected
    return model.eval()


def t5_part(models_dir, prompt):
    """T5's states for ComfyUI's SD3 tokens: the prompt, EOS, padding up to 77 (none for None:
    then EOS alone)."""
    path = models_dir / "text_encoders" / "t5xxl_fp16.safetensors"
    tokenizer = T5Tokenizer.from_pretrained(str(path.with_suffix(".tokenizer")))
    ids = [tokenizer.eos_token_id] if prompt is None else tokenizer(prompt).input_ids
    if prompt is not None:
        ids += [tokenizer.pad_token_id] * (77 - len(ids))
    with torch.no_grad():
        return t5_model(path)(torch.tensor([ids])).last_hidden_state


def comfy_sd3_conditioning(models_dir, clip_l, clip_g, t5xxl):
    """ComfyUI's SD3ClipModel on one-chunk prompts (CLIP-G's with no tokens of its own padded by
    an empty chunk, as CLIPTextEncodeSD3 pads it to CLIP-L's chunks)."""
    l_states, l_pooled = clip_part(models_dir, "clip_l", clip_l)
    g_states, g_pooled = clip_part(models_dir, "clip_g", clip_g or "")
    lg = torch.cat([l_states, g_states], dim=-1)
    lg = F.pad(lg, (0, 4096 - lg.shape[-1]))
    context = torch.cat([lg, t5_part(models_dir, t5xxl)], dim=-2)
    return context, torch.cat([l_pooled, g_pooled], dim=-1)


def assert_close(actual, expected, tolerance):
    scale = max(1.0, expected.abs().max().item())
    diff = max_abs_diff(actual, expected)
    print(f"diff {diff:.3g} (scale {scale:.3g})")
    assert actual.shape == expected.shape
    assert diff <= tolerance * scale


def test_text_side_matches_comfyui_on_transformers(probe, models_dir):
    out, _ = probe("sd3_encode", {"models_dir": str(models_dir), "prompt": PROMPT})
    context, pooled = comfy_sd3_conditioning(models_dir, PROMPT, PROMPT, PROMPT)
    assert_close(out["context"], context, TEXT_TOLERANCE)
    assert_close(out["pooled"], pooled, TEXT_TOLERANCE)


def test_clip_text_encode_sd3_without_padding(probe, models_dir):
    """CLIPTextEncodeSD3 with empty_padding "none": an empty CLIP-G text still gets CLIP-L's
    chunk count of empty chunks; an empty T5 text gives T5 a lone end token."""
    node = {"clip_l": PROMPT, "clip_g": "", "t5xxl": "", "empty_padding": "none"}
    out, _ = probe("sd3_encode", {"models_dir": str(models_dir), "sd3_node": node})
    context, pooled = comfy_sd3_conditioning(models_dir, PROMPT, None, None)
    assert out["context"].shape[1] == 77 + 1
    assert_close(out["context"], context, TEXT_TOLERANCE)
    assert_close(out["pooled"], pooled, TEXT_TOLERANCE)


def test_missing_encoders_leave_comfyuis_zeros(probe, models_dir):
    """DualCLIPLoader type sd3 with CLIP-G and T5: CLIP-L's 768 context columns and pooled
    entries are zeros."""
    out, _ = probe("sd3_encode", {"models_dir": str(models_dir), "prompt": PROMPT,
                                  "files": ["t5xxl_fp16.safetensors", "clip_g.safetensors"]})
    g_states, g_pooled = clip_part(models_dir, "clip_g", PROMPT)
    lg = F.pad(g_states, (768, 4096 - 768 - g_states.shape[-1]))
    context = torch.cat([lg, t5_part(models_dir, PROMPT)], dim=-2)
    assert_close(out["context"], context, TEXT_TOLERANCE)
    assert_close(out["pooled"], torch.cat([torch.zeros(1, 768), g_pooled], dim=-1),
                 TEXT_TOLERANCE)


def test_t5_alone_gives_its_states_and_a_zero_pooled_vector(probe, models_dir):
    """CLIPLoader type sd3 with T5-XXL: its states are the context; pooled is 768 + 1280 zeros."""
    out, _ = probe("sd3_encode", {"models_dir": str(models_dir), "prompt": PROMPT,
                                  "files": ["t5xxl_fp16.safetensors"]})
    assert_close(out["context"], t5_part(models_dir, PROMPT), TEXT_TOLERANCE)
    assert torch.equal(out["pooled"], torch.zeros(1, 768 + 1280))


# ---- the whole pipeline ----

def build_vae(path):
    # The engine's tiny flow VAE (flow_vae.cpp tiny_flow_vae_config, SD3's scale and shift).
    config = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                  up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[32, 32, 64, 64],
                  layers_per_block=1, latent_channels=16, norm_num_groups=32, sample_size=64,
                  scaling_factor=SCALE, shift_factor=SHIFT_FACTOR, use_quant_conv=False,
                  use_post_quant_conv=False)
    vae = AutoencoderKL(**config)
    vae.load_state_dict(convert_ldm_vae_checkpoint(load_file(str(path)), vae.config), strict=True)
    return vae.eval()


@pytest.fixture(scope="module")
def pipeline(models_dir, tmp_path_factory):
    from parity_support import run_probe
    work = tmp_path_factory.mktemp("sd3_transformer")
    run_probe("sd3_tiny_diffusers_transformer", work, {"dir": str(work / "transformer"),
                                                       "seed": 0})
    transformer = SD3Transformer2DModel.from_pretrained(str(work / "transformer")).eval()
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0),
        vae=build_vae(models_dir / "vae" / "sd3_vae.safetensors"),
        text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None,
        text_encoder_3=None, tokenizer_3=None)


def comfy_noise(seed, shape):
    """ComfyUI's prepare_noise for one latent: a CPU generator seeded with seed, one randn."""
    return torch.randn(shape, generator=torch.manual_seed(seed), dtype=torch.float32)


def comfy_sigmas(steps):
    return [float(s) for s in torch.tensor(comfy_scheduler(DiscreteFlow(SHIFT, 1000.0), "simple",
                                                           steps))]


@pytest.mark.parametrize("steps", [1, 4])
def test_sd3_pipeline_matches_diffusers(probe, models_dir, pipeline, steps):
    seed = 123
    sigmas = comfy_sigmas(steps)
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0
    out, _ = probe("sd3_pipeline", {
        "models_dir": str(models_dir), "prompt": PROMPT, "negative": NEGATIVE, "seed": seed,
        "steps": steps, "cfg": CFG, "shift": SHIFT, "sampler": "euler", "scheduler": "simple",
        "width": WIDTH, "height": HEIGHT})
    noise = comfy_noise(seed, [1, 16, HEIGHT // 8, WIDTH // 8])
    with torch.no_grad():
        latents = pipeline(
            prompt_embeds=out["context"], pooled_prompt_embeds=out["pooled"],
            negative_prompt_embeds=out["negative_context"],
            negative_pooled_prompt_embeds=out["negative_pooled"], height=HEIGHT, width=WIDTH,
            num_inference_steps=steps, sigmas=sigmas[:-1], guidance_scale=CFG,
            latents=noise.clone(), output_type="latent").images
        vae_latents = latents / SCALE + SHIFT_FACTOR
        image = pipeline.vae.decode(vae_latents).sample
        image = (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)

    scale = max(1.0, vae_latents.abs().max().item())
    latent_diff = max_abs_diff(out["latent"], vae_latents)
    image_diff = max_abs_diff(out["image"], image)
    print(f"steps {steps}: latent diff {latent_diff:.3g} (scale {scale:.3g}), "
          f"image diff {image_diff:.3g}")
    assert latent_diff <= LATENT_TOLERANCE * scale
    assert image_diff <= IMAGE_TOLERANCE
