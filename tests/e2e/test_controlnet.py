"""ControlNets through `dreamforge serve`: ComfyUI graphs with ControlNetLoader, LoadImage and the
ControlNet apply nodes on tiny checkpoints and the tiny ControlNets of `dreamforge model create-tiny
--kind controlnet`; the image follows the strength, strength 0 is the plain image, SDXL runs
through ControlNetApplySD3 and a file that is no ControlNet fails with a clear error."""
import numpy as np
from PIL import Image

from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import outcome, run, same, with_nodes
from service_support import comfy_graph


def install_controlnet(data_dir, family, name):
    run_dreamforge("model", "create-tiny", "--kind", "controlnet", "--family", family,
                   "--data-dir", str(data_dir), "--name", name)
    return f"{name}.safetensors"


def write_hint(data_dir):
    """A hard-edged pattern like an edge map: white bars on black, in the input folder."""
    (data_dir / "input").mkdir(parents=True, exist_ok=True)
    hint = np.zeros((64, 64, 3), dtype=np.uint8)
    hint[8:16, :] = 255
    hint[:, 40:48] = 255
    Image.fromarray(hint).save(data_dir / "input" / "edges.png")
    return "edges.png"


def controlled_graph(controlnet, strength, ckpt="tiny", apply_node="ControlNetApplyAdvanced",
                     prefix="cn", end_percent=1.0):
    """The default text-to-image graph with a ControlNet applied to both prompts."""
    apply_inputs = {"positive": ["6", 0], "negative": ["7", 0], "control_net": ["10", 0],
                    "image": ["11", 0], "strength": strength, "start_percent": 0.0,
                    "end_percent": end_percent}
    if apply_node == "ControlNetApplySD3":
        apply_inputs["vae"] = ["4", 2]
    return with_nodes(comfy_graph(ckpt=ckpt, prefix=prefix), {
        "10": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": controlnet}},
        "11": {"class_type": "LoadImage", "inputs": {"image": "edges.png"}},
        "12": {"class_type": apply_node, "inputs": apply_inputs},
    }, **{"3.positive": ["12", 0], "3.negative": ["12", 1]})


def test_controlnet_image_follows_its_strength(start_service, tmp_path):
    data_dir = tmp_path / "data"
    write_hint(data_dir)
    service = start_service(data_dir=data_dir)
    controlnet = install_controlnet(data_dir, "sd1", "tiny-controlnet")
    info = service.get("/object_info/ControlNetLoader").json()["ControlNetLoader"]
    assert controlnet in info["input"]["required"]["control_net_name"][0]

    client = ComfyClient(service)
    plain = run(client, comfy_graph(prefix="plain"))
    off = run(client, controlled_graph(controlnet, 0.0, prefix="off"))
    assert same(off, plain)
    full = run(client, controlled_graph(controlnet, 1.0, prefix="full"))
    assert full.shape == (64, 64, 3)
    assert not same(full, plain)
    double = run(client, controlled_graph(controlnet, 2.0, prefix="double"))
    assert not same(double, full)
    assert np.abs(double - plain).mean() > np.abs(full - plain).mean()
    # A window that closes before the first step leaves the plain image.
    assert same(run(client, controlled_graph(controlnet, 1.0, prefix="closed", end_percent=0.0)), plain)
    # Runs repeat: the cached ControlNet and checkpoint are unchanged.
    assert same(run(client, controlled_graph(controlnet, 1.0, prefix="again")), full)
    client.close()


def test_old_apply_node_and_a_chain_of_two(start_service, tmp_path):
    data_dir = tmp_path / "data"
    write_hint(data_dir)
    service = start_service(data_dir=data_dir)
    controlnet = install_controlnet(data_dir, "sd1", "tiny-controlnet")
    client = ComfyClient(service)
    single = controlled_graph(controlnet, 1.0, prefix="single")
    once = run(client, single)
    # ControlNetApply (OLD) on the positive prompt only: the negative takes its control too.
    old = with_nodes(single, {"12": {"class_type": "ControlNetApply", "inputs": {
        "conditioning": ["6", 0], "control_net": ["10", 0], "image": ["11", 0], "strength": 1.0}}},
        **{"3.negative": ["7", 0]})
    assert same(run(client, old), once)
    # Two applications at half strength add up to one at full strength.
    chained = with_nodes(single, {"13": {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["12", 0], "negative": ["12", 1], "control_net": ["10", 0], "image": ["11", 0],
        "strength": 0.5, "start_percent": 0.0, "end_percent": 1.0}}},
        **{"12.strength": 0.5, "3.positive": ["13", 0], "3.negative": ["13", 1]})
    assert same(run(client, chained), once)
    client.close()


def start_sdxl_service(start_service, data_dir):
    """A service with the tiny SDXL checkpoint "tiny-xl" and the hint image installed."""
    write_hint(data_dir)
    service = start_service(data_dir=data_dir)
    run_dreamforge("model", "create-tiny", "--family", "sdxl", "--data-dir", str(data_dir),
                   "--name", "tiny-xl")
    return service


def test_sdxl_controlnet_through_the_sd3_apply_node(start_service, tmp_path):
    data_dir = tmp_path / "data"
    service = start_sdxl_service(start_service, data_dir)
    controlnet = install_controlnet(data_dir, "sdxl", "tiny-controlnet-xl")
    client = ComfyClient(service)
    plain = run(client, comfy_graph(ckpt="tiny-xl", prefix="xl"))
    controlled = run(client, controlled_graph(controlnet, 1.0, ckpt="tiny-xl",
                                              apply_node="ControlNetApplySD3", prefix="xlcn"))
    assert controlled.shape == plain.shape
    assert not same(controlled, plain)
    client.close()


def test_a_file_that_is_no_controlnet_fails_clearly(start_service, tmp_path):
    from safetensors.torch import save_file
    import torch
    data_dir = tmp_path / "data"
    write_hint(data_dir)
    folder = data_dir / "models" / "controlnet"
    folder.mkdir(parents=True)
    save_file({"encoder.conv_in.weight": torch.zeros(4, 3, 3, 3)}, str(folder / "vae.safetensors"))
    service = start_service(data_dir=data_dir)
    client = ComfyClient(service)
    image, error = outcome(client, controlled_graph("vae.safetensors", 1.0))
    assert image is None
    assert "holds no ControlNet" in error
    client.close()
