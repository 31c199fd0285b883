"""`dreamforge model create-tiny`: the written test models load and run in diffusers, and their
tensors are exactly the ones diffusers and transformers build from the same configs."""
import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open

FAMILIES = ("sd1", "sd2", "sdxl")

torch.set_grad_enabled(False)


@pytest.fixture(scope="module", params=FAMILIES)
def tiny_model(request, dreamforge, tmp_path_factory):
    """(family, path) of a test model written by the CLI."""
    family = request.param
    path = tmp_path_factory.mktemp(f"tiny_{family}") / "model"
    proc = dreamforge("model", "create-tiny", path, "--family", family, "--seed", 1)
    assert proc.stdout.strip() == os.path.abspath(path)
    return family, path


def text_encoder_classes(family):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection
    classes = {"text_encoder": CLIPTextModel}
    if family == "sdxl":
        classes["text_encoder_2"] = CLIPTextModelWithProjection
    return classes


def file_tensors(path):
    with safe_open(str(path), "pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}


def comparable(state):
    """Tensors by name, without the "text_model." prefix that some transformers versions drop from
    CLIPTextModel state dicts, and without the position_ids buffer some versions keep."""
    return {key.removeprefix("text_model."): value for key, value in state.items()
            if not key.endswith("position_ids")}


def shapes(state):
    return {key: list(value.shape) for key, value in comparable(state).items()}


def test_labelled_as_test_model(tiny_model):
    family, path = tiny_model
    index = json.loads((path / "model_index.json").read_text())
    assert index["dreamforge_test_model"] is True
    assert index["_class_name"] == ("StableDiffusionXLPipeline" if family == "sdxl"
                                    else "StableDiffusionPipeline")
    assert "random" in (path / "README.txt").read_text()


def test_diffusion_components_match_diffusers(tiny_model):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    _, path = tiny_model
    for name, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL)):
        written = file_tensors(path / name / "diffusion_pytorch_model.safetensors")
        built = cls.from_config(cls.load_config(str(path / name)))
        assert shapes(written) == shapes(built.state_dict()), name

        loaded, info = cls.from_pretrained(str(path), subfolder=name, output_loading_info=True,
                                           local_files_only=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], (name, info)
        assert not info["mismatched_keys"], (name, info)
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, written[key]), (name, key)


def test_text_encoders_match_transformers(tiny_model):
    from transformers import CLIPTextConfig
    family, path = tiny_model
    for name, cls in text_encoder_classes(family).items():
        written = file_tensors(path / name / "model.safetensors")
        assert all(key.startswith(("text_model.", "text_projection.")) for key in written), name
        built = cls(CLIPTextConfig.from_pretrained(str(path / name)))
        assert shapes(written) == shapes(built.state_dict()), name

        loaded, info = cls.from_pretrained(str(path / name), output_loading_info=True,
                                           local_files_only=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], (name, info)
        assert not info["mismatched_keys"], (name, info)
        expected = comparable(written)
        for key, value in comparable(loaded.state_dict()).items():
            assert torch.equal(value, expected[key]), (name, key)


def test_pipeline_generates_finite_varied_image(tiny_model):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    family, path = tiny_model
    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    pipe = cls.from_pretrained(str(path), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a red fox in the snow", num_inference_steps=2, height=64, width=64,
                 generator=torch.Generator("cpu").manual_seed(0), output_type="np").images[0]
    assert image.shape == (64, 64, 3)
    assert np.isfinite(image).all()
    assert len(np.unique(np.round(image * 255).astype(np.uint8))) > 8


def test_same_seed_writes_same_bytes(dreamforge, tmp_path):
    for name in ("a", "b"):
        dreamforge("model", "create-tiny", tmp_path / name, "--family", "sd1", "--seed", 42)
    for component in ("unet/diffusion_pytorch_model.safetensors",
                      "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        first, second = (tmp_path / name / component for name in ("a", "b"))
        assert first.read_bytes() == second.read_bytes(), component


def test_replaces_an_earlier_test_model(dreamforge, tmp_path):
    dreamforge("model", "create-tiny", tmp_path / "m", "--family", "sdxl")
    dreamforge("model", "create-tiny", tmp_path / "m", "--family", "sd1")
    index = json.loads((tmp_path / "m" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert not (tmp_path / "m" / "text_encoder_2").exists()


def test_refuses_a_directory_with_other_files(dreamforge, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    proc = dreamforge("model", "create-tiny", tmp_path, "--family", "sd1", check=False)
    assert proc.returncode == 1
    assert "refusing to overwrite" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_rejects_an_unknown_family(dreamforge, tmp_path):
    proc = dreamforge("model", "create-tiny", tmp_path / "m", "--family", "sd4", check=False)
    assert proc.returncode != 0
    assert "sd4" in proc.stderr
    assert not (tmp_path / "m").exists()
