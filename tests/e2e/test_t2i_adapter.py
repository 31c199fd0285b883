"""T2I adapters through `dreamforge serve`: the tiny adapters of `dreamforge model create-tiny --kind
t2i_adapter` (in models/t2i_adapter) loaded by T2IAdapterLoader or ControlNetLoader and applied by
ControlNetApply on tiny SD1 and SDXL checkpoints; strength 0 is the plain image and an adapter
chains after a ControlNet."""
from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import run, same, with_nodes
from service_support import comfy_graph
from test_controlnet import controlled_graph, install_controlnet, start_sdxl_service, write_hint


def install_adapter(data_dir, family, name):
    run_dreamforge("model", "create-tiny", "--kind", "t2i_adapter", "--family", family,
                   "--data-dir", str(data_dir), "--name", name)
    assert (data_dir / "models" / "t2i_adapter" / f"{name}.safetensors").is_file()
    return f"{name}.safetensors"


def adapted_graph(adapter, strength, ckpt="tiny", prefix="t2i", loader="T2IAdapterLoader"):
    """The default text-to-image graph with the adapter applied (ControlNetApply) to the positive
    prompt; the negative takes it too, as in ComfyUI."""
    name_input = "t2i_adapter_name" if loader == "T2IAdapterLoader" else "control_net_name"
    return with_nodes(comfy_graph(ckpt=ckpt, prefix=prefix), {
        "10": {"class_type": loader, "inputs": {name_input: adapter}},
        "11": {"class_type": "LoadImage", "inputs": {"image": "edges.png"}},
        "12": {"class_type": "ControlNetApply", "inputs": {
            "conditioning": ["6", 0], "control_net": ["10", 0], "image": ["11", 0],
            "strength": strength}},
    }, **{"3.positive": ["12", 0]})


def test_adapter_image_follows_its_strength(start_service, tmp_path):
    data_dir = tmp_path / "data"
    write_hint(data_dir)
    service = start_service(data_dir=data_dir)
    adapter = install_adapter(data_dir, "sd1", "tiny-sd1")
    for node, name_input in (("T2IAdapterLoader", "t2i_adapter_name"),
                             ("ControlNetLoader", "control_net_name")):
        info = service.get(f"/object_info/{node}").json()[node]
        assert adapter in info["input"]["required"][name_input][0]

    client = ComfyClient(service)
    plain = run(client, comfy_graph(prefix="plain"))
    assert same(run(client, adapted_graph(adapter, 0.0, prefix="off")), plain)
    full = run(client, adapted_graph(adapter, 1.0, prefix="full"))
    assert full.shape == (64, 64, 3)
    assert not same(full, plain)
    # ControlNetLoader loads T2I adapters too (ComfyUI's load_controlnet).
    assert same(run(client, adapted_graph(adapter, 1.0, prefix="cnl", loader="ControlNetLoader")),
                full)
    client.close()


def test_adapter_chains_after_a_controlnet(start_service, tmp_path):
    data_dir = tmp_path / "data"
    write_hint(data_dir)
    service = start_service(data_dir=data_dir)
    adapter = install_adapter(data_dir, "sd1", "tiny-sd1")
    controlnet = install_controlnet(data_dir, "sd1", "tiny-controlnet")
    client = ComfyClient(service)
    controlnet_only = run(client, controlled_graph(controlnet, 1.0, prefix="cn"))
    chained = with_nodes(controlled_graph(controlnet, 1.0, prefix="both"), {
        "20": {"class_type": "T2IAdapterLoader", "inputs": {"t2i_adapter_name": adapter}},
        "21": {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["12", 0], "negative": ["12", 1], "control_net": ["20", 0],
            "image": ["11", 0], "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0}},
    }, **{"3.positive": ["21", 0], "3.negative": ["21", 1]})
    both = run(client, chained)
    assert not same(both, controlnet_only)
    client.close()


def test_sdxl_adapter(start_service, tmp_path):
    data_dir = tmp_path / "data"
    service = start_sdxl_service(start_service, data_dir)
    adapter = install_adapter(data_dir, "sdxl", "tiny-sdxl")
    client = ComfyClient(service)
    plain = run(client, comfy_graph(ckpt="tiny-xl", prefix="xl"))
    adapted = run(client, adapted_graph(adapter, 1.0, ckpt="tiny-xl", prefix="xlt2i"))
    assert adapted.shape == plain.shape
    assert not same(adapted, plain)
    client.close()
