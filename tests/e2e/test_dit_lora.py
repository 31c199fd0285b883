"""LoRAs on a DiT family through `dreamforge serve`: the web frontend's default Z-Image Turbo
graph with LoraLoaderModelOnly between UNETLoader and ModelSamplingAuraFlow. A LoRA (kohya names of
the ComfyUI-named weights plus diffusers names of the fused qkv's to_q/to_k/to_v rows) changes the
image, strength 0 does not, and the cached model is left as it was (the graph without the LoRA
gives its first image again). LoraLoader passes a Z-Image CLIP on unchanged; create-tiny's Z-Image LoRAs (kohya, PEFT, LoHa,
LoKr) each change the image."""
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import run, same, with_nodes
from e2e_support import install_tiny_split_files
from test_zimage import default_zimage_graph

LORA_NAME = "zimage_test_lora.safetensors"
RANK = 4


def module_shapes(data_dir):
    """The 2-D weights of the installed tiny Z-Image transformer: module name -> [out, in]."""
    path = data_dir / "models" / "diffusion_models" / "z_image_turbo_bf16.safetensors"
    with safe_open(str(path), "pt") as f:
        return {k[:-len(".weight")]: list(f.get_slice(k).get_shape()) for k in f.keys()
                if k.endswith(".weight") and len(f.get_slice(k).get_shape()) == 2}


def write_lora(data_dir):
    """Random rank-4 factors for every attention and feed-forward projection: kohya names for
    whole weights, diffusers names (under "diffusion_model.") for the rows of each fused qkv."""
    gen = torch.Generator().manual_seed(0)
    tensors = {}

    def add(name, out_features, in_features, up, down):
        tensors[f"{name}.{down}.weight"] = torch.randn(RANK, in_features, generator=gen) * 0.5
        tensors[f"{name}.{up}.weight"] = torch.randn(out_features, RANK, generator=gen) * 0.5

    for module, (rows, columns) in module_shapes(data_dir).items():
        if module.endswith(".attention.qkv"):
            stem = module[:-len("qkv")]
            for part in ("to_q", "to_k", "to_v"):  # n_heads == n_kv_heads in the tiny model
                add(f"diffusion_model.{stem}{part}", rows // 3, columns, "lora_B", "lora_A")
        elif ".attention.out" in module or ".feed_forward." in module:
            add("lora_unet_" + module.replace(".", "_"), rows, columns, "lora_up", "lora_down")
    assert tensors, "the tiny model has no attention weights to patch"
    path = data_dir / "models" / "loras" / LORA_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))


def with_lora(strength, prefix, lora_name=LORA_NAME):
    graph = default_zimage_graph(prefix=prefix)
    lora = {"80": {"class_type": "LoraLoaderModelOnly",
                   "inputs": {"lora_name": lora_name, "strength_model": strength,
                              "model": ["66", 0]}}}
    return with_nodes(graph, lora, **{"69.model": ["80", 0]})


def test_lora_changes_the_zimage_image_and_leaves_the_cached_model(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "zimage")
    write_lora(data_dir)
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)

    before = run(client, default_zimage_graph(prefix="before"))
    patched = run(client, with_lora(1.0, "lora"))
    weaker = run(client, with_lora(0.5, "weaker"))
    unpatched = run(client, with_lora(0.0, "zero"))
    after = run(client, default_zimage_graph(prefix="after"))

    assert not same(before, patched)
    assert not same(patched, weaker)
    assert same(before, unpatched)
    assert same(before, after)
    client.close()


def test_lora_loader_with_a_zimage_clip_patches_the_model(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "zimage")
    write_lora(data_dir)
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)
    graph = default_zimage_graph(prefix="loader")
    lora = {"80": {"class_type": "LoraLoader",
                   "inputs": {"lora_name": LORA_NAME, "strength_model": 1.0,
                              "strength_clip": 1.0, "model": ["66", 0], "clip": ["62", 0]}}}
    patched = run(client, with_nodes(graph, lora, **{"69.model": ["80", 0],
                                                     "67.clip": ["80", 1], "71.clip": ["80", 1]}))
    model_only = run(client, with_lora(1.0, "model_only"))
    assert same(patched, model_only)  # the text side is passed on unchanged
    client.close()


def test_create_tiny_zimage_loras_change_the_image(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "zimage")
    formats = ["kohya", "peft", "loha", "lokr"]
    for lora_format in formats:
        run_dreamforge("model", "create-tiny",
                       data_dir / "models" / "loras" / f"tiny-{lora_format}.safetensors",
                       "--family", "zimage", "--kind", "lora", "--lora-format", lora_format)
    service = start_service(data_dir=data_dir, model=False)
    client = ComfyClient(service)
    base = run(client, default_zimage_graph(prefix="base"))
    for lora_format in formats:
        image = run(client, with_lora(1.0, lora_format, f"tiny-{lora_format}.safetensors"))
        assert not same(base, image), lora_format
    client.close()
