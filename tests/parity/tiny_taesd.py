"""Random-weight Tiny AutoEncoders (diffusers' AutoencoderTiny) saved as TAESD's own encoder and
decoder files, the pair ComfyUI's VAELoader reads from models/vae_approx."""
import torch
from diffusers import AutoencoderTiny
from safetensors.torch import save_file

# TAESD's decoder starts with its clamp at index 0; diffusers' applies it outside its layers.
DECODER_INDEX_SHIFT = 1


def build(seed=0):
    """An AutoencoderTiny of TAESD's shape with seeded random weights."""
    torch.manual_seed(seed)
    return AutoencoderTiny().eval()


def taesd_layout(state, prefix, index_shift):
    """`prefix`.layers.N.rest -> (N + index_shift).rest."""
    out = {}
    for key, tensor in state.items():
        if key.startswith(prefix):
            index, rest = key[len(prefix):].split(".", 1)
            out[f"{int(index) + index_shift}.{rest}"] = tensor.contiguous()
    return out


def save_taesd(model, directory, name="taesd"):
    """Writes `name`_encoder.safetensors and `name`_decoder.safetensors; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    encoder = directory / f"{name}_encoder.safetensors"
    decoder = directory / f"{name}_decoder.safetensors"
    save_file(taesd_layout(state, "encoder.layers.", 0), str(encoder))
    save_file(taesd_layout(state, "decoder.layers.", DECODER_INDEX_SHIFT), str(decoder))
    return encoder, decoder
