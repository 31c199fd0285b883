"""Inpainting, outpainting and InstructPix2Pix graphs through `dreamforge serve` on tiny random
checkpoints (create-tiny --kind inpaint / ip2p): LoadImage with its alpha as the mask ->
InpaintModelConditioning -> KSampler, ImagePadForOutpaint -> VAEEncodeForInpaint -> KSampler, and
InstructPixToPixConditioning -> KSampler. Where ComfyUI keeps the latent (outside the noise mask)
the sampled latent is the input's, and the decoded image is nearer the input's own VAE round trip
there than inside the mask (the tiny VAE's attention spreads every change over the whole image)."""
import numpy as np
from PIL import Image

from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import run, same, with_nodes
from service_support import comfy_graph


def _install(data_dir, kind, name):
    run_dreamforge("model", "create-tiny", "--kind", kind, "--family", "sd1",
                   "--data-dir", str(data_dir), "--name", name)


def _photo(data_dir):
    """A 64x64 picture whose left half is transparent: LoadImage's mask is 1 there."""
    (data_dir / "input").mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(30, 220, 64, dtype=np.uint8)
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[..., 0] = ramp[None, :]
    rgba[..., 1] = ramp[:, None]
    rgba[..., 2] = 90
    rgba[..., 3] = 255
    rgba[:, :32, 3] = 0
    Image.fromarray(rgba, "RGBA").save(data_dir / "input" / "photo.png")


def _graph(ckpt, prefix, nodes, **links):
    base = comfy_graph(ckpt=ckpt, prefix=prefix)
    base["20"] = {"class_type": "LoadImage", "inputs": {"image": "photo.png"}}
    return with_nodes(base, nodes, **links)


def _round_trip(client, ckpt, pixels_link, extra_nodes, prefix):
    """The image `pixels_link` encoded and decoded by the checkpoint's VAE."""
    graph = comfy_graph(ckpt=ckpt, prefix=prefix)
    graph["20"] = {"class_type": "LoadImage", "inputs": {"image": "photo.png"}}
    graph.update(extra_nodes)
    graph["40"] = {"class_type": "VAEEncode", "inputs": {"pixels": pixels_link, "vae": ["4", 2]}}
    graph["8"]["inputs"]["samples"] = ["40", 0]
    del graph["3"]
    return run(client, graph)


def _mean_difference(a, b, rows, cols):
    return float(np.abs(a[rows, cols] - b[rows, cols]).mean())


def test_inpaint_model_conditioning_samples_inside_the_mask(start_service, tmp_path):
    data_dir = tmp_path / "data"
    _install(data_dir, "inpaint", "inpaint")
    _photo(data_dir)
    client = ComfyClient(start_service(data_dir=data_dir))
    graph = _graph("inpaint", "inpaint", {
        "30": {"class_type": "InpaintModelConditioning",
               "inputs": {"positive": ["6", 0], "negative": ["7", 0], "vae": ["4", 2],
                          "pixels": ["20", 0], "mask": ["20", 1], "noise_mask": True}}},
        **{"3.positive": ["30", 0], "3.negative": ["30", 1], "3.latent_image": ["30", 2]})
    graph["3"]["inputs"]["steps"] = 4
    image = run(client, graph)
    assert image.shape == (64, 64, 3)
    kept = _round_trip(client, "inpaint", ["20", 0], {}, "inpaint-round-trip")
    masked, unmasked = (slice(None), slice(0, 24)), (slice(None), slice(40, 64))
    assert _mean_difference(image, kept, *unmasked) < _mean_difference(image, kept, *masked)
    # Outside the mask the sampled latent is the input's: pasting the input's latent back there
    # (LatentCompositeMasked through the inverted mask) gives the same image.
    pasted = with_nodes(graph, {
        "41": {"class_type": "InvertMask", "inputs": {"mask": ["20", 1]}},
        "42": {"class_type": "LatentCompositeMasked",
               "inputs": {"destination": ["3", 0], "source": ["30", 2], "x": 0, "y": 0,
                          "resize_source": False, "mask": ["41", 0]}}},
        **{"8.samples": ["42", 0]})
    pasted["9"]["inputs"]["filename_prefix"] = "inpaint-pasted"
    assert same(run(client, pasted), image)
    graph["3"]["inputs"]["seed"] = 99
    assert not same(run(client, graph), image)
    # Without the noise mask the whole latent is sampled (the model still reads the mask), so
    # pasting the input's latent back changes the image.
    graph["3"]["inputs"]["seed"] = pasted["3"]["inputs"]["seed"]
    graph["30"]["inputs"]["noise_mask"] = False
    pasted["30"]["inputs"]["noise_mask"] = False
    assert not same(run(client, pasted), run(client, graph))
    client.close()


def test_outpainting_pads_the_image_and_samples_the_margins(start_service, tmp_path):
    data_dir = tmp_path / "data"
    _install(data_dir, "inpaint", "inpaint")
    _photo(data_dir)
    client = ComfyClient(start_service(data_dir=data_dir))
    pad = {"31": {"class_type": "ImagePadForOutpaint",
                  "inputs": {"image": ["20", 0], "left": 32, "top": 0, "right": 0,
                             "bottom": 16, "feathering": 8}}}
    graph = _graph("inpaint", "outpaint", {
        **pad,
        "32": {"class_type": "VAEEncodeForInpaint",
               "inputs": {"pixels": ["31", 0], "vae": ["4", 2], "mask": ["31", 1],
                          "grow_mask_by": 8}}},
        **{"3.latent_image": ["32", 0]})
    image = run(client, graph)
    assert image.shape == (80, 96, 3)
    kept = _round_trip(client, "inpaint", ["31", 0], pad, "outpaint-round-trip")
    margin, inside = (slice(None), slice(0, 24)), (slice(8, 56), slice(56, 96))
    assert _mean_difference(image, kept, *inside) < _mean_difference(image, kept, *margin)
    # SamplerCustomAdvanced's guider gives the model the same fallback (the latent and its noise
    # mask): KSampler's image.
    advanced = with_nodes(graph, {
        "50": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}},
        "51": {"class_type": "CFGGuider", "inputs": {"model": ["4", 0], "positive": ["6", 0],
                                                     "negative": ["7", 0], "cfg": 7.0}},
        "52": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "53": {"class_type": "BasicScheduler", "inputs": {"model": ["4", 0], "scheduler": "normal",
                                                          "steps": 3, "denoise": 1.0}},
        "54": {"class_type": "SamplerCustomAdvanced",
               "inputs": {"noise": ["50", 0], "guider": ["51", 0], "sampler": ["52", 0],
                          "sigmas": ["53", 0], "latent_image": ["32", 0]}}},
        **{"8.samples": ["54", 0]})
    del advanced["3"]
    advanced["9"]["inputs"]["filename_prefix"] = "outpaint-advanced"
    assert np.abs(run(client, advanced) - image).max() <= 2
    client.close()


def test_instruct_pix2pix_conditioning_runs_an_eight_channel_model(start_service, tmp_path):
    data_dir = tmp_path / "data"
    _install(data_dir, "ip2p", "ip2p")
    _photo(data_dir)
    client = ComfyClient(start_service(data_dir=data_dir))
    graph = _graph("ip2p", "ip2p", {
        "30": {"class_type": "InstructPixToPixConditioning",
               "inputs": {"positive": ["6", 0], "negative": ["7", 0], "vae": ["4", 2],
                          "pixels": ["20", 0]}}},
        **{"3.positive": ["30", 0], "3.negative": ["30", 1], "3.latent_image": ["30", 2]})
    image = run(client, graph)
    assert image.shape == (64, 64, 3)
    # The plain text-to-image graph reads zeros as the image: another image.
    plain = run(client, comfy_graph(ckpt="ip2p", prefix="ip2p-plain"))
    assert not same(plain, image)
    client.close()
