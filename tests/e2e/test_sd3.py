"""SD3.5 through `dreamforge serve` on the tiny SD3.5 model that `create-tiny --family sd3 --kind
split` writes under ComfyUI's file names: a graph with the split files (UNETLoader, TripleCLIPLoader
with CLIP-G, CLIP-L and T5-XXL in the example workflows' order, VAELoader, CLIPTextEncode,
EmptySD3LatentImage, ModelSamplingSD3, KSampler dpmpp_2m / sgm_uniform at cfg 4) runs and repeats
per seed; CLIPTextEncodeSD3 and the one- and two-file loaders of type sd3 give conditionings the
MMDiT reads or refuse clearly."""
from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import outcome, run, same

PROMPT = "beautiful scenery nature glass bottle landscape, purple galaxy bottle,"


def sd3_graph(seed=42, prefix="sd3", width=64, height=64):
    """ComfyUI's SD3.5 example graph (at a small size) with the MMDiT and VAE as files of their own."""
    return {
        "4": {"class_type": "UNETLoader", "inputs": {"unet_name": "sd3.5_medium.safetensors",
                                                       "weight_dtype": "default"}},
        "5": {"class_type": "VAELoader", "inputs": {"vae_name": "sd3_vae.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["11", 0]}},
        "71": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["11", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["294", 0], "vae": ["5", 0]}},
        "11": {"class_type": "TripleCLIPLoader",
               "inputs": {"clip_name1": "clip_g.safetensors", "clip_name2": "clip_l.safetensors",
                          "clip_name3": "t5xxl_fp16.safetensors"}},
        "13": {"class_type": "ModelSamplingSD3", "inputs": {"shift": 3, "model": ["4", 0]}},
        "135": {"class_type": "EmptySD3LatentImage",
                "inputs": {"width": width, "height": height, "batch_size": 1}},
        "294": {"class_type": "KSampler",
                "inputs": {"seed": seed, "steps": 3, "cfg": 4, "sampler_name": "dpmpp_2m",
                           "scheduler": "sgm_uniform", "denoise": 1, "model": ["13", 0],
                           "positive": ["6", 0], "negative": ["71", 0],
                           "latent_image": ["135", 0]}},
        "301": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }


def install_tiny_sd3(data_dir):
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--family", "sd3",
                   "--kind", "split")


def test_sd3_split_files_run_and_repeat(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_sd3(data_dir)
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)

    first = run(client, sd3_graph(prefix="first"))
    again = run(client, sd3_graph(prefix="again"))
    other = run(client, sd3_graph(seed=7, prefix="other"))
    assert same(first, again)
    assert not same(first, other)
    client.close()


def test_clip_text_encode_sd3_and_fewer_text_encoders(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_sd3(data_dir)
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)

    graph = sd3_graph(prefix="sd3node")
    graph["6"] = {"class_type": "CLIPTextEncodeSD3",
                  "inputs": {"clip": ["11", 0], "clip_l": PROMPT, "clip_g": "a bottle",
                             "t5xxl": "", "empty_padding": "none"}}
    image, error = outcome(client, graph)
    assert error is None and image is not None, error

    # Two files: ComfyUI's SD3 CLIP without T5 (CLIP states padded to 4096 wide, no T5 tokens).
    dual = sd3_graph(prefix="dual")
    dual["11"] = {"class_type": "DualCLIPLoader",
                  "inputs": {"clip_name1": "clip_l.safetensors", "clip_name2": "clip_g.safetensors",
                             "type": "sd3"}}
    image, error = outcome(client, dual)
    assert error is None and image is not None, error

    flux_node = sd3_graph(prefix="fluxnode")
    flux_node["6"] = {"class_type": "CLIPTextEncodeFlux",
                      "inputs": {"clip": ["11", 0], "clip_l": PROMPT, "t5xxl": PROMPT,
                                 "guidance": 3.5}}
    _, error = outcome(client, flux_node)
    assert error is not None and "FLUX.1 CLIP" in error
    client.close()


def test_clip_text_encode_sd3_refuses_another_clip(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_sd3(data_dir)
    vocabulary = data_dir / "models" / "text_encoders" / "clip_l.tokenizer"
    service = start_service(data_dir=data_dir, model=False,
                            env={"DREAMFORGE_CLIP_VOCAB_DIR": str(vocabulary)})
    client = ComfyClient(service)
    graph = sd3_graph(prefix="wrongclip")
    graph["11"] = {"class_type": "CLIPLoader",
                   "inputs": {"clip_name": "clip_l.safetensors", "type": "stable_diffusion"}}
    graph["6"] = {"class_type": "CLIPTextEncodeSD3",
                  "inputs": {"clip": ["11", 0], "clip_l": PROMPT, "clip_g": PROMPT,
                             "t5xxl": PROMPT, "empty_padding": "empty_prompt"}}
    _, error = outcome(client, graph)
    assert "CLIPTextEncodeSD3 needs an SD3 CLIP" in error
    client.close()
