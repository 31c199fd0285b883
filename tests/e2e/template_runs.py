"""Runs Dream Forge's workflow templates (share/dreamforge/templates) on tiny models: the models
each template names, its graph cut to a CPU's size, and the image it makes. Used by the templates'
e2e test and by scripts/make-template-thumbnails."""
import copy
import io
import json

from PIL import Image, ImageDraw

from e2e_support import ROOT, run_dreamforge

TEMPLATES = ROOT / "share" / "dreamforge" / "templates"

# The model files the templates name, with the family of the tiny stand-in for each.
CHECKPOINT_FAMILIES = {"v1-5-pruned-emaonly.safetensors": "sd1", "sd_xl_base_1.0.safetensors": "sdxl"}
LORA_FAMILIES = {"add_detail.safetensors": "sd1"}

# The input image the image-to-image template loads.
INPUT_IMAGE = "example.png"
INPUT_IMAGE_SIZE = (128, 128)

# Sizes and positions in pixels that the cut version shrinks, by node.
PIXEL_INPUTS = {"EmptyLatentImage": ("width", "height"), "LatentUpscale": ("width", "height"),
                "ConditioningSetArea": ("width", "height", "x", "y")}
SHRINK = 4  # 512 px -> 128 px
MAX_STEPS = 3


def catalog():
    return json.loads((TEMPLATES / "catalog.json").read_text())


def template_graph(name):
    return json.loads((TEMPLATES / f"{name}.api.json").read_text())


def install_tiny_models(data_dir, name_for=lambda file_name: file_name):
    """Creates a tiny random-weight checkpoint and LoRA for each file the templates name, called
    name_for(file name) in the service's data directory."""
    for file_name, family in CHECKPOINT_FAMILIES.items():
        run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", name_for(file_name),
                       "--family", family)
    for file_name, family in LORA_FAMILIES.items():
        run_dreamforge("model", "create-tiny", "--kind", "lora", "--data-dir", data_dir,
                       "--name", name_for(file_name).removesuffix(".safetensors"), "--family", family)


def upload_input_image(service):
    """Uploads the image-to-image template's input image: a sunset drawn in a few shapes."""
    image = Image.new("RGB", INPUT_IMAGE_SIZE, (250, 170, 90))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 50, 88, 98), fill=(255, 230, 120))
    draw.rectangle((0, 84, 128, 128), fill=(40, 70, 120))
    source = io.BytesIO()
    image.save(source, format="PNG")
    answer = service.post("/upload/image", files={"image": (INPUT_IMAGE, source.getvalue(), "image/png")})
    assert answer.status_code == 200 and answer.json()["name"] == INPUT_IMAGE, answer.text


def cut_for_cpu(graph, name_for=lambda file_name: file_name):
    """The graph with its sizes shrunk SHRINK times (multiples of 8), at most MAX_STEPS steps, and
    each model file renamed by name_for."""
    graph = copy.deepcopy(graph)
    for node in graph.values():
        inputs = node["inputs"]
        for key in PIXEL_INPUTS.get(node["class_type"], ()):
            inputs[key] = inputs[key] // SHRINK // 8 * 8
        if "steps" in inputs:
            inputs["steps"] = min(inputs["steps"], MAX_STEPS)
        for key in ("ckpt_name", "lora_name"):
            if key in inputs:
                inputs[key] = name_for(inputs[key])
    return graph


def run_to_image(service, graph, client_id="templates"):
    """Queues `graph` through POST /prompt, waits for it and returns its one saved image."""
    answer = service.post("/prompt", {"prompt": graph, "client_id": client_id})
    assert answer.status_code == 200, answer.text
    prompt_id = answer.json()["prompt_id"]
    service.wait_for_job(prompt_id, timeout=600)
    entry = service.get(f"/history/{prompt_id}").json()[prompt_id]
    assert entry["status"]["status_str"] == "success", entry["status"]
    (image,) = [image for output in entry["outputs"].values() for image in output.get("images", [])
                if image["type"] == "output"]
    view = service.get("/view", params={"filename": image["filename"], "subfolder": image["subfolder"],
                                        "type": image["type"]})
    assert view.status_code == 200
    return Image.open(io.BytesIO(view.content))
