"""LoRAs on the DiT families against diffusers + PEFT: a tiny FluxTransformer2DModel,
SD3Transformer2DModel and ZImageTransformer2DModel with a PEFT LoRA adapter (diffusers' LoRA forward, scaled as diffusers
scales LoRA layers) versus the engine applying the same LoRA, written as a file in each layout
ComfyUI reads (diffusers/PEFT names, OneTrainer's kohya names of diffusers modules, BFL/ComfyUI
names and kohya names of those, the last two with the diffusers factors fused the way the original
weights are), through lora_targets, load_lora and ModelPatcher."""
import pytest
import torch
from diffusers import FluxTransformer2DModel, ZImageTransformer2DModel
from diffusers.utils import scale_lora_layers, unscale_lora_layers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file

from parity_support import max_abs_diff
from test_flux_transformer_parity import diffusers_velocity, pipeline_inputs, tiny_config
from test_sd3_transformer_parity import VARIANTS as SD3_VARIANTS
from test_sd3_transformer_parity import diffusers_forward as sd3_forward
from test_sd3_transformer_parity import random_transformer as random_sd3, sd3_inputs
from test_zimage_transformer_parity import TINY as ZIMAGE_TINY
from test_zimage_transformer_parity import captions
from test_zimage_transformer_parity import diffusers_velocity as zimage_velocity

TOLERANCE = 1e-4  # relative to the output's scale
RANK, ALPHA = 4, 8.0
TARGETS = ["to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_out.0",
           "ff.net.2", "norm1.linear", "proj_mlp", "proj_out", "x_embedder", "norm_out.linear"]

# BFL module <- the diffusers modules whose rows it stacks (written independently of the engine).
FUSED = {
    "double_blocks.0.img_attn.qkv": ["transformer_blocks.0.attn.to_q",
                                     "transformer_blocks.0.attn.to_k",
                                     "transformer_blocks.0.attn.to_v"],
    "double_blocks.0.txt_attn.qkv": ["transformer_blocks.0.attn.add_q_proj",
                                     "transformer_blocks.0.attn.add_k_proj",
                                     "transformer_blocks.0.attn.add_v_proj"],
    "single_blocks.0.linear1": ["single_transformer_blocks.0.attn.to_q",
                                "single_transformer_blocks.0.attn.to_k",
                                "single_transformer_blocks.0.attn.to_v",
                                "single_transformer_blocks.0.proj_mlp"],
    "double_blocks.0.img_attn.proj": ["transformer_blocks.0.attn.to_out.0"],
    "double_blocks.0.img_mlp.2": ["transformer_blocks.0.ff.net.2"],
    "double_blocks.0.img_mod.lin": ["transformer_blocks.0.norm1.linear"],
    "single_blocks.0.linear2": ["single_transformer_blocks.0.proj_out"],
    "img_in": ["x_embedder"],
    "final_layer.linear": ["proj_out"],
}
# BFL's final modulation is (shift, scale), diffusers' norm_out.linear (scale, shift).
SWAPPED = {"final_layer.adaLN_modulation.1": "norm_out.linear"}


@pytest.fixture(scope="module")
def flux_with_lora(tmp_path_factory):
    """(model with a PEFT adapter, base transformer folder, {diffusers module: (A, B)})."""
    torch.manual_seed(0)
    model = FluxTransformer2DModel(**tiny_config(True)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn_like(param) * 0.2
            param.copy_(1 + noise if ".norm_" in name else noise)
    folder = tmp_path_factory.mktemp("flux_lora") / "transformer"
    model.save_pretrained(folder)
    return model, folder, add_random_adapter(model, TARGETS)


def add_random_adapter(model, targets):
    """Adds a PEFT LoRA adapter with random factors; returns {diffusers module: (A, B)}."""
    model.add_adapter(LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=targets,
                                 init_lora_weights=False))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn_like(param) * 0.1)
    state = get_peft_model_state_dict(model)
    modules = sorted({k.rsplit(".lora_", 1)[0] for k in state})
    return {m: (state[f"{m}.lora_A.weight"], state[f"{m}.lora_B.weight"]) for m in modules}


def fused_factors(factors, fused, swapped):
    """Original module -> (down, up, alpha): the diffusers factors stacked (block-diagonal up)."""
    out = {}
    for bfl, parts in fused.items():
        downs = [factors[p][0] for p in parts]
        ups = [factors[p][1] for p in parts]
        rank = sum(d.shape[0] for d in downs)
        out[bfl] = (torch.cat(downs), torch.block_diag(*ups), ALPHA / RANK * rank)
    for bfl, part in swapped.items():
        down, up = factors[part]
        half = up.shape[0] // 2
        out[bfl] = (down, torch.cat([up[half:], up[:half]]), ALPHA)
    return out


def lora_file(layout, factors, fused=FUSED, swapped=SWAPPED, diffusers_prefix="transformer."):
    scale = ALPHA / RANK
    if layout == "diffusers":
        return {f"{diffusers_prefix}{m}.{n}.weight": t
                for m, (a, b) in factors.items() for n, t in (("lora_A", a), ("lora_B", b * scale))}
    if layout == "onetrainer":
        out = {}
        for m, (a, b) in factors.items():
            name = "lora_transformer_" + m.replace(".", "_")
            out.update({f"{name}.lora_down.weight": a, f"{name}.lora_up.weight": b,
                        f"{name}.alpha": torch.tensor(ALPHA)})
        return out
    out = {}
    for bfl, (down, up, alpha) in fused_factors(factors, fused, swapped).items():
        if layout == "bfl":
            name, a, b = f"diffusion_model.{bfl}", "lora_A", "lora_B"
        else:
            name, a, b = "lora_unet_" + bfl.replace(".", "_"), "lora_down", "lora_up"
        out.update({f"{name}.{a}.weight": down, f"{name}.{b}.weight": up,
                    f"{name}.alpha": torch.tensor(alpha)})
    return out


def diffusers_output(model, inputs, scale):
    """The adapter's output at `scale` (0: the adapter disabled)."""
    with torch.no_grad():
        if scale == 0:
            model.disable_adapters()
            try:
                return diffusers_velocity(model, inputs)
            finally:
                model.enable_adapters()
        scale_lora_layers(model, scale)
        try:
            return diffusers_velocity(model, inputs)
        finally:
            unscale_lora_layers(model, scale)


def assert_close(actual, expected):
    scale = max(1.0, expected.abs().max().item())
    assert actual.shape == expected.shape
    assert max_abs_diff(actual, expected) <= TOLERANCE * scale


def run_lora(probe, tmp_path, folder, tensors, strength, inputs):
    path = tmp_path / "lora.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    out, proc = probe("dit_lora_forward", {"weights": str(folder), "lora": str(path),
                                           "strength": strength}, inputs)
    return out, proc


def test_every_module_of_the_adapter_is_in_the_fused_map(flux_with_lora):
    _, _, factors = flux_with_lora
    mapped = {p for parts in FUSED.values() for p in parts} | set(SWAPPED.values())
    assert set(factors) == mapped


@pytest.mark.parametrize("layout", ["diffusers", "onetrainer", "bfl", "kohya"])
def test_lora_matches_diffusers_peft(flux_with_lora, probe, tmp_path, layout):
    model, folder, factors = flux_with_lora
    inputs = pipeline_inputs(2, 6, 10, True, seed=3)
    out, proc = run_lora(probe, tmp_path, folder, lora_file(layout, factors), 1.0, inputs)
    assert out["unmatched"].item() == 0, proc.stderr
    expected = diffusers_output(model, inputs, 1.0)
    base = diffusers_output(model, inputs, 0)
    assert max_abs_diff(expected, base) > 0.1  # the LoRA changes the output
    assert_close(out["out"], expected)
    assert_close(out["base"], base)  # the cached model is left as it was


@pytest.mark.parametrize("strength", [0.5, -1.0])
def test_strength_scales_the_lora(flux_with_lora, probe, tmp_path, strength):
    model, folder, factors = flux_with_lora
    inputs = pipeline_inputs(1, 8, 8, True, seed=4)
    out, _ = run_lora(probe, tmp_path, folder, lora_file("diffusers", factors), strength, inputs)
    assert_close(out["out"], diffusers_output(model, inputs, strength))


def test_strength_zero_gives_the_unpatched_output(flux_with_lora, probe, tmp_path):
    _, folder, factors = flux_with_lora
    inputs = pipeline_inputs(1, 8, 8, True, seed=5)
    out, _ = run_lora(probe, tmp_path, folder, lora_file("bfl", factors), 0.0, inputs)
    # Strength 0 leaves the weights as they were; the patched model may still run other kernels
    # (another memory layout), so equal within the tolerance, not bit for bit.
    assert_close(out["out"], out["base"])


def test_text_encoder_tensors_are_reported_not_loaded(flux_with_lora, probe, tmp_path):
    _, folder, factors = flux_with_lora
    tensors = lora_file("kohya", factors)
    tensors["lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = torch.zeros(4, 8)
    inputs = pipeline_inputs(1, 8, 8, True, seed=6)
    out, proc = run_lora(probe, tmp_path, folder, tensors, 1.0, inputs)
    assert out["unmatched"].item() == 1
    assert "lora key not loaded: lora_te1_text_model_encoder_layers_0_mlp_fc1" in proc.stderr


# Z-Image: ComfyUI's attention.qkv stacks diffusers' to_q, to_k and to_v; to_out.0 is out.
ZIMAGE_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "w1", "w2", "w3"]


def zimage_fused_map(factors):
    fused = {}
    for module in factors:
        if module.endswith(".attention.to_q"):
            stem = module[:-len("to_q")]
            fused[stem + "qkv"] = [stem + "to_q", stem + "to_k", stem + "to_v"]
        elif module.endswith(".attention.to_out.0"):
            fused[module[:-len("to_out.0")] + "out"] = [module]
        elif ".feed_forward." in module:
            fused[module] = [module]
    return fused


@pytest.fixture(scope="module")
def zimage_with_lora(tmp_path_factory):
    torch.manual_seed(1)
    model = ZImageTransformer2DModel(**ZIMAGE_TINY).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 1 and "norm" in name:
                param.copy_(1 + 0.1 * torch.randn_like(param))
            else:
                param.normal_(0, 0.1)
    folder = tmp_path_factory.mktemp("zimage_lora") / "transformer"
    model.save_pretrained(folder)
    return model, folder, add_random_adapter(model, ZIMAGE_TARGETS)


def zimage_output(model, x, sigma, context, mask, scale):
    scale_lora_layers(model, scale)
    try:
        return zimage_velocity(model, x, sigma, context, mask)
    finally:
        unscale_lora_layers(model, scale)


@pytest.mark.parametrize("layout,prefix", [("diffusers", "transformer."),
                                           ("diffusers", "diffusion_model."),
                                           ("bfl", None), ("kohya", None)])
def test_zimage_lora_matches_diffusers_peft(zimage_with_lora, probe, tmp_path, layout, prefix):
    model, folder, factors = zimage_with_lora
    fused = zimage_fused_map(factors)
    assert {p for parts in fused.values() for p in parts} == set(factors)
    tensors = lora_file(layout, factors, fused, {}, prefix)
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    sigma = torch.tensor([0.8, 0.35])
    context, mask = captions([5, 9])
    inputs = {"x": x, "timestep": sigma, "context": context, "context_mask": mask}
    out, proc = run_lora(probe, tmp_path, folder, tensors, 0.75, inputs)
    assert out["unmatched"].item() == 0, proc.stderr
    expected = zimage_output(model, x, sigma, context, mask, 0.75)
    assert max_abs_diff(expected, out["base"]) > 0.01  # the LoRA changes the output
    assert_close(out["out"], expected)


# SD3: Stability's qkv stack diffusers' to_q/to_k/to_v (add_*_proj for the context); the final
# modulation and the last block's context modulation are (shift, scale) where diffusers has
# (scale, shift).
SD3_TARGETS = ["to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_out.0",
               "ff.net.2", "norm1_context.linear", "norm_out.linear"]


def sd3_maps(num_layers):
    fused = {}
    swapped = {"final_layer.adaLN_modulation.1": "norm_out.linear"}
    for i in range(num_layers):
        d, o = f"transformer_blocks.{i}.", f"joint_blocks.{i}."
        fused[o + "x_block.attn.qkv"] = [d + "attn.to_q", d + "attn.to_k", d + "attn.to_v"]
        fused[o + "context_block.attn.qkv"] = [d + "attn.add_q_proj", d + "attn.add_k_proj",
                                               d + "attn.add_v_proj"]
        fused[o + "x_block.attn.proj"] = [d + "attn.to_out.0"]
        fused[o + "x_block.mlp.fc2"] = [d + "ff.net.2"]
        context_modulation = o + "context_block.adaLN_modulation.1"
        if i == num_layers - 1:
            swapped[context_modulation] = d + "norm1_context.linear"
        else:
            fused[context_modulation] = [d + "norm1_context.linear"]
    return fused, swapped


@pytest.fixture(scope="module")
def sd3_with_lora(tmp_path_factory):
    config = SD3_VARIANTS["sd35_qk_norm"]
    model = random_sd3(config, seed=2)
    folder = tmp_path_factory.mktemp("sd3_lora") / "transformer"
    model.save_pretrained(folder)
    return model, folder, add_random_adapter(model, SD3_TARGETS), config["num_layers"]


@pytest.mark.parametrize("layout", ["diffusers", "onetrainer", "bfl", "kohya"])
def test_sd3_lora_matches_diffusers_peft(sd3_with_lora, probe, tmp_path, layout):
    model, folder, factors, num_layers = sd3_with_lora
    fused, swapped = sd3_maps(num_layers)
    assert {p for parts in fused.values() for p in parts} | set(swapped.values()) == set(factors)
    inputs = sd3_inputs(2, 6, 10, seed=7)
    out, proc = run_lora(probe, tmp_path, folder, lora_file(layout, factors, fused, swapped),
                         1.0, inputs)
    assert out["unmatched"].item() == 0, proc.stderr
    expected = sd3_forward(model, inputs)
    assert max_abs_diff(expected, out["base"]) > 0.01  # the LoRA changes the output
    assert_close(out["out"], expected)
