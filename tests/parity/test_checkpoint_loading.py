"""Model loading against diffusers: diffusers folders (plain, fp16, sharded, old names) and
single-file checkpoints must give exactly the diffusers state dicts; unsafe and broken inputs are
refused with stable error codes."""
import copy
import hashlib
import json
import shutil

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

import single_file
import tiny_models

COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def expected_tensors(pipe, dtype=None):
    """The pipeline's state dicts under the probe's names ("unet.<key>", ...)."""
    out = {}
    for name in COMPONENTS:
        module = getattr(pipe, name, None)
        if module is None:
            continue
        for key, tensor in module.state_dict().items():
            if key.endswith("position_ids"):
                continue
            if name.startswith("text_encoder") and not key.startswith(("text_model.", "text_proj")):
                key = "text_model." + key
            out[f"{name}.{key}"] = tensor if dtype is None else tensor.to(dtype).float()
    return out


def assert_same_tensors(got, expected):
    assert sorted(got) == sorted(expected)
    for key, tensor in expected.items():
        assert got[key].dtype == torch.float32, key
        assert got[key].shape == tensor.shape, key
        assert torch.equal(got[key], tensor.float()), key


def load(probe, path, vocab=None, dtype=None):
    args = {"path": str(path)}
    if vocab:
        args["clip_vocab_dir"] = str(vocab)
    if dtype:
        args["dtype"] = dtype
    tensors, proc = probe("load_model", args)
    return tensors, json.loads(proc.stdout)


def load_error(probe, path, vocab=None):
    args = {"path": str(path), "clip_vocab_dir": str(vocab or "")}
    _, proc = probe("load_model", args, expect_ok=False)
    assert proc.returncode != 0
    return proc.stderr


def test_folder_matches_diffusers(probe, tiny_pipeline):
    family, pipe, path = tiny_pipeline
    tensors, info = load(probe, path)
    assert_same_tensors(tensors, expected_tensors(pipe))
    assert info["family"] == family
    assert info["prediction"] == tiny_models.prediction_of(family)
    assert info["name"] == path.name
    assert len(info["sha256"]) == 64
    assert info["unet"]["block_out_channels"] == list(pipe.unet.config.block_out_channels)
    assert info["vae"]["layers_per_block"] == pipe.vae.config.layers_per_block
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    assert [e["hidden_act"] for e in info["text_encoders"]] == [
        e.config.hidden_act for e in encoders]
    assert info["tokenizer_dirs"][0] == str(path / "tokenizer")
    assert info["pad_tokens"] == {"sd1": ["<|endoftext|>"], "sd2": ["!"],
                                  "sdxl": ["<|endoftext|>", "!"]}[family]
    if family == "sdxl":
        assert [e["architectures"][0] for e in info["text_encoders"]] == [
            "CLIPTextModel", "CLIPTextModelWithProjection"]


def test_single_file_matches_folder(probe, tiny_pipeline, clip_tokenizer_dir, tmp_path):
    family, pipe, path = tiny_pipeline
    checkpoint = tmp_path / f"{family}_model.safetensors"
    single_file.pipeline_to_single_file(pipe, family, checkpoint)
    from_file, file_info = load(probe, checkpoint, clip_tokenizer_dir)
    from_folder, folder_info = load(probe, path)
    assert_same_tensors(from_file, expected_tensors(pipe))
    assert sorted(from_file) == sorted(from_folder)
    for key in ("family", "prediction", "unet", "vae", "text_encoders", "schedule",
                "requires_aesthetics_score"):
        assert file_info[key] == folder_info[key], key
    assert file_info["name"] == f"{family}_model"
    encoders = len(file_info["text_encoders"])
    assert file_info["tokenizer_dirs"] == [str(clip_tokenizer_dir)] * encoders
    assert file_info["pad_tokens"] == folder_info["pad_tokens"]
    assert file_info["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_single_file_loads_as_float32(probe, tiny_pipeline, tmp_path, dtype):
    family, pipe, _ = tiny_pipeline
    checkpoint = tmp_path / "half.safetensors"
    single_file.pipeline_to_single_file(pipe, family, checkpoint, dtype=dtype)
    tensors, _ = load(probe, checkpoint)
    assert_same_tensors(tensors, expected_tensors(pipe, dtype))


def test_fp16_variant_folder_loads_as_float32(probe, tiny_pipeline, tmp_path):
    family, pipe, path = tiny_pipeline
    target = tmp_path / "fp16"
    shutil.copytree(path, target)
    for name in COMPONENTS:
        module = getattr(pipe, name, None)
        if module is None:
            continue
        for old in (target / name).glob("*.safetensors"):
            old.unlink()
        copy.deepcopy(module).to(torch.float16).save_pretrained(
            target / name, variant="fp16", safe_serialization=True)
    assert list((target / "unet").glob("*.fp16.safetensors"))
    tensors, _ = load(probe, target)
    assert_same_tensors(tensors, expected_tensors(pipe, torch.float16))


def test_sharded_unet_folder(probe, tiny_pipeline, tmp_path):
    family, pipe, path = tiny_pipeline
    target = tmp_path / "sharded"
    shutil.copytree(path, target)
    for old in (target / "unet").glob("*.safetensors"):
        old.unlink()
    pipe.unet.save_pretrained(target / "unet", max_shard_size="200KB", safe_serialization=True)
    assert list((target / "unet").glob("*.safetensors.index.json"))
    assert len(list((target / "unet").glob("*.safetensors"))) > 1
    tensors, info = load(probe, target)
    assert_same_tensors(tensors, expected_tensors(pipe))
    index = next((target / "unet").glob("*.index.json"))
    assert info["sha256"] == hashlib.sha256(index.read_bytes()).hexdigest()


def test_old_vae_attention_names_and_unprefixed_text_keys(probe, tiny_pipeline, tmp_path):
    family, pipe, path = tiny_pipeline
    target = tmp_path / "old_names"
    shutil.copytree(path, target)
    vae_file = target / "vae" / "diffusion_pytorch_model.safetensors"
    old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    vae = {}
    for key, tensor in load_file(str(vae_file)).items():
        for new, legacy in old.items():
            key = key.replace(f"attentions.0.{new}.", f"attentions.0.{legacy}.")
        vae[key] = tensor
    save_file(vae, str(vae_file))
    text_file = target / "text_encoder" / "model.safetensors"
    text = {k.removeprefix("text_model."): v for k, v in load_file(str(text_file)).items()}
    text["embeddings.position_ids"] = torch.arange(77)[None]
    save_file(text, str(text_file))
    tensors, _ = load(probe, target)
    assert_same_tensors(tensors, expected_tensors(pipe))


def test_sd2_prediction_without_metadata(probe, tiny_pipeline, tmp_path):
    """v_pred marker wins; without it SD2 falls back to the norm-bias heuristic."""
    family, pipe, _ = tiny_pipeline
    if family != "sd2":
        pytest.skip("SD2 only")
    marked = tmp_path / "marked.safetensors"
    single_file.pipeline_to_single_file(pipe, family, marked, v_pred=True)
    _, info = load(probe, marked)
    assert info["prediction"] == "v_prediction"

    tensors = single_file.pipeline_to_single_file(pipe, family, tmp_path / "plain.safetensors")
    from safetensors import safe_open
    with safe_open(str(tmp_path / "plain.safetensors"), "pt") as f:
        metadata = {k: v for k, v in f.metadata().items() if k != "dreamforge.scheduler_config"}
    bias = "model.diffusion_model.output_blocks.5.1.transformer_blocks.0.norm1.bias"
    assert bias in tensors
    for spread, prediction in ((0.0, "epsilon"), (0.2, "v_prediction")):
        tensors[bias] = torch.linspace(-spread * 1.7, spread * 1.7, tensors[bias].numel())
        path = tmp_path / f"spread_{spread}.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
        _, info = load(probe, path)
        assert info["prediction"] == prediction


# ---- configs inferred from shapes (no metadata): models shaped like the real families ----

def _text_encoder(cls, hidden_act, seed):
    torch.manual_seed(seed)
    return cls(CLIPTextConfig(bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
                              hidden_size=64, intermediate_size=96, num_attention_heads=1,
                              num_hidden_layers=3, vocab_size=49408, hidden_act=hidden_act,
                              projection_dim=48))


class _Pipe:
    """Just the components, as pipeline_to_single_file reads them."""

    def __init__(self, unet, vae, text_encoder, text_encoder_2=None):
        self.unet, self.vae = unet, vae
        self.text_encoder, self.text_encoder_2 = text_encoder, text_encoder_2


def _real_shaped(family):
    torch.manual_seed(0)
    xl = family == "sdxl"
    unet = UNet2DConditionModel(
        block_out_channels=(64, 128), layers_per_block=1, sample_size=16,
        down_block_types=("DownBlock2D" if xl else "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D" if xl else "CrossAttnUpBlock2D"),
        cross_attention_dim=128 if xl else 64,
        attention_head_dim=8 if family == "sd1" else (1, 2),
        use_linear_projection=family != "sd1",
        transformer_layers_per_block=(1, 2) if xl else 1,
        addition_embed_type="text_time" if xl else None, addition_time_embed_dim=8 if xl else None,
        projection_class_embeddings_input_dim=6 * 8 + 48 if xl else None)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[32, 64, 64],
                        down_block_types=["DownEncoderBlock2D"] * 3,
                        up_block_types=["UpDecoderBlock2D"] * 3, latent_channels=4,
                        layers_per_block=2)
    if family == "sd1":
        return _Pipe(unet, vae, _text_encoder(CLIPTextModel, "quick_gelu", 1))
    if family == "sd2":
        return _Pipe(unet, vae, _text_encoder(CLIPTextModel, "gelu", 1))
    return _Pipe(unet, vae, _text_encoder(CLIPTextModel, "quick_gelu", 1),
                 _text_encoder(CLIPTextModelWithProjection, "gelu", 2))


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_single_file_config_inferred_from_shapes(probe, tmp_path, family):
    pipe = _real_shaped(family)
    checkpoint = tmp_path / "model.safetensors"
    single_file.pipeline_to_single_file(pipe, family, checkpoint, metadata=False,
                                        vae_prefix="vae." if family == "sd2" else
                                        "first_stage_model.")
    tensors, info = load(probe, checkpoint)
    assert_same_tensors(tensors, expected_tensors(pipe))
    assert info["family"] == family
    assert info["prediction"] == "epsilon"
    unet, want = info["unet"], pipe.unet.config
    for key in ("block_out_channels", "down_block_types", "up_block_types", "layers_per_block",
                "cross_attention_dim", "use_linear_projection", "in_channels", "out_channels"):
        assert unet[key] == (list(want[key]) if isinstance(want[key], tuple) else want[key]), key
    heads = [8, 8] if family == "sd1" else [1, 2]
    assert unet["attention_head_dim"] == heads
    assert unet["transformer_layers_per_block"] == ([1, 2] if family == "sdxl" else [1, 1])
    if family == "sdxl":
        assert unet["addition_embed_type"] == "text_time"
        assert unet["addition_time_embed_dim"] == 8
        assert unet["projection_class_embeddings_input_dim"] == 96
    assert info["vae"]["block_out_channels"] == [32, 64, 64]
    assert info["vae"]["layers_per_block"] == 2
    assert info["vae"]["scaling_factor"] == (0.13025 if family == "sdxl" else 0.18215)
    encoders = info["text_encoders"]
    assert [e["num_hidden_layers"] for e in encoders] == [3] * len(encoders)
    assert [e["num_attention_heads"] for e in encoders] == [1] * len(encoders)
    assert [e["hidden_act"] for e in encoders] == (
        ["quick_gelu", "gelu"] if family == "sdxl" else
        ["gelu"] if family == "sd2" else ["quick_gelu"])
    if family == "sdxl":
        assert encoders[1]["projection_dim"] == 48
        assert encoders[1]["architectures"] == ["CLIPTextModelWithProjection"]


# ---- refused inputs ----

class _RunsCode:
    def __reduce__(self):
        import os
        return os.system, ("true",)


def test_pickles_that_would_run_code_are_refused(probe, tmp_path):
    for name in ("model.ckpt", "model.pt", "model.pth", "model.bin"):
        path = tmp_path / name
        torch.save({"state_dict": {"w": torch.zeros(1), "hook": _RunsCode()}}, str(path))
        stderr = load_error(probe, path)
        assert "error[unsafe_format]" in stderr and "system" in stderr, stderr


def test_folder_with_only_bin_weights_loads_them(probe, tiny_pipeline, tmp_path):
    family, pipe, path = tiny_pipeline
    target = tmp_path / "bin_folder"
    shutil.copytree(path, target)
    for component in ("unet", "vae"):
        for old in (target / component).glob("*.safetensors"):
            old.unlink()
        getattr(pipe, component).save_pretrained(target / component, safe_serialization=False)
    assert list((target / "unet").glob("*.bin"))
    tensors, _ = load(probe, target)
    assert_same_tensors(tensors, expected_tensors(pipe))


def test_missing_and_unknown_inputs(probe, tmp_path):
    assert "error[model_not_found]" in load_error(probe, tmp_path / "nope.safetensors")
    (tmp_path / "folder").mkdir()
    assert "error[unsupported]" in load_error(probe, tmp_path / "folder")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    assert "error[corrupt_file]" in load_error(probe, garbage)
    truncated = tmp_path / "truncated.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(32, 4, 3, 3)},
              str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:-100])
    assert "error[corrupt_file]" in load_error(probe, truncated)
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8)},
              str(lora))
    stderr = load_error(probe, lora)
    assert "error[unsupported]" in stderr and "lora_unet" in stderr, stderr


def test_single_file_missing_tensor_is_corrupt(probe, tiny_pipeline, tmp_path):
    family, pipe, _ = tiny_pipeline
    tensors = single_file.pipeline_to_single_file(pipe, family, tmp_path / "full.safetensors")
    from safetensors import safe_open
    with safe_open(str(tmp_path / "full.safetensors"), "pt") as f:
        metadata = f.metadata()
    del tensors["model.diffusion_model.out.2.bias"]
    path = tmp_path / "partial.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    stderr = load_error(probe, path)
    assert "error[corrupt_file]" in stderr and "conv_out.bias" in stderr, stderr
