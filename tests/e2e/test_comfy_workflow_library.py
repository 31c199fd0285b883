"""Dream Forge's own workflows in the user's workflow library: listed by /userdata, in the web
frontend's format, and runnable once the frontend turns them into a prompt."""
import io
import urllib.parse

from PIL import Image

LIBRARY = ["dreamforge_sd1_img2img.json", "dreamforge_sd1_txt2img.json",
           "dreamforge_sdxl_img2img.json", "dreamforge_sdxl_txt2img.json"]


def is_widget(spec):
    kind = spec[0]
    return isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def prompt_from_ui(workflow, object_info):
    """What the web frontend sends to POST /prompt for a workflow: link inputs from the link table,
    widget values in the node definition's input order, skipping the widgets that are not inputs
    (a seed's control_after_generate, an image upload button)."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        definition = object_info[node["type"]]
        inputs = {}
        for slot in node["inputs"]:
            if slot["link"] is not None:
                link = links[slot["link"]]
                inputs[slot["name"]] = [str(link[1]), link[2]]
        values = iter(node["widgets_values"])
        for group in ("required", "optional"):
            for name in definition["input_order"].get(group, []):
                spec = definition["input"][group][name]
                if not is_widget(spec):
                    continue
                inputs[name] = next(values)
                options = spec[1] if len(spec) > 1 else {}
                if options.get("control_after_generate"):
                    next(values)
                if options.get("image_upload"):
                    next(values)
        assert next(values, None) is None, f"{node['type']} has widget values no input takes"
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def library_workflow(service, name):
    response = service.get("/api/userdata/" + urllib.parse.quote("workflows/" + name, safe=""))
    assert response.status_code == 200, response.text
    return response.json()


def run_small(service, prompt):
    """Queues `prompt` at 64x64 with 2 steps (what a user changes in the widgets for a quick try)
    and returns the saved image."""
    for node in prompt.values():
        if node["class_type"] == "EmptyLatentImage":
            node["inputs"].update(width=64, height=64)
        if node["class_type"] == "KSampler":
            node["inputs"]["steps"] = 2
    answer = service.post("/prompt", {"prompt": prompt, "client_id": "library-test"})
    assert answer.status_code == 200, answer.text
    prompt_id = answer.json()["prompt_id"]
    service.wait_for_job(prompt_id)
    entry = service.get(f"/history/{prompt_id}").json()[prompt_id]
    assert entry["status"]["status_str"] == "success", entry["status"]
    (image,) = [image for output in entry["outputs"].values() for image in output["images"]]
    view = service.get("/view", params={"filename": image["filename"], "subfolder": image["subfolder"],
                                        "type": image["type"]})
    assert view.status_code == 200
    return Image.open(io.BytesIO(view.content))


def test_the_library_workflows_are_listed_and_run_on_the_installed_model(start_service):
    service = start_service()
    assert sorted(service.get("/api/userdata?dir=workflows").json()) == LIBRARY
    object_info = service.get("/api/object_info").json()

    txt2img = library_workflow(service, "dreamforge_sd1_txt2img.json")
    assert txt2img["version"] == 0.4 and len(txt2img["nodes"]) == 7
    prompt = prompt_from_ui(txt2img, object_info)
    (loader,) = [node for node in prompt.values() if node["class_type"] == "CheckpointLoaderSimple"]
    assert loader["inputs"]["ckpt_name"] == "tiny"  # the installed sd1 model
    assert run_small(service, prompt).size == (64, 64)

    source = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 200)).save(source, format="PNG")
    uploaded = service.post("/upload/image", files={"image": ("example.png", source.getvalue(), "image/png")})
    assert uploaded.json()["name"] == "example.png"
    img2img = prompt_from_ui(library_workflow(service, "dreamforge_sd1_img2img.json"), object_info)
    assert run_small(service, img2img).size == (64, 48)


def test_a_workflow_the_user_changed_is_not_overwritten_on_restart(start_service, tmp_path):
    service = start_service()
    name = urllib.parse.quote("workflows/dreamforge_sd1_txt2img.json", safe="")
    assert service.post(f"/api/userdata/{name}?overwrite=true", data='{"mine": 1}').status_code == 200
    service.stop()
    service = start_service()
    assert service.get(f"/api/userdata/{name}").json() == {"mine": 1}
