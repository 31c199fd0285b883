"""Whole-pipeline parity of FLUX.1 dev and schnell: the tiny model `dreamforge model create-tiny
--family flux|flux-schnell --kind split` writes, run through the engine (DualCLIPLoader type flux,
UNETLoader, ModelSamplingFlux's shift, KSampler euler/simple/cfg 1, VAEDecode; see
probe_flux_pipeline.cpp), against diffusers' FluxPipeline built from the same files, fp32 on the
CPU: FluxTransformer2DModel (the BFL file written as a diffusers folder by the engine's writer,
whose names test_flux_transformer_parity checks) and AutoencoderKL (the original VAE names
converted by diffusers' single-file converter).

Where ComfyUI and diffusers differ on purpose, this follows ComfyUI and hands diffusers the same
inputs, so the comparison covers transformer + sampling + VAE:
  - the text side: ComfyUI pads T5's tokens to 256 (diffusers to max_sequence_length 512 with an
    attention-free tokenizer call), weights tokens, and takes CLIP-L's pooler output from its own
    77-token chunk. The engine's context and pooled vector are handed to FluxPipeline as
    prompt_embeds / pooled_prompt_embeds; they are checked separately against transformers'
    T5EncoderModel and CLIPTextModel on the same files with ComfyUI's tokens and weighting formula
    re-implemented here (test_t5_parity's comfy_t5_tokens / comfy_encode_weighted).
  - the sigmas: ComfyUI's simple scheduler on ModelSamplingFlux's shift (flux_time_shift with
    mu = the shift) go to FlowMatchEulerDiscreteScheduler as custom sigmas with its own shift 1
    and no dynamic shifting, so they are used as given (FluxPipeline computes its own mu, unused).
  - the initial latent: ComfyUI's is noise_scaling(sigma_0 = 1, noise) = the seeded noise
    (torch.manual_seed(seed), one randn), handed to diffusers packed as `latents`.
Both transformers read t = sigma (and dev's guidance) and step x + v dt along the velocity; both
decode latent / 0.3611 + 0.1159."""
import json

import pytest
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline
from diffusers import FluxTransformer2DModel
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel,
                          T5TokenizerFast)

from parity_support import max_abs_diff, write_tiny_split_files
from test_flow_sampling_parity import FluxFlow, comfy_scheduler
from test_t5_parity import comfy_encode_weighted, comfy_t5_tokens

LATENT_TOLERANCE = 1e-4  # relative to the latents' magnitude
TEXT_TOLERANCE = 1e-4    # relative to the states' magnitude
IMAGE_TOLERANCE = 2 / 255
PROMPT = "a red fox in the snow at (sunrise:1.2), photo"
WIDTH, HEIGHT = 64, 48
GUIDANCE = 3.5
FLUX_T5_MIN_LENGTH = 256


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("flux_data")
    write_tiny_split_files(data_dir, "flux-schnell")
    return write_tiny_split_files(data_dir, "flux")


def build_transformer(probe, path, folder):
    """The BFL-named file as diffusers' FluxTransformer2DModel (folder written by the engine's
    diffusers writer; diffusers' own single-file converter assumes FLUX.1's real widths)."""
    probe("flux_diffusers_folder", {"bfl": str(path), "out": str(folder)})
    return FluxTransformer2DModel.from_pretrained(str(folder)).eval()


def build_vae(path):
    # The engine's tiny flow VAE (flow_vae.cpp tiny_flow_vae_config, FLUX.1's scale and shift).
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[32, 32, 64, 64],
                        layers_per_block=1, latent_channels=16, norm_num_groups=32, sample_size=64,
                        scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                        use_post_quant_conv=False)
    vae.load_state_dict(convert_ldm_vae_checkpoint(load_file(path), vae.config), strict=True)
    return vae.eval()


def pipeline(probe, models_dir, dev, work_dir):
    unet = "flux1-dev.safetensors" if dev else "flux1-schnell.safetensors"
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0,
                                                  use_dynamic_shifting=False),
        vae=build_vae(models_dir / "vae" / "ae.safetensors"),
        text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None,
        transformer=build_transformer(probe, models_dir / "diffusion_models" / unet,
                                      work_dir / "transformer"))


def flux_shift(width, height, max_shift=1.15, base_shift=0.5):
    """ModelSamplingFlux's shift for an image of width x height pixels."""
    slope = (max_shift - base_shift) / (4096 - 256)
    return width * height / (8 * 8 * 2 * 2) * slope + (base_shift - slope * 256)


def comfy_sigmas(shift, steps):
    return [float(s) for s in torch.tensor(comfy_scheduler(FluxFlow(shift), "simple", steps))]


def comfy_noise(seed, shape):
    """ComfyUI's prepare_noise for one latent: a CPU generator seeded with seed, one randn."""
    return torch.randn(shape, generator=torch.manual_seed(seed), dtype=torch.float32)


def engine_run(probe, models_dir, dev, seed, steps, shift):
    args = {"models_dir": str(models_dir), "dev": dev, "clip_l": PROMPT, "t5xxl": PROMPT,
            "guidance": GUIDANCE, "seed": seed, "steps": steps, "shift": shift, "width": WIDTH,
            "height": HEIGHT}
    return probe("flux_pipeline", args)[0]


@pytest.mark.parametrize("dev", [True, False], ids=["dev", "schnell"])
@pytest.mark.parametrize("steps", [1, 4])
def test_flux_pipeline_matches_diffusers(probe, models_dir, dev, steps, tmp_path):
    seed = 123
    shift = flux_shift(WIDTH, HEIGHT)
    sigmas = comfy_sigmas(shift, steps)
    assert sigmas[0] == pytest.approx(1.0, abs=1e-6) and sigmas[-1] == 0.0
    out = engine_run(probe, models_dir, dev, seed, steps, shift)
    h, w = HEIGHT // 8, WIDTH // 8
    noise = comfy_noise(seed, [1, 16, h, w])
    pipe = pipeline(probe, models_dir, dev, tmp_path)
    with torch.no_grad():
        packed = pipe(prompt_embeds=out["context"], pooled_prompt_embeds=out["pooled"],
                      height=HEIGHT, width=WIDTH, num_inference_steps=steps, sigmas=sigmas[:-1],
                      guidance_scale=GUIDANCE, latents=FluxPipeline._pack_latents(noise, 1, 16, h, w),
                      output_type="latent").images
        latents = FluxPipeline._unpack_latents(packed, HEIGHT, WIDTH, pipe.vae_scale_factor)
        vae_latents = latents / 0.3611 + 0.1159
        image = (pipe.vae.decode(vae_latents).sample / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)

    scale = max(1.0, vae_latents.abs().max().item())
    latent_diff = max_abs_diff(out["latent"], vae_latents)
    image_diff = max_abs_diff(out["image"], image)
    print(f"{'dev' if dev else 'schnell'} steps {steps}: latent diff {latent_diff:.3g} "
          f"(scale {scale:.3g}), image diff {image_diff:.3g}")
    assert latent_diff <= LATENT_TOLERANCE * scale
    assert image_diff <= IMAGE_TOLERANCE


def reference_t5(path):
    weights = load_file(path)
    vocab_size, d_model = weights["shared.weight"].shape
    # The engine's tiny T5 (t5_config.cpp tiny_t5_config).
    config = T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=37, num_heads=4,
                      num_layers=2, relative_attention_num_buckets=32,
                      relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
                      dropout_rate=0.0, layer_norm_epsilon=1e-6)
    model = T5EncoderModel(config).eval()
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert missing == ["encoder.embed_tokens.weight"] and not unexpected  # tied to shared
    return model


def reference_clip_l(path):
    with safe_open(str(path), "pt") as f:
        config = CLIPTextConfig(**json.loads(f.metadata()["dreamforge.text_encoder_config"]))
    model = CLIPTextModel(config).eval()
    weights = load_file(path)
    if not any(key.startswith("text_model.") for key in model.state_dict()):
        weights = {k.removeprefix("text_model."): v for k, v in weights.items()}
    model.load_state_dict(weights, strict=True)
    return model


def comfy_clip_pooled(model, tokenizer, text):
    """ComfyUI's SDClipModel pooled output (return_projected_pooled=False) for a one-chunk prompt:
    BOS + tokens + EOS padded with EOS to 77, the final-normed state at the first EOS."""
    ids = tokenizer(text)["input_ids"]
    ids += [tokenizer.eos_token_id] * (77 - len(ids))
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).pooler_output


def assert_close(actual, expected, tolerance=TEXT_TOLERANCE):
    assert actual.shape == expected.shape
    scale = max(1.0, expected.abs().max().item())
    assert max_abs_diff(actual, expected) <= tolerance * scale


@pytest.mark.parametrize("files_order", ["t5_first", "clip_first"])
def test_text_side_follows_comfyui(probe, models_dir, files_order):
    """CLIPTextEncodeFlux's two texts: T5's weighted states padded to 256 as ComfyUI computes them
    and CLIP-L's pooler output, whichever order DualCLIPLoader names the files in."""
    text = models_dir / "text_encoders"
    t5_text, clip_text = PROMPT, "a blue whale"
    out, _ = probe("flux_text", {"models_dir": str(models_dir), "clip_l": clip_text,
                                 "t5xxl": t5_text, "files_order": files_order})

    t5_tokenizer = T5TokenizerFast.from_pretrained(str(text / "t5xxl_fp16.tokenizer"))
    tokens = comfy_t5_tokens(t5_tokenizer, t5_text, FLUX_T5_MIN_LENGTH)
    assert len(tokens) == FLUX_T5_MIN_LENGTH and any(w != 1.0 for _, w in tokens)
    expected_context = comfy_encode_weighted(
        reference_t5(text / "t5xxl_fp16.safetensors"), torch.tensor([t for t, _ in tokens]),
        torch.tensor([w for _, w in tokens]), use_mask=False)
    assert_close(out["context"], expected_context)

    clip_tokenizer = CLIPTokenizer.from_pretrained(str(text / "clip_l.tokenizer"))
    expected_pooled = comfy_clip_pooled(reference_clip_l(text / "clip_l.safetensors"),
                                        clip_tokenizer, clip_text)
    assert_close(out["pooled"], expected_pooled)


def test_pooled_ignores_token_weights_and_takes_the_first_chunk(probe, models_dir):
    """ComfyUI's pooled output is the first 77-token chunk's, computed before token weighting."""
    def pooled(clip_l):
        return probe("flux_text", {"models_dir": str(models_dir), "clip_l": clip_l,
                                   "t5xxl": "x"})[0]["pooled"]

    assert_close(pooled("a (red fox:1.5)"), pooled("a red fox"))
    long_prompt = "a " * 100  # one token per word: chunks of BOS + 75 tokens + EOS
    clip = reference_clip_l(models_dir / "text_encoders" / "clip_l.safetensors")
    tokenizer = CLIPTokenizer.from_pretrained(str(models_dir / "text_encoders" / "clip_l.tokenizer"))
    ids = tokenizer(long_prompt)["input_ids"]
    assert len(ids) == 102
    with torch.no_grad():
        expected = clip(input_ids=torch.tensor([ids[:76] + [tokenizer.eos_token_id]])).pooler_output
    assert_close(pooled(long_prompt), expected)
