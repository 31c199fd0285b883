"""FLUX.1 (dev and schnell) and SD3.5 all-in-one single files from `create-tiny --kind checkpoint`
through CheckpointLoaderSimple give the image of the same tiny model's split files (create-tiny
--kind split, same seed) through UNETLoader, the CLIP loaders and VAELoader; the tiny FLUX.1 LoRA
of `create-tiny --kind lora` changes the image through LoraLoaderModelOnly."""
import pytest

from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import run, same
from test_flux import ksampler_graph
from test_sd3 import checkpoint_graph, sd3_graph


def install(data_dir, family):
    """The family's tiny split files and its all-in-one file checkpoints/<family>.safetensors."""
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--family", family,
                   "--kind", "split")
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", family,
                   "--family", family, "--kind", "checkpoint")
    return f"{family}.safetensors"


def flux_checkpoint_graph(graph, ckpt_name):
    """A FLUX split-file graph with its model, CLIP and VAE from CheckpointLoaderSimple."""
    graph = {node: value for node, value in graph.items() if node not in ("10", "11", "12")}
    graph["4"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}}
    for node, name, output in (("30", "model", 0), ("6", "clip", 1), ("7", "clip", 1), ("8", "vae", 2)):
        graph[node] = {**graph[node], "inputs": {**graph[node]["inputs"], name: ["4", output]}}
    return graph


def start(start_service, data_dir):
    """A client of a service on `data_dir` whose CLIP vocabulary is the tiny CLIP-L's (the
    all-in-one files' CLIPs carry none)."""
    vocabulary = data_dir / "models" / "text_encoders" / "clip_l.tokenizer"
    service = start_service(data_dir=data_dir, model=False,
                            env={"DREAMFORGE_CLIP_VOCAB_DIR": str(vocabulary)})
    return ComfyClient(service)


@pytest.mark.parametrize("family, unet", [("flux", "flux1-dev.safetensors"),
                                          ("flux-schnell", "flux1-schnell.safetensors")])
def test_flux_all_in_one_file_gives_the_split_files_image(start_service, tmp_path, family, unet):
    data_dir = tmp_path / "data"
    ckpt = install(data_dir, family)
    client = start(start_service, data_dir)
    split = run(client, ksampler_graph(prefix="split", unet=unet))
    whole = run(client, flux_checkpoint_graph(ksampler_graph(prefix="whole", unet=unet), ckpt))
    assert same(split, whole)
    other = run(client, flux_checkpoint_graph(ksampler_graph(seed=7, prefix="other", unet=unet), ckpt))
    assert not same(split, other)
    client.close()


def test_sd3_all_in_one_file_gives_the_split_files_image(start_service, tmp_path):
    data_dir = tmp_path / "data"
    ckpt = install(data_dir, "sd3")
    client = start(start_service, data_dir)
    split = run(client, sd3_graph(prefix="split"))
    assert same(split, run(client, checkpoint_graph(sd3_graph(prefix="whole"), ckpt)))
    client.close()


def test_tiny_flux_lora_changes_the_image(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install(data_dir, "flux")
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", "tiny-flux",
                   "--family", "flux", "--kind", "lora")
    client = start(start_service, data_dir)

    def with_lora(strength, prefix):
        graph = ksampler_graph(prefix=prefix)
        graph["40"] = {"class_type": "LoraLoaderModelOnly",
                       "inputs": {"lora_name": "tiny-flux.safetensors", "strength_model": strength,
                                  "model": ["12", 0]}}
        graph["30"] = {**graph["30"], "inputs": {**graph["30"]["inputs"], "model": ["40", 0]}}
        return graph

    plain = run(client, ksampler_graph(prefix="plain"))
    assert same(plain, run(client, with_lora(0.0, "off")))
    assert not same(plain, run(client, with_lora(1.0, "on")))
    client.close()
