"""SD3.5 through `dreamforge serve` on the tiny SD3.5 model that `create-tiny --family sd3 --kind
split` writes under ComfyUI's file names: a graph with the split files (UNETLoader, TripleCLIPLoader
with CLIP-G, CLIP-L and T5-XXL in the example workflows' order, VAELoader, CLIPTextEncode,
EmptySD3LatentImage, ModelSamplingSD3, KSampler dpmpp_2m / sgm_uniform at cfg 4) runs and repeats
per seed; the same weights as one all-in-one file in Stability's layout (CheckpointLoaderSimple)
give the same image, and so does the file without text encoders next to TripleCLIPLoader (ComfyUI's
SD3.5 example), whose own CLIP output then fails clearly; CLIPTextEncodeSD3 and the one- and
two-file loaders of type sd3 give conditionings the MMDiT reads or refuse clearly."""
import shutil

from safetensors import safe_open
from safetensors.torch import save_file

from comfy_client import ComfyClient
from e2e_support import install_tiny_split_files
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


def test_sd3_split_files_run_and_repeat(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "sd3")
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)

    first = run(client, sd3_graph(prefix="first"))
    again = run(client, sd3_graph(prefix="again"))
    other = run(client, sd3_graph(seed=7, prefix="other"))
    assert same(first, again)
    assert not same(first, other)
    client.close()


def read_file(path):
    with safe_open(str(path), "pt") as file:
        return {key: file.get_tensor(key) for key in file.keys()}, file.metadata() or {}


def write_all_in_one(models_dir, name, with_text_encoders=True):
    """The split files as one file in Stability's sd3.5_medium.safetensors layout (the CLIPs'
    configs in the metadata, T5's tokenizer beside it); returns its file name."""
    tensors, metadata = {}, {}
    parts = [("diffusion_models/sd3.5_medium.safetensors", "model.diffusion_model."),
             ("vae/sd3_vae.safetensors", "first_stage_model.")]
    if with_text_encoders:
        parts += [("text_encoders/clip_l.safetensors", "text_encoders.clip_l.transformer."),
                  ("text_encoders/clip_g.safetensors", "text_encoders.clip_g.transformer."),
                  ("text_encoders/t5xxl_fp16.safetensors", "text_encoders.t5xxl.transformer.")]
    for file, prefix in parts:
        part, part_metadata = read_file(models_dir / file)
        tensors.update({prefix + key: tensor for key, tensor in part.items()})
        if "dreamforge.text_encoder_config" in part_metadata:
            kind = prefix.split(".")[1]
            metadata[f"dreamforge.{kind}_config"] = part_metadata["dreamforge.text_encoder_config"]
    target = models_dir / "checkpoints" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata=metadata)
    if with_text_encoders:
        shutil.copytree(models_dir / "text_encoders" / "t5xxl_fp16.tokenizer",
                        target.with_suffix(".tokenizer"))
    return name


def checkpoint_graph(graph, ckpt_name, with_clip=True):
    """`graph` with its MMDiT and VAE (and CLIP) from CheckpointLoaderSimple."""
    graph = dict(graph)
    graph["4"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}}
    graph.pop("5")
    graph["8"] = {**graph["8"], "inputs": {**graph["8"]["inputs"], "vae": ["4", 2]}}
    if with_clip:
        graph.pop("11")
        for node in ("6", "71"):
            graph[node] = {**graph[node], "inputs": {**graph[node]["inputs"], "clip": ["4", 1]}}
    return graph


def test_all_in_one_file_gives_the_split_files_image(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "sd3")
    models_dir = data_dir / "models"
    whole = write_all_in_one(models_dir, "sd3.5_medium_incl_clips.safetensors")
    bare = write_all_in_one(models_dir, "sd3.5_medium.safetensors", with_text_encoders=False)
    vocabulary = models_dir / "text_encoders" / "clip_l.tokenizer"
    service = start_service(data_dir=data_dir, model=False,
                            env={"DREAMFORGE_CLIP_VOCAB_DIR": str(vocabulary)})
    client = ComfyClient(service)

    split = run(client, sd3_graph(prefix="split"))
    assert same(split, run(client, checkpoint_graph(sd3_graph(prefix="whole"), whole)))
    assert same(split, run(client, checkpoint_graph(sd3_graph(prefix="bare"), bare,
                                                    with_clip=False)))
    other = run(client, checkpoint_graph(sd3_graph(seed=7, prefix="other"), whole))
    assert not same(split, other)

    _, error = outcome(client, checkpoint_graph(sd3_graph(prefix="noclip"), bare))
    assert "clip input is invalid: None" in error
    client.close()


def test_clip_text_encode_sd3_and_fewer_text_encoders(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "sd3")
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

    twice = sd3_graph(prefix="twice")
    twice["11"]["inputs"]["clip_name1"] = "clip_l.safetensors"
    _, error = outcome(client, twice)
    assert error is not None and "two CLIP-L text encoders" in error

    flux_node = sd3_graph(prefix="fluxnode")
    flux_node["6"] = {"class_type": "CLIPTextEncodeFlux",
                      "inputs": {"clip": ["11", 0], "clip_l": PROMPT, "t5xxl": PROMPT,
                                 "guidance": 3.5}}
    _, error = outcome(client, flux_node)
    assert error is not None and "FLUX.1 CLIP" in error
    client.close()


def test_clip_text_encode_sd3_refuses_another_clip(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "sd3")
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
