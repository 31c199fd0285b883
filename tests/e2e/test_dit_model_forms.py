"""One tiny FLUX.1 (dev, schnell), SD3.5 and Z-Image model in each form a user installs it in gives
the same image through `dreamforge serve`: ComfyUI's split files (UNETLoader, the CLIP loaders,
VAELoader), the all-in-one single file (FLUX.1, SD3.5) and the diffusers pipeline folder
(create-tiny --kind pipeline) through CheckpointLoaderSimple, also with its T5 or Qwen3 text
encoder sharded as diffusers' real folders hold them; the /v1 job API generates from the pipeline
folder as an installed checkpoint."""
import json

import pytest
from safetensors.torch import load_file, save_file

from e2e_support import run_dreamforge
from graph_support import run, same
from test_dit_all_in_one import flux_checkpoint_graph, start
from test_flux import ksampler_graph
from test_sd3 import checkpoint_graph, sd3_graph
from test_zimage import default_zimage_graph

FOLDER = "{family}-pipeline"


def install(data_dir, family, single_file):
    """The family's tiny split files, its pipeline folder checkpoints/<family>-pipeline and, with
    `single_file`, its all-in-one file checkpoints/<family>.safetensors (all of seed 0)."""
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--family", family,
                   "--kind", "split")
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir,
                   "--name", FOLDER.format(family=family), "--family", family, "--kind", "pipeline")
    if single_file:
        run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", family,
                       "--family", family, "--kind", "checkpoint")


def zimage_checkpoint_graph(graph, ckpt_name):
    """The default Z-Image graph with its model, CLIP and VAE from CheckpointLoaderSimple."""
    graph = {node: value for node, value in graph.items() if node not in ("62", "63", "66")}
    graph["4"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}}
    for node, name, output in (("69", "model", 0), ("67", "clip", 1), ("71", "clip", 1),
                               ("65", "vae", 2)):
        graph[node] = {**graph[node], "inputs": {**graph[node]["inputs"], name: ["4", output]}}
    return graph


@pytest.mark.parametrize("family, unet", [("flux", "flux1-dev.safetensors"),
                                          ("flux-schnell", "flux1-schnell.safetensors")])
def test_flux_forms_give_one_image(start_service, tmp_path, family, unet):
    data_dir = tmp_path / "data"
    install(data_dir, family, single_file=True)
    client = start(start_service, data_dir)
    split = run(client, ksampler_graph(prefix="split", unet=unet))
    folder = run(client, flux_checkpoint_graph(ksampler_graph(prefix="folder", unet=unet),
                                               FOLDER.format(family=family)))
    single = run(client, flux_checkpoint_graph(ksampler_graph(prefix="single", unet=unet),
                                               f"{family}.safetensors"))
    assert same(split, folder) and same(split, single)
    client.close()


def test_sd3_forms_give_one_image(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install(data_dir, "sd3", single_file=True)
    client = start(start_service, data_dir)
    split = run(client, sd3_graph(prefix="split"))
    folder = run(client, checkpoint_graph(sd3_graph(prefix="folder"), FOLDER.format(family="sd3")))
    single = run(client, checkpoint_graph(sd3_graph(prefix="single"), "sd3.safetensors"))
    assert same(split, folder) and same(split, single)
    client.close()


def test_zimage_forms_give_one_image(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install(data_dir, "zimage", single_file=False)
    client = start(start_service, data_dir)
    split = run(client, default_zimage_graph(prefix="split"))
    folder = run(client, zimage_checkpoint_graph(default_zimage_graph(prefix="folder"),
                                                 FOLDER.format(family="zimage")))
    assert same(split, folder)
    client.close()


@pytest.mark.parametrize("family", ["flux-schnell", "zimage"])
def test_job_api_generates_from_a_pipeline_folder(start_service, tmp_path, family):
    data_dir = tmp_path / "data"
    install(data_dir, family, single_file=False)
    service = start_service(data_dir=data_dir, model=False)
    job = service.create_job({"model_id": FOLDER.format(family=family), "prompt": "a lighthouse",
                              "width": 64, "height": 64, "steps": 2, "seed": 3})
    finished = service.wait_for_job(job["id"])
    assert finished["status"] == "succeeded", finished.get("error")


def shard(component_dir):
    """Splits `component_dir`/model.safetensors into two shards with their index, as transformers
    saves a large text encoder."""
    tensors = load_file(str(component_dir / "model.safetensors"))
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for file, part in halves.items():
        save_file({name: tensors[name] for name in part}, str(component_dir / file),
                  metadata={"format": "pt"})
        weight_map.update({name: file for name in part})
    (component_dir / "model.safetensors").unlink()
    (component_dir / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}))


@pytest.mark.parametrize("family, component", [("flux-schnell", "text_encoder_2"),
                                               ("zimage", "text_encoder")])
def test_sharded_text_encoder_gives_the_same_image(start_service, tmp_path, family, component):
    data_dir = tmp_path / "data"
    install(data_dir, family, single_file=False)
    name = FOLDER.format(family=family)
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", "sharded",
                   "--family", family, "--kind", "pipeline")
    shard(data_dir / "models" / "checkpoints" / "sharded" / component)
    client = start(start_service, data_dir)
    if family == "zimage":
        graphs = [zimage_checkpoint_graph(default_zimage_graph(prefix=ckpt), ckpt)
                  for ckpt in (name, "sharded")]
    else:
        unet = "flux1-schnell.safetensors"
        graphs = [flux_checkpoint_graph(ksampler_graph(prefix=ckpt, unet=unet), ckpt)
                  for ckpt in (name, "sharded")]
    assert same(run(client, graphs[0]), run(client, graphs[1]))
    client.close()
