"""The diffusers pipeline folders `create-tiny --kind pipeline` writes for FLUX.1 (dev, schnell),
SD3.5 and Z-Image load in diffusers' DiffusionPipeline.from_pretrained as the family's pipeline,
every weight of the folder in the loaded components, and hold the same weights as the tiny split
files of the same seed (`--kind split`): text encoders tensor for tensor (SD3's CLIP-L gaining an
identity text_projection), the VAE as diffusers' own converter reads the split VAE, and the
transformer: diffusers' FLUX.1 and SD3 transformers from the folder run as the engine's on the
split file; Z-Image's transformer/ runs in the engine as its split file."""
import subprocess

import pytest
import torch
from diffusers import DiffusionPipeline
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors.torch import load_file

from parity_support import BIN, max_abs_diff
from test_flux_transformer_parity import GUIDANCE as FLUX_GUIDANCE
from test_flux_transformer_parity import TEXT_TOKENS as FLUX_TEXT_TOKENS
from test_flux_transformer_parity import diffusers_velocity as flux_diffusers_velocity
from test_sd3_transformer_parity import diffusers_forward as sd3_diffusers_forward

SEED = 7
TOLERANCE = 1e-4  # relative to the output's scale
PIPELINES = {"flux": "FluxPipeline", "flux-schnell": "FluxPipeline",
             "sd3": "StableDiffusion3Pipeline", "zimage": "ZImagePipeline"}
# Split text encoder files (models/text_encoders) -> the folder's text encoder.
TEXT_ENCODERS = {
    "flux": {"clip_l.safetensors": "text_encoder", "t5xxl_fp16.safetensors": "text_encoder_2"},
    "sd3": {"clip_l.safetensors": "text_encoder", "clip_g.safetensors": "text_encoder_2",
            "t5xxl_fp16.safetensors": "text_encoder_3"},
    "zimage": {"qwen_3_4b.safetensors": "text_encoder"},
}
TEXT_ENCODERS["flux-schnell"] = TEXT_ENCODERS["flux"]
VAE_FILES = {"flux": "ae.safetensors", "flux-schnell": "ae.safetensors",
             "sd3": "sd3_vae.safetensors", "zimage": "ae.safetensors"}
TRANSFORMER_FILES = {"flux": "flux1-dev.safetensors", "flux-schnell": "flux1-schnell.safetensors",
                     "sd3": "sd3.5_medium.safetensors", "zimage": "z_image_turbo_bf16.safetensors"}


def create_tiny(*args):
    subprocess.run([str(BIN / "dreamforge"), "model", "create-tiny", "--seed", str(SEED), *args],
                   check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module", params=list(PIPELINES))
def written(request, tmp_path_factory):
    """(family, models root of the split files, pipeline folder) of the same seed."""
    family = request.param
    data_dir = tmp_path_factory.mktemp(f"dit_{family}")
    create_tiny("--data-dir", str(data_dir), "--family", family, "--kind", "split")
    folder = data_dir / "pipeline"
    create_tiny(str(folder), "--family", family, "--kind", "pipeline")
    return family, data_dir / "models", folder


@pytest.fixture(scope="module")
def pipeline(written):
    return DiffusionPipeline.from_pretrained(str(written[2]), torch_dtype=torch.float32)


def assert_same_tensors(actual, expected, what):
    assert sorted(actual) == sorted(expected), what
    for name, tensor in expected.items():
        assert actual[name].shape == tensor.shape, f"{what}: {name}"
        assert torch.equal(actual[name].float(), tensor.float()), f"{what}: {name}"


def loaded_name(name, loaded):
    """The name a stored tensor has in a loaded model's state dict (transformers drops the base
    model's prefix: Qwen3Model's "model.", CLIPTextModel's "text_model.")."""
    for prefix in ("", "model.", "text_model."):
        if name.startswith(prefix) and name[len(prefix):] in loaded:
            return name[len(prefix):]
    return name


def test_diffusers_loads_every_weight_of_the_folder(written, pipeline):
    family, _, folder = written
    assert type(pipeline).__name__ == PIPELINES[family]
    components = {"transformer": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model"}
    components.update({name: "model" for name in TEXT_ENCODERS[family].values()})
    for component, stem in components.items():
        stored = load_file(str(folder / component / f"{stem}.safetensors"))
        loaded = getattr(pipeline, component).state_dict()
        read = {loaded_name(name, loaded): tensor for name, tensor in stored.items()}
        for name, tensor in read.items():
            assert name in loaded, f"{component}: diffusers does not read {name}"
            assert torch.equal(loaded[name].float(), tensor.float()), f"{component}: {name}"
        stored_storage = {loaded[name].data_ptr() for name in read}
        missing = {name for name in set(loaded) - set(read)  # tied weights share storage
                   if loaded[name].data_ptr() not in stored_storage}
        assert not missing, f"{component}: diffusers initialised {sorted(missing)[:5]} itself"


def test_text_encoders_are_the_split_files(written):
    family, models, folder = written
    for split_name, component in TEXT_ENCODERS[family].items():
        split = load_file(str(models / "text_encoders" / split_name))
        stored = load_file(str(folder / component / "model.safetensors"))
        if family == "sd3" and split_name == "clip_l.safetensors":
            projection = stored.pop("text_projection.weight")
            assert torch.equal(projection, torch.eye(projection.shape[0]))
        assert_same_tensors(stored, split, component)


def test_vae_is_the_split_file(written, pipeline):
    family, models, _ = written
    split = load_file(str(models / "vae" / VAE_FILES[family]))
    expected = convert_ldm_vae_checkpoint(split, pipeline.vae.config)
    assert_same_tensors(pipeline.vae.state_dict(), expected, "vae")


def flow_inputs(family, config):
    """Random transformer inputs for the family's tiny transformer `config` (diffusers')."""
    generator = torch.Generator().manual_seed(0)
    inputs = {"x": torch.randn(1, 16, 8, 8, generator=generator)}
    if family == "zimage":
        inputs["timestep"] = torch.tensor([0.6])
        inputs["context"] = torch.randn(1, 7, config.cap_feat_dim, generator=generator)
        return inputs
    # SD3 takes the scheduler's timestep (sigma * 1000), FLUX.1 the sigma.
    inputs["timestep"] = torch.tensor([600.0 if family == "sd3" else 0.6])
    inputs["context"] = torch.randn(1, FLUX_TEXT_TOKENS, config.joint_attention_dim,
                                    generator=generator)
    inputs["pooled"] = torch.randn(1, config.pooled_projection_dim, generator=generator)
    if family == "flux":
        inputs["guidance"] = torch.tensor([FLUX_GUIDANCE])
    return inputs


def test_transformer_runs_as_the_split_file(written, pipeline, probe):
    """diffusers' transformer from the folder against the engine's on the split file (Z-Image:
    the engine's on the folder's transformer/, which diffusers' own parity test covers)."""
    family, models, folder = written
    split_file = str(models / "diffusion_models" / TRANSFORMER_FILES[family])
    inputs = flow_inputs(family, pipeline.transformer.config)
    if family == "zimage":
        expected, _ = probe("dit_forward", {"weights": str(folder / "transformer")}, inputs)
        expected = expected["out"]
        actual, _ = probe("dit_forward", {"weights": split_file}, inputs)
    elif family == "sd3":
        expected = sd3_diffusers_forward(pipeline.transformer, inputs)
        actual, _ = probe("sd3_forward", {"path": split_file}, inputs)
    else:
        with torch.no_grad():
            expected = flux_diffusers_velocity(pipeline.transformer, inputs)
        actual, _ = probe("flux_forward", {"weights": split_file}, inputs)
    scale = max(1.0, expected.abs().max().item())
    assert actual["out"].shape == expected.shape
    assert max_abs_diff(actual["out"], expected) <= TOLERANCE * scale
