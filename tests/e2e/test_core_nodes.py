"""ComfyUI's core loader, conditioning and model-patch nodes run through `dreamforge serve` with
ComfyUI's semantics: graphs that must give the same image as the plain text-to-image graph do
(identity cases of each node), and graphs that must change it do."""
from comfy_client import ComfyClient
from e2e_support import run_dreamforge
from graph_support import run, same, with_nodes
from service_support import comfy_graph


def test_conditioning_nodes_keep_comfyuis_identities_and_change_what_they_should(start_service):
    service = start_service()
    client = ComfyClient(service)
    base = comfy_graph(prefix="cond")
    base["5"]["inputs"]["width"] = 128
    plain = run(client, base)

    combined_with_itself = with_nodes(
        base, {"20": {"class_type": "ConditioningCombine",
                      "inputs": {"conditioning_1": ["6", 0], "conditioning_2": ["6", 0]}}},
        **{"3.positive": ["20", 0]})
    assert same(run(client, combined_with_itself), plain)

    full_area = with_nodes(
        base, {"21": {"class_type": "ConditioningSetArea",
                      "inputs": {"conditioning": ["6", 0], "width": 128, "height": 64, "x": 0,
                                 "y": 0, "strength": 1.0}}},
        **{"3.positive": ["21", 0]})
    assert same(run(client, full_area), plain)

    every_step = with_nodes(
        base, {"22": {"class_type": "ConditioningSetTimestepRange",
                      "inputs": {"conditioning": ["6", 0], "start": 0.0, "end": 1.0}}},
        **{"3.positive": ["22", 0]})
    assert same(run(client, every_step), plain)

    # A second prompt on the left half only, and only for the first half of the steps.
    regional = with_nodes(base, {
        "23": {"class_type": "CLIPTextEncode", "inputs": {"text": "a green forest", "clip": ["4", 1]}},
        "24": {"class_type": "ConditioningSetArea",
               "inputs": {"conditioning": ["23", 0], "width": 64, "height": 64, "x": 0, "y": 0,
                          "strength": 1.0}},
        "25": {"class_type": "ConditioningSetTimestepRange",
               "inputs": {"conditioning": ["24", 0], "start": 0.0, "end": 0.5}},
        "26": {"class_type": "ConditioningCombine",
               "inputs": {"conditioning_1": ["6", 0], "conditioning_2": ["25", 0]}}},
        **{"3.positive": ["26", 0]})
    assert not same(run(client, regional), plain)

    masked = with_nodes(base, {
        "27": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 128, "height": 64}},
        "28": {"class_type": "ConditioningSetMask",
               "inputs": {"conditioning": ["6", 0], "mask": ["27", 0], "strength": 1.0,
                          "set_cond_area": "default"}}},
        **{"3.positive": ["28", 0]})
    assert same(run(client, masked), plain)

    zeroed = with_nodes(base, {"29": {"class_type": "ConditioningZeroOut",
                                      "inputs": {"conditioning": ["7", 0]}}},
                        **{"3.negative": ["29", 0]})
    assert not same(run(client, zeroed), plain)

    averaged = with_nodes(base, {"30": {"class_type": "ConditioningAverage",
                                        "inputs": {"conditioning_to": ["6", 0],
                                                   "conditioning_from": ["7", 0],
                                                   "conditioning_to_strength": 1.0}}},
                          **{"3.positive": ["30", 0]})
    assert same(run(client, averaged), plain)

    # Cross-attention over a context concatenated with itself attends to each token twice with
    # half the weight: the same result.
    concatenated = with_nodes(base, {"31": {"class_type": "ConditioningConcat",
                                            "inputs": {"conditioning_to": ["6", 0],
                                                       "conditioning_from": ["6", 0]}}},
                              **{"3.positive": ["31", 0]})
    assert same(run(client, concatenated), plain)

    last_layer = with_nodes(base, {"32": {"class_type": "CLIPSetLastLayer",
                                          "inputs": {"clip": ["4", 1], "stop_at_clip_layer": -1}}},
                            **{"6.clip": ["32", 0], "7.clip": ["32", 0]})
    assert same(run(client, last_layer), plain)
    last_layer["32"]["inputs"]["stop_at_clip_layer"] = -2  # its numbers: the parity tests
    run(client, last_layer)
    client.close()


def test_model_patches_and_merges_keep_identities_and_change_what_they_should(start_service):
    service = start_service()
    client = ComfyClient(service)
    base = comfy_graph(prefix="patch")
    plain = run(client, base)

    def model_node(class_type, **inputs):
        return with_nodes(base, {"40": {"class_type": class_type,
                                        "inputs": {"model1": ["4", 0], "model2": ["4", 0], **inputs}}},
                          **{"3.model": ["40", 0]})

    assert same(run(client, model_node("ModelMergeSimple", ratio=0.3)), plain)
    assert same(run(client, model_node("ModelMergeBlocks", input=0.2, middle=0.5, out=0.9)), plain)
    assert not same(run(client, model_node("ModelMergeSubtract", multiplier=1.0)), plain)
    assert not same(run(client, model_node("ModelMergeAdd")), plain)

    clip_merged = with_nodes(base, {"41": {"class_type": "CLIPMergeSimple",
                                           "inputs": {"clip1": ["4", 1], "clip2": ["4", 1], "ratio": 0.4}}},
                             **{"6.clip": ["41", 0], "7.clip": ["41", 0]})
    assert same(run(client, clip_merged), plain)

    eps = with_nodes(base, {"42": {"class_type": "ModelSamplingDiscrete",
                                   "inputs": {"model": ["4", 0], "sampling": "eps", "zsnr": False}}},
                     **{"3.model": ["42", 0]})
    assert same(run(client, eps), plain)
    for sampling in ("v_prediction", "x0"):
        eps["42"]["inputs"]["sampling"] = sampling
        assert not same(run(client, eps), plain), sampling
    # LCM's distilled schedule with its own sampler, as LCM workflows run it (its numbers are
    # checked by the unit tests of the schedule).
    eps["42"]["inputs"]["sampling"] = "lcm"
    eps["3"]["inputs"].update({"sampler_name": "lcm", "scheduler": "sgm_uniform", "cfg": 1.5})
    run(client, eps)

    rescaled = with_nodes(base, {"43": {"class_type": "RescaleCFG",
                                        "inputs": {"model": ["4", 0], "multiplier": 0.0}}},
                          **{"3.model": ["43", 0]})
    assert same(run(client, rescaled), plain)
    rescaled["43"]["inputs"]["multiplier"] = 0.7  # its numbers: the unit tests of rescale_cfg
    run(client, rescaled)
    client.close()


def test_lora_strength_changes_the_image_and_zero_strength_does_not(start_service, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service(data_dir=data_dir)
    run_dreamforge("model", "create-tiny", "--kind", "lora", "--family", "sd1",
                   "--data-dir", str(data_dir), "--name", "style")
    client = ComfyClient(service)
    base = comfy_graph(prefix="lora")
    plain = run(client, base)
    lora = with_nodes(base, {"50": {"class_type": "LoraLoader",
                                    "inputs": {"model": ["4", 0], "clip": ["4", 1],
                                               "lora_name": "style.safetensors",
                                               "strength_model": 0.0, "strength_clip": 0.0}}},
                      **{"3.model": ["50", 0], "6.clip": ["50", 1], "7.clip": ["50", 1]})
    assert same(run(client, lora), plain)
    lora["50"]["inputs"]["strength_model"] = 1.0
    lora["50"]["inputs"]["strength_clip"] = 1.0
    full = run(client, lora)
    assert not same(full, plain)
    lora["50"]["inputs"]["strength_model"] = -1.0
    assert not same(run(client, lora), full)
    # The cached base model was never patched: the plain graph gives its image again.
    assert same(run(client, comfy_graph(prefix="lora-again")), plain)
    client.close()


def test_inpainting_with_a_mask_keeps_the_unmasked_image(start_service, tmp_path):
    """VAEEncodeForInpaint and SetLatentNoiseMask run through serve (that sampling keeps the
    latent outside the mask is checked in latent space by the unit tests: the VAE's attention
    spreads any change over the whole decoded image)."""
    from PIL import Image
    data_dir = tmp_path / "data"
    (data_dir / "input").mkdir(parents=True)
    Image.new("RGBA", (64, 64), (200, 120, 40, 255)).save(data_dir / "input" / "photo.png")
    service = start_service(data_dir=data_dir)
    client = ComfyClient(service)
    base = comfy_graph(prefix="inpaint")
    graph = with_nodes(base, {
        "20": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
        "21": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 64, "height": 64}},
        "22": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 64}},
        "23": {"class_type": "MaskComposite",
               "inputs": {"destination": ["21", 0], "source": ["22", 0], "x": 0, "y": 0,
                          "operation": "add"}},
        "24": {"class_type": "VAEEncodeForInpaint",
               "inputs": {"pixels": ["20", 0], "vae": ["4", 2], "mask": ["23", 0], "grow_mask_by": 0}}},
        **{"3.latent_image": ["24", 0]})
    first = run(client, graph)
    assert first.shape == (64, 64, 3)
    graph["3"]["inputs"]["seed"] = 99
    assert not same(run(client, graph), first)
    masked = with_nodes(graph, {
        "25": {"class_type": "VAEEncode", "inputs": {"pixels": ["20", 0], "vae": ["4", 2]}},
        "26": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["25", 0], "mask": ["23", 0]}}},
        **{"3.latent_image": ["26", 0]})
    assert run(client, masked).shape == (64, 64, 3)
    client.close()
