"""SD3 / SD3.5 MMDiT against diffusers' SD3Transformer2DModel: tiny random models (plain, SD3.5's
RMS qk norm, SD3.5 Medium's dual attention) read from their diffusers folder and from a single
file in Stability's names, latents whose sizes are not multiples of the patch (ComfyUI pads them
circularly), and the tensor layout of the real SD3 Medium / SD3.5 Large / SD3.5 Medium configs."""
import copy

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from parity_support import max_abs_diff, run_probe

TOLERANCE = 1e-4  # relative to the output's scale
PREFIX = "model.diffusion_model."

TINY = dict(sample_size=32, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=32,
            pooled_projection_dim=64, out_channels=16, pos_embed_max_size=64)
VARIANTS = {
    "sd3": dict(TINY),
    "sd35_qk_norm": dict(TINY, qk_norm="rms_norm"),
    "sd35_dual": dict(TINY, qk_norm="rms_norm", dual_attention_layers=(0,)),
}
REAL = {
    "sd3_medium": dict(sample_size=128, patch_size=2, in_channels=16, num_layers=24,
                       attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096,
                       caption_projection_dim=1536, pooled_projection_dim=2048, out_channels=16,
                       pos_embed_max_size=192),
    "sd35_large": dict(sample_size=128, patch_size=2, in_channels=16, num_layers=38,
                       attention_head_dim=64, num_attention_heads=38, joint_attention_dim=4096,
                       caption_projection_dim=2432, pooled_projection_dim=2048, out_channels=16,
                       pos_embed_max_size=192, qk_norm="rms_norm"),
    "sd35_medium": dict(sample_size=128, patch_size=2, in_channels=16, num_layers=24,
                        attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096,
                        caption_projection_dim=1536, pooled_projection_dim=2048, out_channels=16,
                        pos_embed_max_size=384, qk_norm="rms_norm",
                        dual_attention_layers=tuple(range(13))),
}


def random_transformer(config, seed=0):
    from diffusers import SD3Transformer2DModel
    torch.manual_seed(seed)
    model = SD3Transformer2DModel(**config).eval()
    with torch.no_grad():  # every tensor random, so each part (and each half) shows in the output
        for name, t in model.state_dict().items():
            if name.endswith("norm_q.weight") or name.endswith("norm_k.weight") or \
                    "norm_added" in name:
                t.copy_(1 + 0.2 * torch.randn_like(t))
            else:
                t.copy_(0.1 * torch.randn_like(t))
    return model


def swap_halves(t):
    first, second = t.chunk(2, 0)
    return torch.cat([second, first], 0)


def to_original(state, num_layers, dual_layers):
    """The diffusers tensors in Stability's names (the inverse of diffusers' single-file map)."""
    out = {"pos_embed": state["pos_embed.pos_embed"]}
    renames = {"x_embedder.proj": "pos_embed.proj",
               "t_embedder.mlp.0": "time_text_embed.timestep_embedder.linear_1",
               "t_embedder.mlp.2": "time_text_embed.timestep_embedder.linear_2",
               "y_embedder.mlp.0": "time_text_embed.text_embedder.linear_1",
               "y_embedder.mlp.2": "time_text_embed.text_embedder.linear_2",
               "context_embedder": "context_embedder", "final_layer.linear": "proj_out"}
    for i in range(num_layers):
        d, o = f"transformer_blocks.{i}.", f"joint_blocks.{i}."
        renames.update({o + "x_block.attn.proj": d + "attn.to_out.0",
                        o + "x_block.adaLN_modulation.1": d + "norm1.linear",
                        o + "x_block.mlp.fc1": d + "ff.net.0.proj",
                        o + "x_block.mlp.fc2": d + "ff.net.2"})
        attentions = [("x_block.attn", "attn.to_", "attn.norm_"),
                      ("context_block.attn", "attn.add_", "attn.norm_added_")]
        if i in dual_layers:
            renames[o + "x_block.attn2.proj"] = d + "attn2.to_out.0"
            attentions.append(("x_block.attn2", "attn2.to_", "attn2.norm_"))
        for ours, proj, norm in attentions:
            suffix = "_proj" if "add_" in proj else ""
            for kind in ("weight", "bias"):
                out[f"{o}{ours}.qkv.{kind}"] = torch.cat(
                    [state[f"{d}{proj}{p}{suffix}.{kind}"] for p in "qkv"])
            for p in "qk":
                if f"{d}{norm}{p}.weight" in state:
                    out[f"{o}{ours}.ln_{p}.weight"] = state[f"{d}{norm}{p}.weight"]
        last = i == num_layers - 1
        for kind in ("weight", "bias"):
            ada = state[f"{d}norm1_context.linear.{kind}"]
            out[f"{o}context_block.adaLN_modulation.1.{kind}"] = swap_halves(ada) if last else ada
        if not last:
            renames.update({o + "context_block.attn.proj": d + "attn.to_add_out",
                            o + "context_block.mlp.fc1": d + "ff_context.net.0.proj",
                            o + "context_block.mlp.fc2": d + "ff_context.net.2"})
    for ours, theirs in renames.items():
        for kind in ("weight", "bias"):
            out[f"{ours}.{kind}"] = state[f"{theirs}.{kind}"]
    for kind in ("weight", "bias"):
        out[f"final_layer.adaLN_modulation.1.{kind}"] = \
            swap_halves(state[f"norm_out.linear.{kind}"])
    return out


@pytest.fixture(scope="module", params=list(VARIANTS))
def tiny(request, tmp_path_factory):
    config = VARIANTS[request.param]
    model = random_transformer(config)
    root = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(root / "pipeline" / "transformer", safe_serialization=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    original = to_original(state, config["num_layers"], config.get("dual_attention_layers", ()))
    single = {PREFIX + k: v for k, v in original.items()}
    single["text_encoders.clip_l.transformer.text_model.final_layer_norm.weight"] = torch.ones(32)
    single["first_stage_model.decoder.conv_in.weight"] = torch.zeros(8, 16, 3, 3)
    save_file(single, str(root / "single.safetensors"))
    save_file(original, str(root / "bare.safetensors"))
    return model, root, original, config


def sd3_inputs(batch, height, width, seed):
    g = torch.Generator().manual_seed(seed)
    sigmas = torch.tensor([0.75, 0.3])[:batch]
    return {"x": torch.randn(batch, 16, height, width, generator=g),
            # StableDiffusion3Pipeline passes its scheduler's timesteps (sigma * 1000) per sample.
            "timestep": sigmas * 1000,
            "context": torch.randn(batch, 12, 32, generator=g),
            "pooled": torch.randn(batch, 64, generator=g)}


def diffusers_forward(model, inputs):
    with torch.no_grad():
        return model(hidden_states=inputs["x"], encoder_hidden_states=inputs["context"],
                     pooled_projections=inputs["pooled"], timestep=inputs["timestep"]).sample


def assert_close(ours, expected):
    scale = expected.abs().max().item()
    assert ours.shape == expected.shape
    assert max_abs_diff(ours, expected) <= TOLERANCE * scale, (max_abs_diff(ours, expected), scale)


def test_diffusers_converter_agrees_with_the_test_map(tiny):
    from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers
    model, _, original, _ = tiny
    converted = convert_sd3_transformer_checkpoint_to_diffusers(dict(original))
    state = model.state_dict()
    assert set(converted) == set(state)
    for name, tensor in converted.items():
        assert torch.equal(tensor, state[name]), name


@pytest.mark.parametrize("shape", [(1, 8, 8), (2, 6, 10)])
def test_diffusers_folder_matches_diffusers(tiny, tmp_path, shape):
    model, root, _, config = tiny
    inputs = sd3_inputs(*shape, seed=shape[1])
    out, _ = run_probe("sd3_forward", tmp_path, {"path": str(root / "pipeline")}, inputs)
    assert_close(out["out"], diffusers_forward(model, inputs))
    assert out["depth"].item() == config["num_layers"]
    assert out["qk_norm"].item() == (1 if config.get("qk_norm") else 0)
    assert out["dual_layers"].item() == len(config.get("dual_attention_layers", ()))


@pytest.mark.parametrize("file", ["single.safetensors", "bare.safetensors"])
def test_original_names_give_the_same_output(tiny, tmp_path, file):
    model, root, _, config = tiny
    inputs = sd3_inputs(2, 6, 10, seed=3)
    out, _ = run_probe("sd3_forward", tmp_path, {"path": str(root / file)}, inputs)
    assert_close(out["out"], diffusers_forward(model, inputs))
    # The config inferred from the names and shapes is the diffusers config.
    assert out["heads"].item() == config["num_attention_heads"]
    assert out["head_dim"].item() == config["attention_head_dim"]
    assert out["depth"].item() == config["num_layers"]


def test_sizes_off_the_patch_grid_are_padded_circularly(tiny, tmp_path):
    model, root, _, _ = tiny
    inputs = sd3_inputs(2, 7, 9, seed=5)
    out, _ = run_probe("sd3_forward", tmp_path, {"path": str(root / "single.safetensors")}, inputs)
    padded = dict(inputs, x=F.pad(inputs["x"], (0, 1, 0, 1), mode="circular"))
    assert_close(out["out"], diffusers_forward(model, padded)[:, :, :7, :9])


def test_without_pooled_vector_when_the_pooled_embedder_is_skipped(tiny, tmp_path):
    model, root, _, _ = tiny
    inputs = sd3_inputs(1, 8, 8, seed=7)
    del inputs["pooled"]
    out, _ = run_probe("sd3_forward", tmp_path, {"path": str(root / "bare.safetensors")}, inputs)
    # ComfyUI adds nothing for a missing pooled vector; diffusers cannot skip its pooled
    # embedder, so compare with a copy whose pooled embedder outputs exactly zero.
    silent = copy.deepcopy(model)
    with torch.no_grad():
        silent.time_text_embed.text_embedder.linear_2.weight.zero_()
        silent.time_text_embed.text_embedder.linear_2.bias.zero_()
    assert_close(out["out"], diffusers_forward(silent, dict(inputs, pooled=torch.zeros(1, 64))))


@pytest.mark.parametrize("name", list(REAL))
def test_real_layouts_match_diffusers(name, tmp_path):
    from diffusers import SD3Transformer2DModel
    config = REAL[name]
    with torch.device("meta"):
        model = SD3Transformer2DModel(**config)
    state = model.state_dict()
    dual = list(config.get("dual_attention_layers", ()))
    args = {"config": dict(config, dual_attention_layers=dual)}
    out, _ = run_probe("sd3_layout", tmp_path, dict(args, naming="diffusers"))
    assert {k: list(v.tolist()) for k, v in out.items()} == \
        {k: list(v.shape) for k, v in state.items()}
    original = to_original(state, config["num_layers"], config.get("dual_attention_layers", ()))
    out, _ = run_probe("sd3_layout", tmp_path, dict(args, naming="original"))
    assert {k: list(v.tolist()) for k, v in out.items()} == \
        {k: list(v.shape) for k, v in original.items()}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_written_diffusers_folder_loads_in_diffusers(variant, tmp_path):
    from diffusers import SD3Transformer2DModel
    config = dict(VARIANTS[variant])
    config["dual_attention_layers"] = list(config.get("dual_attention_layers", ()))
    run_probe("sd3_write_tiny", tmp_path,
              {"dir": str(tmp_path), "config": config, "seed": 3, "stddev": 0.2})
    model = SD3Transformer2DModel.from_pretrained(str(tmp_path / "transformer")).eval()
    assert model.config.qk_norm == config.get("qk_norm")
    inputs = sd3_inputs(2, 6, 10, seed=11)
    out, _ = run_probe("sd3_forward", tmp_path, {"path": str(tmp_path / "original.safetensors")},
                       inputs)
    assert_close(out["out"], diffusers_forward(model, inputs))
