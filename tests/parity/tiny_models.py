"""Tiny random-weight SD 1.x, SD 2.x (v-prediction) and SDXL pipelines built with diffusers, saved in
diffusers layout, for the parity suite (configs after diffusers' own test suite, real CLIP vocab)."""
import json
import pathlib

import torch
from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from parity_support import write_clip_tokenizer

FAMILIES = ("sd1", "sd2", "sdxl")


def _text_config(hidden_act):
    return CLIPTextConfig(bos_token_id=49406, eos_token_id=49407, pad_token_id=1, hidden_size=32,
                          intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
                          num_hidden_layers=5, vocab_size=49408, hidden_act=hidden_act,
                          projection_dim=32)


def _scheduler(prediction):
    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  steps_offset=1, timestep_spacing="leading",
                                  prediction_type=prediction)


def _vae(groups):
    torch.manual_seed(0)
    # Four blocks, like the real VAEs, so latents are 1/8 of the image size as ComfyUI assumes.
    return AutoencoderKL(block_out_channels=[32, 32, 64, 64], in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D"] * 4,
                         up_block_types=["UpDecoderBlock2D"] * 4, latent_channels=4,
                         norm_num_groups=groups, layers_per_block=1)


def build_sd1(tokenizer_dir):
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                in_channels=4, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)
    vae = _vae(32)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_text_config("quick_gelu"))
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder,
                                   tokenizer=tokenizer, scheduler=_scheduler("epsilon"),
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def build_sd2(tokenizer_dir):
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                in_channels=4, out_channels=4,
                                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=32, attention_head_dim=(2, 4),
                                use_linear_projection=True, norm_num_groups=32)
    vae = _vae(32)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_text_config("gelu"))
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder,
                                   tokenizer=tokenizer, scheduler=_scheduler("v_prediction"),
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def build_sdxl(tokenizer_dir, tokenizer_2_dir):
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                in_channels=4, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                attention_head_dim=(2, 4), use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=80,
                                cross_attention_dim=64, norm_num_groups=32)
    vae = _vae(32)
    vae.register_to_config(scaling_factor=0.13025)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_text_config("quick_gelu"))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config("gelu"))
    return StableDiffusionXLPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=CLIPTokenizer.from_pretrained(str(tokenizer_dir)),
        tokenizer_2=CLIPTokenizer.from_pretrained(str(tokenizer_2_dir)),
        scheduler=_scheduler("epsilon"), add_watermarker=False)


def build(family, directory):
    """Builds the tiny pipeline of `family`, saves it under `directory`, returns the pipeline."""
    directory = pathlib.Path(directory)
    tok = write_clip_tokenizer(directory / "_tok")
    if family == "sd1":
        pipe = build_sd1(tok)
    elif family == "sd2":
        pipe = build_sd2(write_clip_tokenizer(directory / "_tok2", pad_token="!"))
    elif family == "sdxl":
        pipe = build_sdxl(tok, write_clip_tokenizer(directory / "_tok2", pad_token="!"))
    else:
        raise ValueError(family)
    pipe.save_pretrained(str(directory / family), safe_serialization=True)
    return pipe, directory / family


def prediction_of(family):
    return "v_prediction" if family == "sd2" else "epsilon"


def configs(path):
    path = pathlib.Path(path)
    return {name: json.loads((path / name / "config.json").read_text())
            for name in ("unet", "vae", "text_encoder") if (path / name).exists()}
