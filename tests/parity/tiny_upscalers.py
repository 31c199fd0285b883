"""Random-weight upscale models built with spandrel, saved as safetensors in each key layout
UpscaleModelLoader reads: old ESRGAN ("model.N"), Real-ESRGAN's newer names ("conv_first",
"body.N.rdbK.convJ", ...) under "params_ema", and the compact SRVGG network ("body.N")."""
import re

import torch
from safetensors.torch import save_file
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN


def _randomized(module, seed, prelu_spread=0.0):
    """Gives every parameter fresh random values (biases too, PReLU slopes spread around 0.25)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1 and prelu_spread and isinstance(_owner(module, name), torch.nn.PReLU):
                p.copy_(0.25 + prelu_spread * torch.randn(p.shape, generator=generator))
            elif p.dim() == 1:
                p.copy_(0.05 * torch.randn(p.shape, generator=generator))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / fan_in ** 0.5)
    return module.eval()


def _owner(module, name):
    for part in name.split(".")[:-1]:
        module = getattr(module, part)
    return module


def esrgan(seed=0, scale=4, in_nc=3, out_nc=3, features=16, blocks=2, plus=False, shuffle=None):
    net = ESRGAN(in_nc=in_nc, out_nc=out_nc, num_filters=features, num_blocks=blocks, scale=scale,
                 plus=plus, shuffle_factor=shuffle)
    return _randomized(net, seed)


def compact(seed=0, scale=4, channels=3, features=16, convs=4):
    net = Compact(num_in_ch=channels, num_out_ch=channels, num_feat=features, num_conv=convs,
                  upscale=scale)
    return _randomized(net, seed, prelu_spread=0.1)


def new_layout(old_state):
    """Renames an old-layout ESRGAN state dict to Real-ESRGAN's names."""
    length = 1 + max(int(k.split(".")[1]) for k in old_state)
    upsamplings = (length - 5) // 3
    trunk_conv = max(int(k.split(".")[3]) for k in old_state if k.startswith("model.1.sub."))
    fixed = {"model.0": "conv_first", f"model.1.sub.{trunk_conv}": "conv_body",
             f"model.{3 * upsamplings + 2}": "conv_hr", f"model.{3 * upsamplings + 4}": "conv_last"}
    fixed.update({f"model.{3 * k}": f"conv_up{k}" for k in range(1, upsamplings + 1)})
    renamed = {}
    for key, value in old_state.items():
        layer, kind = key.rsplit(".", 1)
        dense = re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0", layer)
        renamed[(f"body.{dense[1]}.rdb{dense[2]}.conv{dense[3]}" if dense else fixed[layer]) + "." + kind] = value
    return renamed


def save(state, path, prefix=""):
    """Writes the state dict (names under `prefix`) to `path`, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({prefix + k: v.contiguous() for k, v in state.items()}, str(path))
    return path
