"""fp8 diffusion model weights through `dreamforge serve`: the frontend's default Z-Image Turbo
graph on the tiny model with UNETLoader's weight_dtype fp8_e4m3fn (matrix weights stored in fp8,
upcast per operation), and on a ComfyUI-style scaled fp8 copy of the tiny model file, each gives
an image close to the default one."""
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from comfy_client import ComfyClient
from graph_support import run, same
from e2e_support import install_tiny_split_files
from test_zimage import default_zimage_graph

# fp8 rounds every matrix weight by up to 2^-4 of itself (e4m3) or 2^-3 (e5m2); through three
# sampling steps and the tiny random VAE the 8-bit image moves by 0.16 (e4m3) and 0.32 (e5m2)
# levels on average (measured, at most 4 levels anywhere). Another seed moves it by far more than
# this bound, and so would a lost scale or a wrong upcast.
MEAN_PIXEL_TOLERANCE = 1.5


def mean_difference(a, b):
    return float(np.abs(a.astype(np.float64) - b).mean())


def write_scaled_fp8_copy(source, target):
    """ComfyUI's scaled fp8 format: each matrix weight as float8_e4m3fn over its float32
    "scale_weight" (max|w| / 448), "scale_input" ones, a "scaled_fp8" marker."""
    stored = {}
    for name, tensor in load_file(str(source)).items():
        if not (name.endswith(".weight") and tensor.ndim == 2):
            stored[name] = tensor
            continue
        scale = tensor.float().abs().max() / torch.finfo(torch.float8_e4m3fn).max
        stored[name] = (tensor.float() / scale).to(torch.float8_e4m3fn)
        stored[name.removesuffix("weight") + "scale_weight"] = scale.reshape(())
        stored[name.removesuffix("weight") + "scale_input"] = torch.ones(())
    stored["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    save_file(stored, str(target))


def test_fp8_weights_give_an_image_close_to_the_default(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "zimage")
    models = data_dir / "models" / "diffusion_models"
    write_scaled_fp8_copy(models / "z_image_turbo_bf16.safetensors",
                          models / "z_image_turbo_fp8_scaled.safetensors")
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)

    default = run(client, default_zimage_graph(prefix="default"))
    other_seed = run(client, default_zimage_graph(seed=7, prefix="other"))
    assert mean_difference(other_seed, default) > 4 * MEAN_PIXEL_TOLERANCE
    images = {}
    for weight_dtype in ("fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"):
        graph = default_zimage_graph(prefix=weight_dtype)
        graph["66"]["inputs"]["weight_dtype"] = weight_dtype
        images[weight_dtype] = run(client, graph)
    scaled = default_zimage_graph(prefix="scaled")
    scaled["66"]["inputs"]["unet_name"] = "z_image_turbo_fp8_scaled.safetensors"
    images["scaled file"] = run(client, scaled)

    for name, image in images.items():
        assert image.shape == default.shape
        assert mean_difference(image, default) <= MEAN_PIXEL_TOLERANCE, name
    # No fp8 matrix multiplication here: "_fast" computes exactly as fp8_e4m3fn. A scaled fp8
    # file stays in fp8 under "default" too (as in ComfyUI), its scales those fp8_e4m3fn draws.
    assert same(images["fp8_e4m3fn_fast"], images["fp8_e4m3fn"])
    assert same(images["scaled file"], images["fp8_e4m3fn"])
    client.close()


def test_unknown_weight_dtype_is_refused_at_validation(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "zimage")
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)
    graph = default_zimage_graph(prefix="int4")
    graph["66"]["inputs"]["weight_dtype"] = "int4"
    response = client.queue(graph)
    assert response.status_code == 400
    assert response.json()["node_errors"]["66"]["errors"][0]["type"] == "value_not_in_list"
    client.close()
