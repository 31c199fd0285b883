"""Model files beside the checkpoint, end to end: `dreamforge model create-tiny` writes a VAE, an
embedding, a hypernetwork and a LoRA into the service's model folders; `dreamforge serve` lists
them (/object_info combos, /models/{folder}) and a ComfyUI graph uses them all."""
import numpy as np

from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import finish, single_image
from service_support import comfy_graph

ADDONS = {"vae": "tiny_vae", "embedding": "tiny_style", "hypernetwork": "tiny_hyper",
          "lora": "tiny_lora"}


def install_addons(data_dir):
    for kind, name in ADDONS.items():
        run_dreamforge("model", "create-tiny", "--kind", kind, "--family", "sd1",
                       "--data-dir", data_dir, "--name", name)


def combo_options(spec):
    """The choices of a combo input as /object_info shows it (a list, or COMBO with options)."""
    return spec[0] if isinstance(spec[0], list) else spec[1]["options"]


def patched_graph(lora_strength=1.0):
    """The default graph with the model and CLIP through LoraLoader and HypernetworkLoader, an
    embedding in the positive prompt and the image decoded by a VAELoader's VAE."""
    graph = comfy_graph(seed=11, steps=3, prefix="kinds")
    graph["10"] = {"class_type": "LoraLoader", "inputs": {
        "model": ["4", 0], "clip": ["4", 1], "lora_name": "tiny_lora.safetensors",
        "strength_model": lora_strength, "strength_clip": 1.0}}
    graph["11"] = {"class_type": "HypernetworkLoader", "inputs": {
        "model": ["10", 0], "hypernetwork_name": "tiny_hyper.safetensors", "strength": 1.0}}
    graph["12"] = {"class_type": "VAELoader", "inputs": {"vae_name": "tiny_vae.safetensors"}}
    graph["6"]["inputs"].update(text="a red (embedding:tiny_style:1.2) boat", clip=["10", 1])
    graph["7"]["inputs"]["clip"] = ["10", 1]
    graph["3"]["inputs"]["model"] = ["11", 0]
    graph["8"]["inputs"]["vae"] = ["12", 0]
    return graph


def run_graph(client, graph):
    """(pixels of the one saved image, the prompt's websocket messages)."""
    prompt_id, messages = finish(client, graph)
    assert client.history(prompt_id)["status"]["status_str"] == "success"
    return single_image(client, prompt_id), messages


def test_created_model_files_are_listed_for_their_loaders(start_service, tmp_path):
    install_addons(tmp_path / "data")
    service = start_service()
    info = service.get("/object_info").json()
    required = lambda node: info[node]["input"]["required"]  # noqa: E731
    assert "tiny_vae.safetensors" in combo_options(required("VAELoader")["vae_name"])
    assert "tiny_lora.safetensors" in combo_options(required("LoraLoader")["lora_name"])
    hypernetwork = info["HypernetworkLoader"]
    assert "tiny_hyper.safetensors" in combo_options(hypernetwork["input"]["required"]["hypernetwork_name"])
    assert hypernetwork["input"]["required"]["strength"] == [
        "FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}]
    assert hypernetwork["output"] == ["MODEL"] and hypernetwork["category"] == "loaders"
    for folder, name in [("vae", "tiny_vae"), ("embeddings", "tiny_style"),
                         ("hypernetworks", "tiny_hyper"), ("loras", "tiny_lora")]:
        listed = service.get(f"/models/{folder}").json()
        assert f"{name}.safetensors" in listed, (folder, listed)


def test_a_graph_with_every_kind_changes_the_image(start_service, tmp_path):
    install_addons(tmp_path / "data")
    service = start_service()
    client = ComfyClient(service)
    try:
        plain, _ = run_graph(client, comfy_graph(seed=11, steps=3, prefix="kinds"))
        patched, _ = run_graph(client, patched_graph())
        weaker, messages = run_graph(client, patched_graph(lora_strength=0.3))
    finally:
        client.close()
    assert plain.shape == patched.shape == (64, 64, 3)
    assert np.abs(plain - patched).max() > 0
    assert np.abs(patched - weaker).max() > 0
    # Only the LoRA strength changed: the checkpoint loader's outputs came from the cache, it did
    # not run (load the checkpoint) again.
    cached = [m["data"]["nodes"] for m in messages if m["type"] == "execution_cached"]
    executed = {m["data"]["node"] for m in messages if m["type"] == "executing"}
    assert cached and "4" in cached[0] and "4" not in executed
    assert "10" in executed


def test_each_patch_takes_effect_on_its_own(start_service, tmp_path):
    install_addons(tmp_path / "data")
    service = start_service()
    client = ComfyClient(service)
    try:
        plain, _ = run_graph(client, comfy_graph(seed=11, steps=3, prefix="kinds"))
        hyper = comfy_graph(seed=11, steps=3, prefix="kinds")
        hyper["11"] = {"class_type": "HypernetworkLoader", "inputs": {
            "model": ["4", 0], "hypernetwork_name": "tiny_hyper.safetensors", "strength": 1.0}}
        hyper["3"]["inputs"]["model"] = ["11", 0]
        with_hypernetwork, _ = run_graph(client, hyper)
        embedded = comfy_graph(seed=11, steps=3, prefix="kinds")
        embedded["6"]["inputs"]["text"] = "a red embedding:tiny_style boat"
        with_embedding, _ = run_graph(client, embedded)
        decoded = comfy_graph(seed=11, steps=3, prefix="kinds")
        decoded["12"] = {"class_type": "VAELoader", "inputs": {"vae_name": "tiny_vae.safetensors"}}
        decoded["8"]["inputs"]["vae"] = ["12", 0]
        with_vae, _ = run_graph(client, decoded)
    finally:
        client.close()
    for image in (with_hypernetwork, with_embedding, with_vae):
        assert np.abs(plain - image).max() > 0
