"""Test helper: writes a diffusers pipeline as an original (LDM / CivitAI-style) single-file
safetensors checkpoint, the inverse of the engine's single-file key conversion, written
independently from the layout of the original Stable Diffusion code."""
import json
import re

import torch
from safetensors.torch import save_file

# Where each family keeps its text encoders, and in which naming ("hf" transformers, "openclip").
TEXT_ENCODERS = {
    "sd1": [("cond_stage_model.transformer.", "hf")],
    "sd2": [("cond_stage_model.model.", "openclip")],
    "sdxl": [("conditioner.embedders.0.transformer.", "hf"),
             ("conditioner.embedders.1.model.", "openclip")],
    "sdxl_refiner": [("conditioner.embedders.0.model.", "openclip")],
}

_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3",
                "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v",
                  "to_out.0": "proj_out"}


def _resnet_part(rest, table):
    module, _, param = rest.rpartition(".")
    return table.get(module, module) + "." + param


def unet_to_ldm(state_dict, config):
    """diffusers UNet2DConditionModel state dict -> LDM names (without model.diffusion_model.)."""
    per_level = config["layers_per_block"] + 1
    up_types = config["up_block_types"]
    fixed = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
             "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
             "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0",
             "conv_out": "out.2"}
    out = {}
    for key, tensor in state_dict.items():
        module, _, param = key.rpartition(".")
        if module in fixed:
            out[f"{fixed[module]}.{param}"] = tensor
            continue
        if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            block = 1 + int(m[1]) * per_level + int(m[3])
            if m[2] == "resnets":
                name = f"input_blocks.{block}.0.{_resnet_part(m[4], _UNET_RESNET)}"
            else:
                name = f"input_blocks.{block}.1.{m[4]}"
        elif m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            name = f"input_blocks.{(int(m[1]) + 1) * per_level}.0.op.{m[2]}"
        elif m := re.fullmatch(r"mid_block\.resnets\.(\d)\.(.+)", key):
            name = f"middle_block.{2 * int(m[1])}.{_resnet_part(m[2], _UNET_RESNET)}"
        elif m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
            name = f"middle_block.1.{m[1]}"
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            block = int(m[1]) * per_level + int(m[3])
            if m[2] == "resnets":
                name = f"output_blocks.{block}.0.{_resnet_part(m[4], _UNET_RESNET)}"
            else:
                name = f"output_blocks.{block}.1.{m[4]}"
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            level = int(m[1])
            slot = 2 if up_types[level] == "CrossAttnUpBlock2D" else 1
            name = f"output_blocks.{level * per_level + per_level - 1}.{slot}.conv.{m[2]}"
        else:
            raise KeyError(f"unexpected UNet key {key}")
        out[name] = tensor
    return out


def _vae_resnet_part(rest):
    return rest.replace("conv_shortcut", "nin_shortcut")


def vae_to_ldm(state_dict, config):
    """diffusers AutoencoderKL state dict -> LDM names (without first_stage_model.)."""
    blocks = len(config["block_out_channels"])
    out = {}
    for key, tensor in state_dict.items():
        name = key
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            name = f"encoder.down.{m[1]}.block.{m[2]}.{_vae_resnet_part(m[3])}"
        elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            name = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            level = blocks - 1 - int(m[1])
            name = f"decoder.up.{level}.block.{m[2]}.{_vae_resnet_part(m[3])}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            name = f"decoder.up.{blocks - 1 - int(m[1])}.upsample.conv.{m[2]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)", key):
            name = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)",
                               key):
            name = f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
            if m[2] != "group_norm" and m[3] == "weight":
                tensor = tensor[:, :, None, None]  # the original uses 1x1 convolutions
        elif m := re.fullmatch(r"(encoder|decoder)\.conv_norm_out\.(.+)", key):
            name = f"{m[1]}.norm_out.{m[2]}"
        out[name] = tensor
    return out


def clip_to_open_clip(state_dict, extra_layer=False, projection=None):
    """transformers CLIP text state dict -> OpenCLIP text tower names. `extra_layer` appends a
    random last resblock and `projection` a text_projection [D,P] where the original model has
    one that diffusers drops (SD2)."""
    out = {}
    layers = {}
    renames = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
               "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for key, tensor in state_dict.items():
        key = key if key.startswith(("text_model.", "text_projection")) else "text_model." + key
        if key.endswith("position_ids"):
            continue
        if key == "text_model.embeddings.token_embedding.weight":
            out["token_embedding.weight"] = tensor
        elif key == "text_model.embeddings.position_embedding.weight":
            out["positional_embedding"] = tensor
        elif key.startswith("text_model.final_layer_norm."):
            out["ln_final." + key.rpartition(".")[2]] = tensor
        elif key == "text_projection.weight":
            out["text_projection"] = tensor.t().contiguous()
        elif m := re.fullmatch(
                r"text_model\.encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(\w+)", key):
            layers.setdefault((int(m[1]), m[3]), {})[m[2]] = tensor
        elif m := re.fullmatch(r"text_model\.encoder\.layers\.(\d+)\.(.+)\.(\w+)", key):
            out[f"transformer.resblocks.{m[1]}.{renames[m[2]]}.{m[3]}"] = tensor
        else:
            raise KeyError(f"unexpected CLIP key {key}")
    for (layer, kind), qkv in layers.items():
        fused = torch.cat([qkv["q"], qkv["k"], qkv["v"]], dim=0)
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = fused
    if extra_layer:
        count = 1 + max(layer for layer, _ in layers)
        generator = torch.Generator().manual_seed(1)
        for key in [k for k in out if k.startswith("transformer.resblocks.0.")]:
            template = out[key]
            out[key.replace(".0.", f".{count}.", 1)] = torch.randn(
                template.shape, generator=generator).to(template.dtype)
    if projection is not None:
        out["text_projection"] = projection
    out["logit_scale"] = torch.tensor(4.6052)
    return out


def _config_text(module):
    config = dict(module.config.to_dict() if hasattr(module.config, "to_dict") else module.config)
    if hasattr(module.config, "to_dict"):
        config["architectures"] = [type(module).__name__]
    return json.dumps(config, default=list)


def pipeline_to_single_file(pipe, family, path, dtype=None, metadata=True, v_pred=False,
                            vae_prefix="first_stage_model."):
    """Writes `pipe` as a single-file checkpoint of `family` at `path` and returns the tensors.
    metadata=True stores the components' diffusers configs under dreamforge.* keys; v_pred adds
    the v-prediction marker tensor. Extra keys real files carry (EMA, schedule buffers,
    position_ids) are added so that loaders must skip them."""
    tensors = {}
    for key, tensor in unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config).items():
        tensors["model.diffusion_model." + key] = tensor
    for key, tensor in vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config).items():
        tensors[vae_prefix + key] = tensor
    encoders = [getattr(pipe, name, None) for name in ("text_encoder", "text_encoder_2")]
    encoders = [e for e in encoders if e is not None]
    for (prefix, naming), encoder in zip(TEXT_ENCODERS[family], encoders):
        state = encoder.state_dict()
        if naming == "hf":
            # Original checkpoints use the transformers names of their time, under text_model.
            converted = {k if k.startswith("text_model.") else "text_model." + k: v
                         for k, v in state.items()}
            converted["text_model.embeddings.position_ids"] = torch.arange(
                encoder.config.max_position_embeddings)[None]
        else:
            hidden = encoder.config.hidden_size
            sd2 = family == "sd2"
            converted = clip_to_open_clip(
                state, extra_layer=sd2,
                projection=torch.randn(hidden, hidden, generator=torch.Generator().manual_seed(2))
                if sd2 else None)
        for key, tensor in converted.items():
            tensors[prefix + key] = tensor
    tensors["alphas_cumprod"] = torch.linspace(0.99, 0.01, 1000, dtype=torch.float64)
    tensors["model_ema.decay"] = torch.tensor(0.9999)
    if v_pred:
        tensors["v_pred"] = torch.tensor([])
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() and k != "alphas_cumprod" else v
                   for k, v in tensors.items()}
    info = {}
    if metadata:
        info["dreamforge.unet_config"] = _config_text(pipe.unet)
        info["dreamforge.vae_config"] = _config_text(pipe.vae)
        names = ["dreamforge.text_encoder_config", "dreamforge.text_encoder_2_config"]
        for name, encoder in zip(names, encoders):
            info[name] = _config_text(encoder)
        info["dreamforge.scheduler_config"] = json.dumps(dict(pipe.scheduler.config), default=list)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=info)
    return tensors
