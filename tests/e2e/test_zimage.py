"""Z-Image Turbo through `dreamforge serve`: the web frontend's default workflow (UNETLoader,
CLIPLoader type lumina2, VAELoader, EmptySD3LatentImage, ModelSamplingAuraFlow, KSampler with
res_multistep) runs on the tiny Z-Image model that create-tiny writes under that workflow's file
names, and is deterministic in its seed."""
from comfy_client import ComfyClient
from e2e_support import install_tiny_split_files
from graph_support import outcome, run, same

PROMPT = "a campfire in the wilderness at night, a milky way sky"


def default_zimage_graph(seed=42, prefix="zimage", width=64, height=64):
    """The frontend's default Z-Image Turbo graph (at a small size)."""
    return {
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["65", 0]}},
        "62": {"class_type": "CLIPLoader", "inputs": {"clip_name": "qwen_3_4b.safetensors",
                                                        "type": "lumina2", "device": "default"}},
        "63": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "65": {"class_type": "VAEDecode", "inputs": {"samples": ["70", 0], "vae": ["63", 0]}},
        "66": {"class_type": "UNETLoader", "inputs": {"unet_name": "z_image_turbo_bf16.safetensors",
                                                        "weight_dtype": "default"}},
        "67": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["62", 0]}},
        "68": {"class_type": "EmptySD3LatentImage",
               "inputs": {"width": width, "height": height, "batch_size": 1}},
        "69": {"class_type": "ModelSamplingAuraFlow", "inputs": {"shift": 3, "model": ["66", 0]}},
        "70": {"class_type": "KSampler",
               "inputs": {"seed": seed, "steps": 3, "cfg": 1, "sampler_name": "res_multistep",
                          "scheduler": "simple", "denoise": 1, "model": ["69", 0],
                          "positive": ["67", 0], "negative": ["71", 0], "latent_image": ["68", 0]}},
        "71": {"class_type": "CLIPTextEncode", "inputs": {"text": "low quality", "clip": ["62", 0]}},
    }


def test_default_zimage_workflow_runs_and_repeats(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "zimage")
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)

    first = run(client, default_zimage_graph(prefix="first"))
    again = run(client, default_zimage_graph(prefix="again"))
    other = run(client, default_zimage_graph(seed=7, prefix="other"))
    assert same(first, again)
    assert not same(first, other)

    guided = default_zimage_graph(prefix="cfg")
    guided["70"]["inputs"]["cfg"] = 2.5
    guided["70"]["inputs"]["sampler_name"] = "euler"
    image, error = outcome(client, guided)
    assert error is None and image is not None, error
    client.close()


def test_sd_only_nodes_refuse_a_zimage_clip(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "zimage")
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)
    graph = default_zimage_graph(prefix="lastlayer")
    graph["72"] = {"class_type": "CLIPSetLastLayer",
                   "inputs": {"clip": ["62", 0], "stop_at_clip_layer": -2}}
    graph["67"]["inputs"]["clip"] = ["72", 0]
    _, error = outcome(client, graph)
    assert "CLIPSetLastLayer works on SD 1.x/2.x/SDXL text encoders" in error
    client.close()
