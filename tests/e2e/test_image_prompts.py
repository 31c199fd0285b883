"""Image prompts through `dreamforge serve`: a tiny CLIP vision model from `dreamforge model
create-tiny --kind clip_vision` is offered by CLIPVisionLoader, and ComfyUI's SDXL "revision"
graph (CLIPVisionLoader + LoadImage + CLIPVisionEncode + unCLIPConditioning on a tiny SDXL
checkpoint -> KSampler -> SaveImage) produces an image that follows the image prompt, and so does
ComfyUI's unCLIP graph on a tiny SD2.1-unCLIP-style checkpoint from `create-tiny --kind unclip`
(unCLIPCheckpointLoader's CLIP vision model feeding the UNet's class labels)."""
import pytest

from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import outcome, run, same, with_nodes
from service_support import comfy_graph, install_tiny_model

VISION = "tiny_vision.safetensors"


@pytest.fixture
def service(start_service, tmp_path):
    from PIL import Image
    data_dir = tmp_path / "data"
    install_tiny_model(data_dir, name="tiny_xl", family="sdxl")
    run_dreamforge("model", "create-tiny", "--kind", "unclip", "--family", "sd2",
                   "--data-dir", data_dir, "--name", "tiny_unclip")
    run_dreamforge("model", "create-tiny", "--kind", "clip_vision", "--family", "sdxl",
                   "--data-dir", data_dir, "--name", "tiny_vision")
    (data_dir / "input").mkdir(parents=True)
    Image.new("RGB", (48, 32), (220, 40, 30)).save(data_dir / "input" / "red.png")
    Image.linear_gradient("L").convert("RGB").resize((40, 40)).save(data_dir / "input" / "ramp.png")
    return start_service(data_dir=data_dir)


def revision_graph(image="red.png", strength=1.0, noise_augmentation=0.0, crop="center"):
    """The default graph on the tiny SDXL model with the positive prompt through unCLIPConditioning."""
    return with_nodes(comfy_graph(ckpt="tiny_xl", seed=3, steps=3, prefix="revision"), {
        "20": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": VISION}},
        "21": {"class_type": "LoadImage", "inputs": {"image": image}},
        "22": {"class_type": "CLIPVisionEncode",
               "inputs": {"clip_vision": ["20", 0], "image": ["21", 0], "crop": crop}},
        "23": {"class_type": "unCLIPConditioning",
               "inputs": {"conditioning": ["6", 0], "clip_vision_output": ["22", 0],
                          "strength": strength, "noise_augmentation": noise_augmentation}},
    }, **{"3.positive": ["23", 0]})


def test_object_info_describes_the_image_prompt_nodes(service):
    info = service.get("/object_info").json()
    loader = info["CLIPVisionLoader"]
    assert VISION in loader["input"]["required"]["clip_name"][0]
    assert loader["output"] == ["CLIP_VISION"]
    encode = info["CLIPVisionEncode"]["input"]["required"]
    assert encode["crop"][0] == ["center", "none"]
    unclip = info["unCLIPConditioning"]["input"]["required"]
    assert unclip["strength"] == ["FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}]
    assert unclip["noise_augmentation"] == [
        "FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01}]
    assert info["unCLIPCheckpointLoader"]["output"] == ["MODEL", "CLIP", "VAE", "CLIP_VISION"]


def test_revision_graph_follows_the_image_prompt(service):
    client = ComfyClient(service)
    text_only = run(client, comfy_graph(ckpt="tiny_xl", seed=3, steps=3, prefix="text"))
    red = run(client, revision_graph())
    assert red.shape == (64, 64, 3)
    # The image embedding replaces the pooled text embedding, so the image changes with it.
    assert not same(red, text_only)
    assert not same(red, run(client, revision_graph(image="ramp.png")))
    # Runs repeat (the augmentation noise is seeded by the sampler's seed) ...
    assert same(red, run(client, revision_graph()))
    # ... and the noise augmentation and crop reach the model.
    assert not same(red, run(client, revision_graph(noise_augmentation=0.5)))
    # Strength 0 leaves the conditioning as it was, as ComfyUI does.
    assert same(text_only, run(client, revision_graph(strength=0.0)))
    client.close()


# The revision graph's KSampler settings (euler, normal, 3 steps) as custom-sampling nodes.
KSAMPLER_AS_CUSTOM_SAMPLING = {
    "30": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
    "31": {"class_type": "BasicScheduler", "inputs": {
        "model": ["4", 0], "scheduler": "normal", "steps": 3, "denoise": 1.0}},
}


def test_sampler_custom_augments_with_its_noise_seed(service):
    """SamplerCustom passes its noise_seed to the augmentation as KSampler passes its seed."""
    client = ComfyClient(service)
    expected = run(client, revision_graph(noise_augmentation=0.5))
    graph = revision_graph(noise_augmentation=0.5)
    graph.update(KSAMPLER_AS_CUSTOM_SAMPLING)
    graph.update({
        "3": {"class_type": "SamplerCustom", "inputs": {
            "model": ["4", 0], "add_noise": True, "noise_seed": 3, "cfg": 7.0,
            "positive": ["23", 0], "negative": ["7", 0], "sampler": ["30", 0],
            "sigmas": ["31", 0], "latent_image": ["5", 0]}}})
    custom = run(client, graph)
    assert int(abs(custom - expected).max()) <= 2
    client.close()


def test_sampler_custom_advanced_augments_with_its_noise_seed(service):
    """SamplerCustomAdvanced's guider augments with the NOISE's seed, as ComfyUI passes it."""
    client = ComfyClient(service)
    expected = run(client, revision_graph(noise_augmentation=0.5))
    graph = revision_graph(noise_augmentation=0.5)
    graph.update(KSAMPLER_AS_CUSTOM_SAMPLING)
    graph.update({
        "32": {"class_type": "RandomNoise", "inputs": {"noise_seed": 3}},
        "33": {"class_type": "CFGGuider", "inputs": {
            "model": ["4", 0], "positive": ["23", 0], "negative": ["7", 0], "cfg": 7.0}},
        "3": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["32", 0], "guider": ["33", 0], "sampler": ["30", 0],
            "sigmas": ["31", 0], "latent_image": ["5", 0]}}})
    custom = run(client, graph)
    assert int(abs(custom - expected).max()) <= 2
    client.close()


def test_unclip_loader_refuses_a_checkpoint_without_a_vision_model(service):
    client = ComfyClient(service)
    graph = revision_graph()
    graph["20"] = {"class_type": "unCLIPCheckpointLoader", "inputs": {"ckpt_name": "tiny_xl"}}
    graph["22"]["inputs"]["clip_vision"] = ["20", 3]
    image, error = outcome(client, graph)
    assert image is None
    assert "CLIP vision" in error
    client.close()


def unclip_graph(image="red.png", strength=1.0, noise_augmentation=0.0):
    """ComfyUI's unCLIP example graph on the tiny unCLIP checkpoint."""
    graph = comfy_graph(ckpt="tiny_unclip", seed=4, steps=3, prefix="unclip")
    graph["4"]["class_type"] = "unCLIPCheckpointLoader"
    return with_nodes(graph, {
        "21": {"class_type": "LoadImage", "inputs": {"image": image}},
        "22": {"class_type": "CLIPVisionEncode",
               "inputs": {"clip_vision": ["4", 3], "image": ["21", 0], "crop": "none"}},
        "23": {"class_type": "unCLIPConditioning",
               "inputs": {"conditioning": ["6", 0], "clip_vision_output": ["22", 0],
                          "strength": strength, "noise_augmentation": noise_augmentation}},
    }, **{"3.positive": ["23", 0]})


def test_unclip_checkpoint_graph_follows_the_image_prompt(service):
    client = ComfyClient(service)
    red = run(client, unclip_graph())
    assert red.shape == (64, 64, 3)
    # Without images the class labels are zeros; the image's embedding changes the result.
    assert not same(red, run(client, unclip_graph(strength=0.0)))
    assert not same(red, run(client, unclip_graph(image="ramp.png")))
    assert same(red, run(client, unclip_graph()))
    assert not same(red, run(client, unclip_graph(noise_augmentation=0.3)))
    client.close()
