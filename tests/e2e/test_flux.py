"""FLUX.1 dev and schnell through `dreamforge serve` on the tiny split files create-tiny writes under
the names of ComfyUI's FLUX example workflows: the KSampler graph (UNETLoader, DualCLIPLoader type
flux, FluxGuidance, ModelSamplingFlux, EmptySD3LatentImage) and the SamplerCustomAdvanced graph of
the examples run and are deterministic in their seed; CLIPTextEncodeFlux sets the guidance and
encodes its two prompts; FLUX-only nodes refuse other CLIPs."""
import pytest

from comfy_client import ComfyClient
from e2e_support import install_tiny_split_files
from graph_support import outcome, run, same

PROMPT = "a red fox in the snow at (sunrise:1.2), photo"


def loaders(unet):
    """The example workflows' loaders: T5 named first, as they do."""
    return {
        "10": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "11": {"class_type": "DualCLIPLoader",
               "inputs": {"clip_name1": "t5xxl_fp16.safetensors",
                          "clip_name2": "clip_l.safetensors", "type": "flux"}},
        "12": {"class_type": "UNETLoader", "inputs": {"unet_name": unet, "weight_dtype": "default"}},
    }


def ksampler_graph(seed=42, prefix="flux", unet="flux1-dev.safetensors", guidance=3.5, steps=3):
    """A FLUX.1 graph with KSampler (euler, simple, cfg 1) at a small size."""
    graph = loaders(unet)
    graph.update({
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["11", 0]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["11", 0]}},
        "26": {"class_type": "FluxGuidance", "inputs": {"guidance": guidance, "conditioning": ["6", 0]}},
        "27": {"class_type": "EmptySD3LatentImage",
               "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "30": {"class_type": "ModelSamplingFlux",
               "inputs": {"max_shift": 1.15, "base_shift": 0.5, "width": 64, "height": 64,
                          "model": ["12", 0]}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": seed, "steps": steps, "cfg": 1, "sampler_name": "euler",
                         "scheduler": "simple", "denoise": 1, "model": ["30", 0],
                         "positive": ["26", 0], "negative": ["7", 0], "latent_image": ["27", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["10", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    })
    return graph


def custom_sampler_graph(seed=42, prefix="custom", unet="flux1-dev.safetensors"):
    """The FLUX example workflows' SamplerCustomAdvanced graph (BasicGuider, RandomNoise,
    KSamplerSelect, BasicScheduler) at a small size."""
    graph = loaders(unet)
    graph.update({
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["11", 0]}},
        "26": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["6", 0]}},
        "27": {"class_type": "EmptySD3LatentImage",
               "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "30": {"class_type": "ModelSamplingFlux",
               "inputs": {"max_shift": 1.15, "base_shift": 0.5, "width": 64, "height": 64,
                          "model": ["12", 0]}},
        "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "17": {"class_type": "BasicScheduler",
               "inputs": {"scheduler": "simple", "steps": 3, "denoise": 1.0, "model": ["30", 0]}},
        "22": {"class_type": "BasicGuider", "inputs": {"model": ["30", 0], "conditioning": ["26", 0]}},
        "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
        "13": {"class_type": "SamplerCustomAdvanced",
               "inputs": {"noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0],
                          "sigmas": ["17", 0], "latent_image": ["27", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["10", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    })
    return graph


@pytest.fixture
def flux_client(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "flux")
    install_tiny_split_files(data_dir, "flux-schnell")
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)
    yield client
    client.close()


def test_flux_dev_ksampler_graph_runs_and_repeats(flux_client):
    first = run(flux_client, ksampler_graph(prefix="first"))
    again = run(flux_client, ksampler_graph(prefix="again"))
    other = run(flux_client, ksampler_graph(seed=7, prefix="other"))
    assert same(first, again)
    assert not same(first, other)
    # The distilled guidance reaches the transformer.
    assert not same(first, run(flux_client, ksampler_graph(prefix="guided", guidance=50.0)))


def test_flux_schnell_graph_runs_and_repeats(flux_client):
    graph = ksampler_graph(prefix="schnell", unet="flux1-schnell.safetensors", steps=4)
    graph["3"]["inputs"]["model"] = ["12", 0]  # the schnell examples sample without ModelSamplingFlux
    graph["3"]["inputs"]["positive"] = ["6", 0]
    first = run(flux_client, graph)
    assert same(first, run(flux_client, graph))
    graph["3"]["inputs"]["seed"] = 7
    assert not same(first, run(flux_client, graph))


def test_dual_clip_loader_takes_the_files_in_either_order(flux_client):
    first = run(flux_client, ksampler_graph(prefix="t5first"))
    swapped = ksampler_graph(prefix="clipfirst")
    swapped["11"]["inputs"]["clip_name1"] = "clip_l.safetensors"
    swapped["11"]["inputs"]["clip_name2"] = "t5xxl_fp16.safetensors"
    assert same(first, run(flux_client, swapped))


def test_clip_text_encode_flux_sets_guidance_and_encodes_both_prompts(flux_client):
    plain = run(flux_client, ksampler_graph(prefix="plain"))
    graph = ksampler_graph(prefix="flux_node")
    graph["6"] = {"class_type": "CLIPTextEncodeFlux",
                  "inputs": {"clip": ["11", 0], "clip_l": PROMPT, "t5xxl": PROMPT, "guidance": 3.5}}
    graph["3"]["inputs"]["positive"] = ["6", 0]
    assert same(plain, run(flux_client, graph))  # same texts and guidance as FluxGuidance 3.5

    graph["6"]["inputs"]["t5xxl"] = "a blue whale"
    assert not same(plain, run(flux_client, graph))
    graph["6"]["inputs"]["t5xxl"] = PROMPT
    graph["6"]["inputs"]["clip_l"] = "a blue whale"
    assert not same(plain, run(flux_client, graph))
    graph["6"]["inputs"]["clip_l"] = PROMPT
    graph["6"]["inputs"]["guidance"] = 50.0
    assert not same(plain, run(flux_client, graph))


def test_custom_sampler_graph_runs_and_repeats(flux_client):
    first = run(flux_client, custom_sampler_graph(prefix="c1"))
    assert same(first, run(flux_client, custom_sampler_graph(prefix="c2")))
    assert not same(first, run(flux_client, custom_sampler_graph(seed=7, prefix="c3")))


def test_object_info_has_clip_text_encode_flux(flux_client):
    info = flux_client.service.get("/object_info/CLIPTextEncodeFlux").json()["CLIPTextEncodeFlux"]
    required = info["input"]["required"]
    assert set(required) == {"clip", "clip_l", "t5xxl", "guidance"}
    assert required["clip_l"] == ["STRING", {"multiline": True, "dynamicPrompts": True}]
    assert required["guidance"][1] == {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1}
    assert info["category"] == "advanced/conditioning/flux"
    assert info["output"] == ["CONDITIONING"]


def test_flux_only_nodes_refuse_other_clips_and_pairs(flux_client):
    graph = ksampler_graph(prefix="two_t5")
    graph["11"]["inputs"]["clip_name2"] = "t5xxl_fp16.safetensors"
    _, error = outcome(flux_client, graph)
    assert "needs one CLIP-L and one T5-XXL file" in error

    graph = ksampler_graph(prefix="lastlayer")
    graph["40"] = {"class_type": "CLIPSetLastLayer",
                   "inputs": {"clip": ["11", 0], "stop_at_clip_layer": -2}}
    graph["6"]["inputs"]["clip"] = ["40", 0]
    _, error = outcome(flux_client, graph)
    assert "CLIPSetLastLayer works on SD 1.x/2.x/SDXL text encoders" in error
