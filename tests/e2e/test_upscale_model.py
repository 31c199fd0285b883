"""UpscaleModelLoader and ImageUpscaleWithModel through `dreamforge serve`: a hires-fix graph with
the tiny upscaler from `dreamforge model create-tiny --kind upscaler`, an uploaded image upscaled
as spandrel upscales it, and a file of another architecture refused while the graph runs."""
import pathlib
import sys

import numpy as np
import torch
from PIL import Image

from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import finish, outcome, pixels, with_nodes
from service_support import comfy_graph

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parity"))

HIRES_SIZE = 96


def hires_fix_graph(upscaler):
    """Text to image at 64x64, the decoded image upscaled x4 by the model, scaled to 96x96,
    encoded and sampled again at denoise 0.5; the model's upscale is saved too."""
    return with_nodes(comfy_graph(prefix="hires"), {
        "10": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": upscaler}},
        "11": {"class_type": "ImageUpscaleWithModel",
               "inputs": {"upscale_model": ["10", 0], "image": ["8", 0]}},
        "12": {"class_type": "ImageScale",
               "inputs": {"image": ["11", 0], "upscale_method": "nearest-exact",
                          "width": HIRES_SIZE, "height": HIRES_SIZE, "crop": "disabled"}},
        "13": {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["4", 2]}},
        "14": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": 2, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 0.5, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["13", 0]}},
        "15": {"class_type": "VAEDecode", "inputs": {"samples": ["14", 0], "vae": ["4", 2]}},
        "16": {"class_type": "SaveImage", "inputs": {"filename_prefix": "upscaled", "images": ["11", 0]}},
    }, **{"9.images": ["15", 0]})


def test_hires_fix_with_the_tiny_upscaler(start_service, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service(data_dir=data_dir)
    run_dreamforge("model", "create-tiny", "--kind", "upscaler", "--family", "sd1",
                   "--data-dir", str(data_dir), "--name", "tiny-x4")
    info = service.get("/object_info/UpscaleModelLoader").json()["UpscaleModelLoader"]
    assert "tiny-x4.safetensors" in info["input"]["required"]["model_name"][0]
    assert info["output"] == ["UPSCALE_MODEL"]

    client = ComfyClient(service)
    prompt_id, messages = finish(client, hires_fix_graph("tiny-x4.safetensors"))
    assert not [m for m in messages if m["type"] == "execution_error"]
    executed = {m["data"]["node"] for m in messages if m["type"] == "executing" and m["data"]["node"]}
    assert {"10", "11", "14"} <= executed
    sizes = sorted(pixels(png).shape for png in client.images(prompt_id))
    assert sizes == [(HIRES_SIZE, HIRES_SIZE, 3), (256, 256, 3)]
    client.close()


def test_uploaded_image_upscales_as_spandrel_does(start_service, tmp_path):
    import tiny_upscalers
    data_dir = tmp_path / "data"
    network = tiny_upscalers.compact(seed=3, scale=2)
    tiny_upscalers.save(network.state_dict(), data_dir / "models" / "upscale_models" / "compact.safetensors",
                        prefix="params.")
    (data_dir / "input").mkdir(parents=True)
    photo = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(photo).save(data_dir / "input" / "photo.png")
    service = start_service(data_dir=data_dir)
    client = ComfyClient(service)
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "compact.safetensors"}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x2", "images": ["3", 0]}},
    }
    image, error = outcome(client, graph)
    assert error is None, error
    with torch.no_grad():
        source = torch.from_numpy(photo.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        expected = network(source).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    expected = np.rint(expected * 255).astype(np.int16)
    assert image.shape == (80, 112, 3)
    assert int(np.abs(image - expected).max()) <= 1
    client.close()


def test_other_architectures_fail_with_a_clear_error(start_service, tmp_path):
    from safetensors.torch import save_file
    data_dir = tmp_path / "data"
    folder = data_dir / "models" / "upscale_models"
    folder.mkdir(parents=True)
    save_file({"layers.0.residual_group.blocks.0.norm1.weight": torch.ones(4)}, str(folder / "swinir.safetensors"))
    service = start_service(data_dir=data_dir)
    client = ComfyClient(service)
    graph = with_nodes(comfy_graph(prefix="refused"), {
        "10": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "swinir.safetensors"}},
        "11": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["10", 0], "image": ["8", 0]}},
    }, **{"9.images": ["11", 0]})
    image, error = outcome(client, graph)
    assert image is None
    assert "unsupported upscale model architecture" in error
    client.close()
