"""PyTorch checkpoints (torch.save's zip and legacy layouts, as .pth/.ckpt/.pt/.bin) read by the
engine's restricted unpickler: the tensors must equal what torch.load gives, a tiny single-file
checkpoint saved as .ckpt must load and generate exactly like its .safetensors twin, and A1111
embeddings and hypernetworks flatten to the names their safetensors forms use."""
import json
import pathlib
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

import single_file
import tiny_models
from parity_support import BIN

FORMS = [("zip", True), ("legacy", False)]
EXTENSIONS = [".pth", ".ckpt", ".pt", ".bin"]


def save(obj, path, zip_form):
    torch.save(obj, str(path), _use_new_zipfile_serialization=zip_form)
    return path


def read_weights(probe, path, dtype="stored"):
    """(tensors, {"format", "metadata"}) as the engine reads `path`."""
    tensors, proc = probe("read_weights", {"path": str(path), "dtype": dtype})
    return tensors, json.loads(proc.stdout.strip().splitlines()[-1])


def assert_equal_tensors(got, expected):
    assert sorted(got) == sorted(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype, name
        assert torch.equal(got[name], tensor.contiguous()), name


def varied_state_dict():
    """Every storage dtype the reader maps, views sharing one storage, a Parameter and nesting."""
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    return {
        "f32": base,
        "f16": torch.randn(3, 5).half(),
        "bf16": torch.randn(7).bfloat16(),
        "f64": torch.randn(2, 2).double(),
        "i64": torch.arange(5),
        "i32": torch.arange(4, dtype=torch.int32),
        "i16": torch.arange(3, dtype=torch.int16),
        "i8": torch.tensor([-3, 2], dtype=torch.int8),
        "u8": torch.tensor([250, 1], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "transposed": base.t(),
        "sliced": base[1:3, 2:5],
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(torch.randn(2, 3), requires_grad=False),
        "block": {"inner": {"weight": torch.randn(2)}},
    }


def flat(state):
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in flat(value).items()})
        else:
            out[key] = value.detach()
    return out


@pytest.mark.parametrize("form,zip_form", FORMS)
@pytest.mark.parametrize("extension", EXTENSIONS)
def test_tensors_equal_what_torch_load_gives(probe, tmp_path, form, zip_form, extension):
    state = varied_state_dict()
    path = save(state, tmp_path / f"weights{extension}", zip_form)
    tensors, info = read_weights(probe, path)
    assert info["format"] == f"pytorch-{form}"
    assert_equal_tensors(tensors, flat(torch.load(str(path), weights_only=True)))


@pytest.mark.parametrize("form,zip_form", FORMS)
def test_wrapped_state_dicts_unwrap_and_keep_scalars_as_metadata(probe, tmp_path, form, zip_form):
    weights = {"a.weight": torch.randn(3, 3), "a.bias": torch.randn(3)}
    for wrapper in ("state_dict", "params_ema", "params"):
        path = save({wrapper: weights, "global_step": 1234, "epoch": np.int64(7),
                     "loss": np.float64(0.25), "pytorch-lightning_version": "1.9.0"},
                    tmp_path / f"{wrapper}.ckpt", zip_form)
        tensors, info = read_weights(probe, path)
        assert_equal_tensors(tensors, weights)
        assert info["metadata"]["global_step"] == "1234"
        assert info["metadata"]["epoch"] == "7" and info["metadata"]["loss"] == "0.25"
        assert info["metadata"]["pytorch-lightning_version"] == "1.9.0"


@pytest.mark.parametrize("form,zip_form", FORMS)
def test_float32_loading_converts_reduced_precision(probe, tmp_path, form, zip_form):
    state = {"h": torch.randn(4, 4).half(), "b": torch.randn(5).bfloat16(), "i": torch.arange(3)}
    tensors, _ = read_weights(probe, save(state, tmp_path / "w.pt", zip_form), dtype="float32")
    assert torch.equal(tensors["h"], state["h"].float())
    assert torch.equal(tensors["b"], state["b"].float())
    assert tensors["i"].dtype == torch.int64


@pytest.mark.parametrize("form,zip_form", FORMS)
def test_embedding_and_hypernetwork_files_flatten_to_their_safetensors_names(probe, tmp_path, form, zip_form):
    vectors = torch.randn(2, 32)
    embedding = {"string_to_token": {"*": 265}, "string_to_param": {"*": vectors},
                 "name": "tiny", "step": 100, "sd_checkpoint": "abc", "sd_checkpoint_name": "m"}
    tensors, _ = read_weights(probe, save(embedding, tmp_path / "e.pt", zip_form))
    assert_equal_tensors(tensors, {"string_to_param.*": vectors})

    key_mlp = {"linear.0.weight": torch.randn(4, 2), "linear.0.bias": torch.randn(4)}
    value_mlp = {"linear.0.weight": torch.randn(4, 2), "linear.0.bias": torch.randn(4)}
    hypernetwork = {2: [key_mlp, value_mlp], "activation_func": "relu", "is_layer_norm": False,
                    "layer_structure": [1, 2, 1], "name": "hn"}
    tensors, info = read_weights(probe, save(hypernetwork, tmp_path / "h.pt", zip_form))
    expected = {f"2.0.{k}": v for k, v in key_mlp.items()} | {f"2.1.{k}": v for k, v in value_mlp.items()}
    assert_equal_tensors(tensors, expected)
    assert info["metadata"]["activation_func"] == "relu"
    assert info["metadata"]["is_layer_norm"] == "False"


# ---- a real tiny checkpoint ----

@pytest.fixture(scope="module")
def tiny_sd1_twins(tmp_path_factory):
    """A tiny sd1 single file as .safetensors and as SD's .ckpt ({"state_dict": ...}) in the zip
    and legacy layouts. Tiny shapes need the engine's configs, which the .ckpt carries as strings
    beside its state dict (read as metadata, like the safetensors header's)."""
    directory = tmp_path_factory.mktemp("pickle_twins")
    pipe, _ = tiny_models.build("sd1", directory / "pipe")
    safetensors = directory / "tiny.safetensors"
    single_file.pipeline_to_single_file(pipe, "sd1", safetensors)
    with safe_open(str(safetensors), "pt") as stored:
        metadata = stored.metadata()
    checkpoint = {"state_dict": load_file(str(safetensors)), "global_step": 1, **metadata}
    return safetensors, {form: save(checkpoint, directory / f"tiny_{form}.ckpt", zip_form)
                         for form, zip_form in FORMS}


@pytest.mark.parametrize("form", ["zip", "legacy"])
def test_a_ckpt_checkpoint_loads_the_same_tensors_as_its_safetensors_twin(probe, tiny_sd1_twins, form):
    safetensors, checkpoints = tiny_sd1_twins
    from_ckpt, ckpt_proc = probe("load_model", {"path": str(checkpoints[form])})
    from_safetensors, safetensors_proc = probe("load_model", {"path": str(safetensors)})
    assert sorted(from_ckpt) == sorted(from_safetensors)
    for name, tensor in from_safetensors.items():
        assert torch.equal(from_ckpt[name], tensor), name
    ckpt_info, safetensors_info = json.loads(ckpt_proc.stdout), json.loads(safetensors_proc.stdout)
    for key in ("family", "prediction", "unet", "vae", "text_encoders"):
        assert ckpt_info[key] == safetensors_info[key], key


def generate(path, out):
    subprocess.run([str(BIN / "dreamforge"), "generate", "a red cube", "--model", str(path),
                    "--steps", "3", "--seed", "7", "--width", "64", "--height", "64",
                    "--device", "cpu", "--out", str(out)], check=True, capture_output=True, text=True)
    images = sorted(pathlib.Path(out).glob("*.png"))
    assert len(images) == 1
    return np.asarray(Image.open(images[0]), dtype=np.int16)


@pytest.mark.parametrize("form", ["zip", "legacy"])
def test_a_ckpt_checkpoint_generates_the_same_image_as_its_safetensors_twin(tiny_sd1_twins, tmp_path, form):
    safetensors, checkpoints = tiny_sd1_twins
    expected = generate(safetensors, tmp_path / "from_safetensors")
    got = generate(checkpoints[form], tmp_path / "from_ckpt")
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1
