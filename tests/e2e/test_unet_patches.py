"""ComfyUI's UNet patch nodes (FreeU, FreeU_V2, PerturbedAttentionGuidance, PatchModelAddDownscale)
and ModelSamplingContinuousEDM through `dreamforge serve`: each runs to an image, their neutral
settings give the plain graph's image, and their working settings change it."""
from comfy_client import ComfyClient
from graph_support import outcome, run, same, with_nodes
from service_support import comfy_graph


def patched(base, class_type, **inputs):
    """`base` with KSampler 3 sampling the model through a `class_type` node 40."""
    node = {"class_type": class_type, "inputs": {"model": ["4", 0], **inputs}}
    return with_nodes(base, {"40": node}, **{"3.model": ["40", 0]})


def test_free_u_and_pag_keep_their_identities_and_change_the_image(start_service):
    service = start_service()
    client = ComfyClient(service)
    base = comfy_graph(prefix="unet-patch")
    plain = run(client, base)

    for node in ("FreeU", "FreeU_V2"):
        assert same(run(client, patched(base, node, b1=1.0, b2=1.0, s1=1.0, s2=1.0)), plain), node
    # The tiny UNet's 64-channel decoder level is model_channels * 2: b2 and s2 apply there.
    free_u = run(client, patched(base, "FreeU", b1=1.1, b2=1.2, s1=0.9, s2=0.2))
    assert not same(free_u, plain)
    free_u_v2 = run(client, patched(base, "FreeU_V2", b1=1.3, b2=1.4, s1=0.9, s2=0.2))
    assert not same(free_u_v2, plain)
    assert not same(free_u_v2, free_u)

    assert same(run(client, patched(base, "PerturbedAttentionGuidance", scale=0.0)), plain)
    # The tiny model's random middle attention weighs little: the largest scale shows it.
    assert not same(run(client, patched(base, "PerturbedAttentionGuidance", scale=100.0)), plain)
    run(client, patched(base, "PerturbedAttentionGuidance", scale=3.0))
    client.close()


def test_deep_shrink_changes_the_steps_in_its_range_only(start_service):
    service = start_service()
    client = ComfyClient(service)
    base = comfy_graph(prefix="deep-shrink")
    plain = run(client, base)

    settings = dict(block_number=3, downscale_factor=2.0, start_percent=0.0, end_percent=0.35,
                    downscale_after_skip=True, downscale_method="bicubic", upscale_method="bicubic")
    assert not same(run(client, patched(base, "PatchModelAddDownscale", **settings)), plain)
    for after_skip, method in ((False, "bislerp"), (True, "area")):
        varied = dict(settings, downscale_after_skip=after_skip, downscale_method=method,
                      upscale_method="nearest-exact")
        run(client, patched(base, "PatchModelAddDownscale", **varied))
    # A range starting at the end of sampling never shrinks; neither does a block the UNet lacks.
    never = dict(settings, start_percent=1.0, end_percent=1.0)
    assert same(run(client, patched(base, "PatchModelAddDownscale", **never)), plain)
    absent_block = dict(settings, block_number=30)
    assert same(run(client, patched(base, "PatchModelAddDownscale", **absent_block)), plain)
    client.close()


def test_continuous_edm_sampling_runs_what_the_engine_supports(start_service):
    service = start_service()
    client = ComfyClient(service)
    base = comfy_graph(prefix="edm")
    plain = run(client, base)

    images = {}
    for sampling in ("v_prediction", "eps", "edm", "edm_playground_v2.5"):
        graph = patched(base, "ModelSamplingContinuousEDM", sampling=sampling, sigma_max=120.0,
                        sigma_min=0.002)
        images[sampling] = run(client, graph)
        assert not same(images[sampling], plain), sampling
    assert not same(images["v_prediction"], images["edm"])
    # Playground's latent format: the same EDM sampling seen through per-channel statistics.
    assert not same(images["edm_playground_v2.5"], images["edm"])
    karras = patched(base, "ModelSamplingContinuousEDM", sampling="edm", sigma_max=80.0,
                     sigma_min=0.002)
    karras["3"]["inputs"].update({"sampler_name": "dpmpp_2m", "scheduler": "karras"})
    run(client, karras)

    cosmos = patched(base, "ModelSamplingContinuousEDM", sampling="cosmos_rflow", sigma_max=120.0,
                     sigma_min=0.002)
    image, error = outcome(client, cosmos)
    assert image is None and "cosmos_rflow" in error and "not supported" in error, error
    reversed_range = patched(base, "ModelSamplingContinuousEDM", sampling="eps", sigma_max=0.001,
                             sigma_min=0.002)
    image, error = outcome(client, reversed_range)
    assert image is None and "sigma_min" in error, error
    client.close()
