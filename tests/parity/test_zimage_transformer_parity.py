"""The Z-Image transformer against diffusers' ZImageTransformer2DModel on tiny random weights,
called the way diffusers' ZImagePipeline calls it (list inputs, t = 1 - sigma, negated output),
from a diffusers folder and from a ComfyUI-named single file; and the tensor layout of the real
Z-Image Turbo architecture (fp32 CPU)."""
import json
import re

import pytest
import torch
import torch.nn.functional as F
from diffusers import ZImageTransformer2DModel
from safetensors.torch import save_file

TOLERANCE = 1e-4
TINY = dict(all_patch_size=[2], all_f_patch_size=[1], in_channels=16, dim=32, n_layers=2,
            n_refiner_layers=1, n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True,
            cap_feat_dim=32, rope_theta=256.0, t_scale=1000.0, axes_dims=[4, 6, 6],
            axes_lens=[1536, 512, 512])
# Tongyi-MAI/Z-Image-Turbo's transformer/config.json.
REAL = dict(TINY, dim=3840, n_layers=30, n_refiner_layers=2, n_heads=30, n_kv_heads=30,
            cap_feat_dim=2560, axes_dims=[32, 48, 48])


def random_transformer(seed=0):
    torch.manual_seed(seed)
    model = ZImageTransformer2DModel(**TINY).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1 and "norm" in name:
                parameter.copy_(1 + 0.1 * torch.randn_like(parameter))
            else:
                parameter.normal_(0, 0.1)
    return model


def comfy_names(state_dict):
    """diffusers names -> the ComfyUI/original names, written independently of the engine."""
    out = {}
    for key, tensor in state_dict.items():
        if m := re.fullmatch(r"(.+\.attention)\.to_q\.weight", key):
            k, v = state_dict[f"{m[1]}.to_k.weight"], state_dict[f"{m[1]}.to_v.weight"]
            out[f"{m[1]}.qkv.weight"] = torch.cat([tensor, k, v])
            continue
        if re.search(r"\.attention\.to_[kv]\.weight$", key):
            continue
        name = key.replace("all_x_embedder.2-1.", "x_embedder.")
        name = name.replace("all_final_layer.2-1.", "final_layer.")
        name = name.replace(".attention.to_out.0.", ".attention.out.")
        name = name.replace(".attention.norm_q.", ".attention.q_norm.")
        name = name.replace(".attention.norm_k.", ".attention.k_norm.")
        out[name] = tensor
    return out


@pytest.fixture(scope="module")
def model():
    return random_transformer()


@pytest.fixture(scope="module")
def diffusers_folder(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("zimage") / "transformer"
    model.save_pretrained(path)
    return path


def captions(lengths, width=TINY["cap_feat_dim"], seed=1):
    """Random caption states [B, max L, C] (padding rows random too) and their mask."""
    generator = torch.Generator().manual_seed(seed)
    context = torch.randn(len(lengths), max(lengths), width, generator=generator)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for i, length in enumerate(lengths):
        mask[i, :length] = True
    return context, mask


def diffusers_velocity(model, x, sigma, context, mask):
    """ZImagePipeline's call: latents as a list of [C, 1, H, W], timestep
    (1000 - 1000·sigma) / 1000, each caption's own tokens, output negated; ComfyUI's circular
    padding to the patch size."""
    height, width = x.shape[-2:]
    padded = F.pad(x, (0, (-width) % 2, 0, (-height) % 2), mode="circular")
    timestep = (1000 - sigma * 1000) / 1000
    with torch.no_grad():
        out = model(list(padded.unsqueeze(2).unbind(0)), timestep,
                    [context[i][mask[i]] for i in range(len(x))], return_dict=False)[0]
    return -torch.stack(out).squeeze(2)[..., :height, :width]


def engine_velocity(probe, weights, x, sigma, context, mask):
    out, _ = probe("zimage_forward", {"weights": str(weights)},
                   {"x": x, "timestep": sigma, "context": context, "context_mask": mask})
    return out["out"]


def assert_close(ours, reference):
    assert ours.shape == reference.shape
    scale = reference.abs().max().item()
    assert (ours.double() - reference.double()).abs().max().item() <= TOLERANCE * scale


@pytest.mark.parametrize("size", [(8, 8), (7, 9)])
def test_two_captions_of_different_lengths(probe, model, diffusers_folder, size):
    # Lengths 5 and 37 pad to 32 and 64 caption tokens: the batch needs attention masks.
    x = torch.randn(2, 16, *size, generator=torch.Generator().manual_seed(2))
    sigma = torch.tensor([0.8, 0.35])
    context, mask = captions([5, 37])
    reference = diffusers_velocity(model, x, sigma, context, mask)
    assert_close(engine_velocity(probe, diffusers_folder, x, sigma, context, mask), reference)


def test_each_entry_alone_matches_the_batch(probe, model, diffusers_folder):
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(3))
    sigma = torch.tensor([0.5, 0.5])
    context, mask = captions([40, 12])
    batched = engine_velocity(probe, diffusers_folder, x, sigma, context, mask)
    alone = engine_velocity(probe, diffusers_folder, x[1:], sigma[1:], context[1:, :12],
                            mask[1:, :12])
    assert_close(alone, batched[1:])


def test_comfy_named_checkpoint_gives_the_same_output(probe, model, diffusers_folder, tmp_path):
    state = {f"model.diffusion_model.{k}": v.contiguous()
             for k, v in comfy_names(model.state_dict()).items()}
    state["vae.decoder.conv_in.weight"] = torch.zeros(1)  # other components are skipped
    path = tmp_path / "z_image_turbo_tiny.safetensors"
    save_file(state, str(path))
    x = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(4))
    sigma = torch.tensor([0.6])
    context, mask = captions([9])
    assert_close(engine_velocity(probe, path, x, sigma, context, mask),
                 engine_velocity(probe, diffusers_folder, x, sigma, context, mask))


def test_engine_written_tiny_folder_loads_in_diffusers(probe, tmp_path):
    folder = tmp_path / "transformer"
    probe("zimage_write_tiny", {"dir": str(folder), "seed": 5, "cap_feat_dim": 32})
    model, info = ZImageTransformer2DModel.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values()), info
    x = torch.randn(1, 16, 8, 6, generator=torch.Generator().manual_seed(6))
    sigma = torch.tensor([0.9])
    context, mask = captions([11])
    assert_close(engine_velocity(probe, folder, x, sigma, context, mask),
                 diffusers_velocity(model.eval(), x, sigma, context, mask))


def shapes_of(state_dict):
    return {k: list(v.shape) for k, v in state_dict.items()}


@pytest.mark.parametrize("naming", ["diffusers", "comfy"])
def test_real_config_layout(probe, naming):
    with torch.device("meta"):
        real = ZImageTransformer2DModel(**REAL)
    expected = shapes_of(real.state_dict())
    if naming == "comfy":
        expected = {k: list(v) for k, v in shapes_of(
            comfy_names({k: torch.empty(s, device="meta") for k, s in expected.items()})).items()}
    config = json.loads(json.dumps(REAL))
    out, _ = probe("zimage_layout", {"config": config, "naming": naming})
    assert {k: v.tolist() for k, v in out.items()} == expected
    assert len(out) == (521 if naming == "diffusers" else 453)
