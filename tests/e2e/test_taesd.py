"""VAELoader's Tiny AutoEncoder through `dreamforge serve`: with TAESD's encoder and decoder files in
models/vae_approx, /object_info offers "taesd", graphs decode and encode with it, and live previews
are TAESD's decodings."""
import io
import json
import pathlib
import sys

import numpy as np
import torch
from PIL import Image

from comfy_client import ComfyClient
from graph_support import run, single_image
from service_support import comfy_graph

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parity"))


def start_with_taesd(start_service, tmp_path):
    """A service whose models/vae_approx holds random TAESD files; returns (service, model)."""
    import tiny_taesd
    data_dir = tmp_path / "data"
    model = tiny_taesd.build(seed=0)
    tiny_taesd.save_taesd(model, data_dir / "models" / "vae_approx")
    return start_service(data_dir=data_dir), model


def taesd_graph(prefix):
    """comfy_graph decoding with VAELoader's "taesd"."""
    graph = comfy_graph(prefix=prefix)
    graph["11"] = {"class_type": "VAELoader", "inputs": {"vae_name": "taesd"}}
    graph["8"]["inputs"]["vae"] = ["11", 0]
    return graph


def test_object_info_offers_taesd(start_service, tmp_path):
    service, _ = start_with_taesd(start_service, tmp_path)
    info = service.get("/object_info/VAELoader").json()["VAELoader"]
    names = info["input"]["required"]["vae_name"][0]
    assert "taesd" in names
    assert "taesdxl" not in names


def test_graph_decodes_with_taesd(start_service, tmp_path):
    service, model = start_with_taesd(start_service, tmp_path)
    client = ComfyClient(service)
    sampled = run(client, taesd_graph("taesd"))
    assert sampled.shape == (64, 64, 3)

    # An empty latent decodes to the reference network's image of zeros.
    graph = taesd_graph("empty")
    graph["8"]["inputs"]["samples"] = ["5", 0]
    empty = run(client, graph)
    with torch.no_grad():
        expected = ((model.decode(torch.zeros(1, 4, 8, 8)).sample + 1) / 2).clamp(0, 1)
    expected = np.rint(expected[0].permute(1, 2, 0).numpy() * 255).astype(np.int16)
    assert int(np.abs(empty - expected).max()) <= 1

    # VAEEncode with taesd feeds an image-to-image pass of the same size.
    graph = taesd_graph("encoded")
    graph["12"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["8", 0], "vae": ["11", 0]}}
    graph["13"] = {"class_type": "VAEDecode", "inputs": {"samples": ["12", 0], "vae": ["11", 0]}}
    graph["9"]["inputs"]["images"] = ["13", 0]
    assert run(client, graph).shape == (64, 64, 3)
    client.close()


def test_previews_are_taesd_decodings_when_taesd_is_installed(start_service, tmp_path):
    """Each sampler step's preview is TAESD's decoding of the step's denoised latent: 64x64 for the
    8x8 latent (latent2rgb's would be 8x8), and the last one is the image the graph decodes with
    TAESD from the final latent (Euler's last denoised estimate), up to JPEG's loss."""
    service, _ = start_with_taesd(start_service, tmp_path)
    client = ComfyClient(service)
    response = client.queue(taesd_graph("previewed"))
    assert response.status_code == 200, response.text
    prompt_id = response.json()["prompt_id"]
    previews = []
    while True:
        frame = client.ws.recv()
        if not isinstance(frame, str):
            previews.append(frame)
            continue
        data = json.loads(frame)["data"]
        if data.get("node", "") is None and data.get("prompt_id") == prompt_id:
            break
    assert len(previews) == 3  # one per step
    shown = []
    for frame in previews:
        assert frame[:8] == b"\x00\x00\x00\x01\x00\x00\x00\x01"  # PREVIEW_IMAGE, JPEG
        image = Image.open(io.BytesIO(frame[8:]))
        assert image.size == (64, 64)
        shown.append(np.asarray(image.convert("RGB"), dtype=np.int16))
    final = single_image(client, prompt_id).astype(np.int16)
    assert np.abs(shown[-1] - final).mean() < 4
    assert np.abs(shown[0] - final).mean() > np.abs(shown[-1] - final).mean()
    client.close()
