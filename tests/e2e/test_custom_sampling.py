"""ComfyUI's custom-sampling graphs against `dreamforge serve`: SamplerCustom and
SamplerCustomAdvanced give KSampler's image for the same seed, steps, cfg, sampler and scheduler."""
import numpy as np

from graph_support import pixels
from service_support import comfy_graph


def run_graph(service, graph):
    """Queues an API graph, waits for it and returns {output node id: pixels of its first image}."""
    response = service.post("/prompt", {"prompt": graph, "client_id": "custom-sampling"})
    assert response.status_code == 200, response.text
    prompt_id = response.json()["prompt_id"]
    service.wait_for_job(prompt_id)
    entry = service.get(f"/history/{prompt_id}").json()[prompt_id]
    assert entry["status"]["status_str"] == "success", entry["status"]
    images = {}
    for node, output in entry["outputs"].items():
        image = output["images"][0]
        view = service.get("/view", params={"filename": image["filename"],
                                            "subfolder": image["subfolder"], "type": image["type"]})
        assert view.status_code == 200
        images[node] = pixels(view.content)
    return images


def ksampler_graph(sampler, seed=5, steps=3, cfg=7.0):
    graph = comfy_graph(seed=seed, steps=steps, prefix="ksampler")
    graph["3"]["inputs"].update({"sampler_name": sampler, "cfg": cfg})
    return graph


def sampler_nodes(sampler, scheduler="normal", steps=3):
    """KSamplerSelect 10 and BasicScheduler 11 on the checkpoint's model."""
    return {
        "10": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler}},
        "11": {"class_type": "BasicScheduler", "inputs": {
            "model": ["4", 0], "scheduler": scheduler, "steps": steps, "denoise": 1.0}},
    }


def sampler_custom_graph(sampler, seed=5, steps=3, cfg=7.0):
    """SamplerCustom 3 in KSampler's place; its denoised_output is decoded and saved too (node 13)."""
    graph = comfy_graph(prefix="custom")
    graph.update(sampler_nodes(sampler, steps=steps))
    graph["3"] = {"class_type": "SamplerCustom", "inputs": {
        "model": ["4", 0], "add_noise": True, "noise_seed": seed, "cfg": cfg,
        "positive": ["6", 0], "negative": ["7", 0], "sampler": ["10", 0], "sigmas": ["11", 0],
        "latent_image": ["5", 0]}}
    graph["12"] = {"class_type": "VAEDecode", "inputs": {"samples": ["3", 1], "vae": ["4", 2]}}
    graph["13"] = {"class_type": "SaveImage", "inputs": {"filename_prefix": "denoised", "images": ["12", 0]}}
    return graph


def sampler_custom_advanced_graph(sampler, seed=5, steps=3, cfg=7.0):
    """SamplerCustomAdvanced 3 with RandomNoise 14 and CFGGuider 15."""
    graph = comfy_graph(prefix="advanced")
    graph.update(sampler_nodes(sampler, steps=steps))
    graph["14"] = {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}}
    graph["15"] = {"class_type": "CFGGuider", "inputs": {
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "cfg": cfg}}
    graph["3"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
        "noise": ["14", 0], "guider": ["15", 0], "sampler": ["10", 0], "sigmas": ["11", 0],
        "latent_image": ["5", 0]}}
    return graph


def assert_same_image(actual, expected):
    assert actual.shape == expected.shape
    assert expected.std() > 1  # a picture, not a flat field that any sampler would match
    assert np.abs(actual - expected).max() <= 2


def test_sampler_custom_gives_ksamplers_image(start_service):
    service = start_service()
    expected = run_graph(service, ksampler_graph("euler"))["9"]
    custom = run_graph(service, sampler_custom_graph("euler"))
    assert_same_image(custom["9"], expected)
    # Euler's last step to sigma 0 lands on the step's x0 estimate: denoised_output is the image.
    assert_same_image(custom["13"], expected)


def test_sampler_custom_advanced_with_random_noise_and_cfg_guider_gives_ksamplers_image(start_service):
    service = start_service()
    expected = run_graph(service, ksampler_graph("euler_ancestral", seed=9))["9"]
    advanced = run_graph(service, sampler_custom_advanced_graph("euler_ancestral", seed=9))
    assert_same_image(advanced["9"], expected)


def test_unknown_sampler_and_scheduler_names_are_refused_at_validation(start_service):
    service = start_service()
    graph = sampler_custom_graph("euler_fancy")
    graph["11"]["inputs"]["scheduler"] = "fancy"
    response = service.post("/prompt", {"prompt": graph})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    errors = {node: [(e["type"], e["extra_info"]["input_name"]) for e in entry["errors"]]
              for node, entry in body["node_errors"].items()}
    assert errors == {"10": [("value_not_in_list", "sampler_name")],
                      "11": [("value_not_in_list", "scheduler")]}
    assert body["node_errors"]["10"]["class_type"] == "KSamplerSelect"
    assert body["node_errors"]["11"]["class_type"] == "BasicScheduler"
