"""Writes a random-weight checkpoint with Stable Diffusion 1.5's architecture as one original-LDM
safetensors file (float16), the format that both ComfyUI and Dream Forge load.

The components are built with diffusers and transformers from SD 1.5's published configuration
(UNet 860M, VAE 84M, CLIP ViT-L/14 text encoder 123M parameters), initialised at random with a
fixed seed, and their weights are renamed to the original LDM layout:
model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*.

Usage: .venv/bin/python bench/comfyui_make_checkpoint.py OUT.safetensors [--seed 0]
"""
import argparse
import pathlib
import re

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

UNET_CONFIG = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280), "cross_attention_dim": 768,
    "attention_head_dim": 8, "norm_num_groups": 32,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
}
VAE_CONFIG = {
    "sample_size": 512, "in_channels": 3, "out_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "block_out_channels": (128, 256, 512, 512), "norm_num_groups": 32,
    "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
}
TEXT_CONFIG = {
    "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
    "projection_dim": 768,
}
LAYERS_PER_BLOCK = 2
RESNET_NAMES = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
              "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
VAE_ATTENTION_NAMES = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v",
                       "to_out.0": "proj_out"}


def resnet_part(rest):
    """A diffusers ResNet parameter name ("conv1.weight") in LDM's ResBlock naming."""
    layer, _, parameter = rest.rpartition(".")
    return f"{RESNET_NAMES[layer]}.{parameter}"


def unet_key(name):
    """A diffusers UNet parameter name in LDM's naming (input/middle/output blocks)."""
    layer, _, parameter = name.rpartition(".")
    if layer in UNET_FIXED:
        return f"{UNET_FIXED[layer]}.{parameter}"
    if match := re.fullmatch(r"down_blocks\.(\d)\.(resnets|attentions)\.(\d)\.(.+)", name):
        block, kind, index, rest = int(match[1]), match[2], int(match[3]), match[4]
        position = 3 * block + index + 1
        return (f"input_blocks.{position}.0.{resnet_part(rest)}" if kind == "resnets"
                else f"input_blocks.{position}.1.{rest}")
    if match := re.fullmatch(r"down_blocks\.(\d)\.downsamplers\.0\.conv\.(.+)", name):
        return f"input_blocks.{3 * (int(match[1]) + 1)}.0.op.{match[2]}"
    if match := re.fullmatch(r"mid_block\.resnets\.(\d)\.(.+)", name):
        return f"middle_block.{2 * int(match[1])}.{resnet_part(match[2])}"
    if match := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", name):
        return f"middle_block.1.{match[1]}"
    if match := re.fullmatch(r"up_blocks\.(\d)\.(resnets|attentions)\.(\d)\.(.+)", name):
        block, kind, index, rest = int(match[1]), match[2], int(match[3]), match[4]
        position = (LAYERS_PER_BLOCK + 1) * block + index
        return (f"output_blocks.{position}.0.{resnet_part(rest)}" if kind == "resnets"
                else f"output_blocks.{position}.1.{rest}")
    if match := re.fullmatch(r"up_blocks\.(\d)\.upsamplers\.0\.conv\.(.+)", name):
        block = int(match[1])
        # The upsampler follows the ResBlock, and the attention where the block has one.
        slot = 2 if UNET_CONFIG["up_block_types"][block].startswith("CrossAttn") else 1
        return f"output_blocks.{(LAYERS_PER_BLOCK + 1) * block + 2}.{slot}.conv.{match[2]}"
    raise ValueError(f"no LDM name for UNet parameter {name}")


def vae_resnet_part(rest):
    return rest.replace("conv_shortcut", "nin_shortcut")


def vae_key(name):
    """A diffusers AutoencoderKL parameter name in LDM's naming (decoder up blocks reversed)."""
    blocks = len(VAE_CONFIG["block_out_channels"])
    if match := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)", name):
        return f"{match[1]}.mid.block_{int(match[2]) + 1}.{vae_resnet_part(match[3])}"
    if match := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(\w+)", name):
        return f"{match[1]}.mid.attn_1.{VAE_ATTENTION_NAMES[match[2]]}.{match[3]}"
    if match := re.fullmatch(r"encoder\.down_blocks\.(\d)\.resnets\.(\d)\.(.+)", name):
        return f"encoder.down.{match[1]}.block.{match[2]}.{vae_resnet_part(match[3])}"
    if match := re.fullmatch(r"encoder\.down_blocks\.(\d)\.downsamplers\.0\.(.+)", name):
        return f"encoder.down.{match[1]}.downsample.{match[2]}"
    if match := re.fullmatch(r"decoder\.up_blocks\.(\d)\.resnets\.(\d)\.(.+)", name):
        level = blocks - 1 - int(match[1])
        return f"decoder.up.{level}.block.{match[2]}.{vae_resnet_part(match[3])}"
    if match := re.fullmatch(r"decoder\.up_blocks\.(\d)\.upsamplers\.0\.(.+)", name):
        return f"decoder.up.{blocks - 1 - int(match[1])}.upsample.{match[2]}"
    return name.replace("conv_norm_out", "norm_out")


def vae_tensor(name, tensor):
    """LDM's VAE attention projections are 1x1 convolutions, diffusers' are linear layers."""
    if ".mid_block.attentions." in name and tensor.dim() == 2:
        return tensor[:, :, None, None]
    return tensor


def build_state_dict(seed):
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    vae = AutoencoderKL(**VAE_CONFIG)
    text = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    out = {}
    for name, tensor in unet.state_dict().items():
        out["model.diffusion_model." + unet_key(name)] = tensor
    for name, tensor in vae.state_dict().items():
        out["first_stage_model." + vae_key(name)] = vae_tensor(name, tensor)
    for name, tensor in text.state_dict().items():
        if name.endswith("position_ids"):
            continue  # a buffer, not a weight
        out["cond_stage_model.transformer." + name] = tensor
    return {key: value.to(torch.float16).contiguous() for key, value in out.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=pathlib.Path, help="the .safetensors file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = parser.parse_args()
    if args.out.suffix != ".safetensors":
        raise SystemExit("the checkpoint's name must end in .safetensors")
    state = build_state_dict(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata={"format": "pt"})
    parameters = sum(tensor.numel() for tensor in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {parameters / 1e6:.0f}M parameters, float16")


if __name__ == "__main__":
    main()
