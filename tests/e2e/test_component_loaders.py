"""UNETLoader, CLIPLoader / DualCLIPLoader and VAELoader through `dreamforge serve`: a tiny
single-file checkpoint split into a UNet file (models/diffusion_models), text encoder files
(models/text_encoders) and a VAE file (models/vae) gives the image CheckpointLoaderSimple gives on
the whole file; weight dtypes and clip types the engine cannot run are refused clearly."""
import pathlib
import sys

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from comfy_client import ComfyClient
from graph_support import outcome, run, same
from service_support import comfy_graph

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parity"))

UNET_PREFIX = "model.diffusion_model."
# Where each family's single file keeps its text encoders, and the metadata key of each config.
TEXT_ENCODERS = {
    "sd1": [("cond_stage_model.transformer.", "dreamforge.text_encoder_config")],
    "sd2": [("cond_stage_model.model.", "dreamforge.text_encoder_config")],
    "sdxl": [("conditioner.embedders.0.transformer.", "dreamforge.text_encoder_config"),
             ("conditioner.embedders.1.model.", "dreamforge.text_encoder_2_config")],
}


def write_checkpoint(family, path, work_dir):
    """A tiny random-weight single-file checkpoint of `family` (configs in its metadata)."""
    import single_file
    import tiny_models
    pipe, _ = tiny_models.build(family, work_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    single_file.pipeline_to_single_file(pipe, family, path)


def read_checkpoint(path):
    with safe_open(str(path), "pt") as file:
        return {key: file.get_tensor(key) for key in file.keys()}, file.metadata()


def part(tensors, prefix):
    return {key[len(prefix):]: tensor for key, tensor in tensors.items() if key.startswith(prefix)}


def save(tensors, path, metadata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: tensor.contiguous() for key, tensor in tensors.items()}, str(path),
              metadata=metadata)


def split_checkpoint(family, checkpoint, models_dir):
    """Writes the checkpoint's UNet (bare LDM names), VAE (LDM names) and text encoders (as the
    file stores them, without its prefix) as files of their own; returns the encoder file names."""
    tensors, metadata = read_checkpoint(checkpoint)
    unet_metadata = {key: metadata[key] for key in
                     ("dreamforge.unet_config", "dreamforge.scheduler_config")}
    save(part(tensors, UNET_PREFIX), models_dir / "diffusion_models" / f"{family}_unet.safetensors",
         unet_metadata)
    save(part(tensors, "first_stage_model."), models_dir / "vae" / f"{family}_vae.safetensors")
    names = []
    for index, (prefix, config_key) in enumerate(TEXT_ENCODERS[family]):
        name = f"{family}_encoder_{index + 1}.safetensors"
        save(part(tensors, prefix), models_dir / "text_encoders" / name,
             {"dreamforge.text_encoder_config": metadata[config_key]})
        names.append(name)
    return names


def component_graph(family, encoders, prefix):
    """comfy_graph with its checkpoint replaced by the component loaders."""
    graph = comfy_graph(prefix=prefix)
    graph["4"] = {"class_type": "UNETLoader",
                  "inputs": {"unet_name": f"{family}_unet.safetensors", "weight_dtype": "default"}}
    if len(encoders) == 1:
        graph["10"] = {"class_type": "CLIPLoader",
                       "inputs": {"clip_name": encoders[0], "type": "stable_diffusion"}}
    else:  # the CLIP-G file first: DualCLIPLoader takes the pair in either order
        graph["10"] = {"class_type": "DualCLIPLoader",
                       "inputs": {"clip_name1": encoders[1], "clip_name2": encoders[0],
                                  "type": "sdxl"}}
    graph["11"] = {"class_type": "VAELoader", "inputs": {"vae_name": f"{family}_vae.safetensors"}}
    graph["6"]["inputs"]["clip"] = ["10", 0]
    graph["7"]["inputs"]["clip"] = ["10", 0]
    graph["8"]["inputs"]["vae"] = ["11", 0]
    return graph


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_component_files_give_the_checkpoints_image(start_service, tmp_path, family):
    data_dir = tmp_path / "data"
    models_dir = data_dir / "models"
    checkpoint = models_dir / "checkpoints" / f"tiny-{family}.safetensors"
    write_checkpoint(family, checkpoint, tmp_path / "pipe")
    encoders = split_checkpoint(family, checkpoint, models_dir)
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)

    info = service.get("/object_info/UNETLoader").json()["UNETLoader"]
    assert f"{family}_unet.safetensors" in info["input"]["required"]["unet_name"][0]
    whole = run(client, comfy_graph(ckpt=checkpoint.name, prefix="whole"))
    split = run(client, component_graph(family, encoders, "split"))
    assert same(whole, split)
    client.close()


def test_clip_types_the_engine_cannot_run_are_refused_and_fp8_unets_run(start_service, tmp_path):
    data_dir = tmp_path / "data"
    models_dir = data_dir / "models"
    checkpoint = models_dir / "checkpoints" / "tiny-sd1.safetensors"
    write_checkpoint("sd1", checkpoint, tmp_path / "pipe")
    encoders = split_checkpoint("sd1", checkpoint, models_dir)
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)

    info = service.get("/object_info/CLIPLoader").json()["CLIPLoader"]["input"]
    assert info["required"]["type"][0][:2] == ["stable_diffusion", "stable_cascade"]
    assert "lumina2" in info["required"]["type"][0]
    assert info["optional"]["device"] == [["default", "cpu"], {"advanced": True}]

    fp8 = component_graph("sd1", encoders, "fp8")
    fp8["4"]["inputs"]["weight_dtype"] = "fp8_e4m3fn"
    image, error = outcome(client, fp8)
    assert error is None and image is not None, error

    cascade = component_graph("sd1", encoders, "cascade")
    cascade["10"]["inputs"]["type"] = "stable_cascade"
    _, error = outcome(client, cascade)
    assert "type 'stable_cascade' is not supported" in error

    on_cpu = component_graph("sd1", encoders, "cpu")
    on_cpu["10"]["inputs"]["device"] = "cpu"
    image, error = outcome(client, on_cpu)
    assert error is None and image is not None, error
    client.close()
