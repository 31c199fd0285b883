"""ControlNets against diffusers' ControlNetModel on the tiny SD1, SD2 and SDXL pipelines: the UNet's
output with the control residuals, the same weights in the original single-file layout, chaining,
strength, the step window and a whole guided sampling run (fp32 CPU)."""
import json
import re

import pytest
import torch
from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, \
    StableDiffusionXLControlNetPipeline, EulerDiscreteScheduler
from safetensors.torch import save_file

import tiny_models
from parity_support import max_abs_diff
from single_file import unet_to_ldm

TOLERANCE = 1e-4
HINT_CHANNELS = (16, 16, 32, 32)  # three halvings: the hint is 8x the latent
FAMILIES = ("sd1", "sd2", "sdxl")
FAMILY_VALUES = {"sd1": 0, "sd2": 1, "sdxl": 2}


def random_controlnet(unet, seed):
    """A ControlNet for `unet` with random weights, its zero convolutions included."""
    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=HINT_CHANNELS,
                                    load_weights_from_unet=False)
    zero_modules = [net.controlnet_down_blocks, net.controlnet_mid_block,
                    net.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for module in zero_modules:
            for parameter in module.parameters():
                parameter.normal_(0, 0.1)
    return net.eval()


def original_layout(net, prefix):
    """The ControlNet's state dict under the original names ("input_hint_block.N", "zero_convs.N.0",
    "middle_block_out.0", the UNet's LDM names), written independently of the engine's mapping."""
    config = dict(net.config, up_block_types=[])
    state = net.state_dict()
    hint_blocks = len(HINT_CHANNELS) * 2 - 2
    out, unet_part = {}, {}
    for key, tensor in state.items():
        if m := re.fullmatch(r"controlnet_cond_embedding\.(conv_in|conv_out|blocks\.(\d+))\.(\w+)", key):
            index = 0 if m[1] == "conv_in" else 2 * hint_blocks + 2 if m[1] == "conv_out" \
                else 2 * int(m[2]) + 2
            out[f"input_hint_block.{index}.{m[3]}"] = tensor
        elif m := re.fullmatch(r"controlnet_down_blocks\.(\d+)\.(\w+)", key):
            out[f"zero_convs.{m[1]}.0.{m[2]}"] = tensor
        elif m := re.fullmatch(r"controlnet_mid_block\.(\w+)", key):
            out[f"middle_block_out.0.{m[1]}"] = tensor
        else:
            unet_part[key] = tensor
    out.update(unet_to_ldm(unet_part, config))
    return {prefix + key: value.contiguous() for key, value in out.items()}


@pytest.fixture(scope="module", params=FAMILIES)
def controlled(request, tmp_path_factory):
    """(family, pipeline, pipeline folder, ControlNet, its diffusers folder, work folder)."""
    family = request.param
    work = tmp_path_factory.mktemp(f"controlnet_{family}")
    pipe, path = tiny_models.build(family, work)
    net = random_controlnet(pipe.unet, seed=5)
    net.save_pretrained(str(work / "controlnet"), safe_serialization=True)
    return family, pipe, path, net, work / "controlnet", work


def call_inputs(unet, batch=2, height=8, width=6, seed=3):
    generator = torch.Generator().manual_seed(seed)
    inputs = {"sample": torch.randn(batch, 4, height, width, generator=generator),
              "timesteps": torch.tensor([901.0, 14.0][:batch]),
              "context": torch.randn(batch, 77, unet.config.cross_attention_dim, generator=generator),
              "hint": torch.rand(batch, 3, height * 8, width * 8, generator=generator)}
    if unet.config.addition_embed_type == "text_time":
        pooled = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
        inputs["text_embeds"] = torch.randn(batch, pooled, generator=generator)
        inputs["time_ids"] = torch.tensor([[64.0, 48.0, 0.0, 0.0, 64.0, 48.0]] * batch)
    return inputs


def added_kwargs(inputs):
    """SDXL's pooled text embedding and time ids as diffusers' models take them."""
    if "text_embeds" not in inputs:
        return {}
    return {"added_cond_kwargs": {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}}


def plain_unet(pipe, inputs):
    return pipe.unet(inputs["sample"], inputs["timesteps"], encoder_hidden_states=inputs["context"],
                     **added_kwargs(inputs)).sample


def reference(pipe, net, inputs, scale=1.0):
    added = added_kwargs(inputs)
    down, mid = net(inputs["sample"], inputs["timesteps"], encoder_hidden_states=inputs["context"],
                    controlnet_cond=inputs["hint"], conditioning_scale=scale, return_dict=False,
                    **added)
    out = pipe.unet(inputs["sample"], inputs["timesteps"], encoder_hidden_states=inputs["context"],
                    down_block_additional_residuals=down, mid_block_additional_residual=mid,
                    **added).sample
    return out, down, mid


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_unet_with_control_matches_diffusers(controlled, probe, strength):
    family, pipe, path, net, folder, _ = controlled
    inputs = call_inputs(pipe.unet)
    out, _ = probe("controlnet_unet", {"pipeline": str(path), "controlnet": str(folder),
                                       "strength": strength}, inputs)
    expected, down, mid = reference(pipe, net, inputs, scale=strength)
    assert max_abs_diff(out["mid"], mid) < TOLERANCE
    for i, residual in enumerate(down):
        assert max_abs_diff(out[f"down_{i}"], residual) < TOLERANCE, f"{family} residual {i}"
    assert max_abs_diff(out["out"], expected) < TOLERANCE
    # The control matters: the plain UNet's output is far from it.
    assert max_abs_diff(plain_unet(pipe, inputs), expected) > 100 * TOLERANCE


@pytest.mark.parametrize("prefix", ["control_model.", ""])
def test_original_layout_file_loads_to_the_same_result(controlled, probe, prefix):
    family, pipe, path, net, folder, work = controlled
    single = work / f"original_{prefix or 'bare'}.safetensors"
    save_file(original_layout(net, prefix), str(single),
              metadata={"dreamforge.controlnet_config": json.dumps(dict(net.config))})
    inputs = call_inputs(pipe.unet, seed=4)
    args = {"pipeline": str(path), "strength": 1.0}
    from_folder, _ = probe("controlnet_unet", {**args, "controlnet": str(folder)}, inputs)
    from_file, _ = probe("controlnet_unet", {**args, "controlnet": str(single)}, inputs)
    assert max_abs_diff(from_file["out"], from_folder["out"]) < 1e-5
    detected, _ = probe("controlnet_detect", {"controlnet": str(single)})
    assert detected["family"].item() == FAMILY_VALUES[family]


def test_diffusers_single_file_beside_its_config(controlled, probe):
    """ComfyUI lists a diffusers folder's weights file; its config.json is read from beside it."""
    _, pipe, path, net, folder, _ = controlled
    inputs = call_inputs(pipe.unet, batch=1, seed=6)
    out, _ = probe("controlnet_unet", {"pipeline": str(path),
                                       "controlnet": str(folder / "diffusion_pytorch_model.safetensors")},
                   inputs)
    assert max_abs_diff(out["out"], reference(pipe, net, inputs)[0]) < TOLERANCE


def test_pickled_file_loads_to_the_same_result(controlled, probe):
    """The same weights saved with torch.save (.pth, a config.json beside it) give the residuals and
    output of the safetensors folder."""
    family, pipe, path, net, folder, work = controlled
    pickled = work / "pickled"
    pickled.mkdir(exist_ok=True)
    torch.save({key: value.contiguous() for key, value in net.state_dict().items()},
               str(pickled / "controlnet.pth"))
    (pickled / "config.json").write_text((folder / "config.json").read_text())
    inputs = call_inputs(pipe.unet, seed=6)
    args = {"pipeline": str(path), "strength": 1.0}
    from_folder, _ = probe("controlnet_unet", {**args, "controlnet": str(folder)}, inputs)
    from_pth, _ = probe("controlnet_unet", {**args, "controlnet": str(pickled / "controlnet.pth")},
                        inputs)
    for name, value in from_folder.items():
        assert max_abs_diff(from_pth[name], value) < 1e-6, f"{family} {name}"


def test_two_chained_controls_add_up(controlled, probe):
    _, pipe, path, net, folder, _ = controlled
    inputs = call_inputs(pipe.unet, seed=7)
    args = {"pipeline": str(path), "controlnet": str(folder)}
    twice, _ = probe("controlnet_unet", {**args, "chain": 2, "strength": 0.5}, inputs)
    once, _ = probe("controlnet_unet", {**args, "chain": 1, "strength": 1.0}, inputs)
    assert max_abs_diff(twice["out"], once["out"]) < TOLERANCE
    assert max_abs_diff(twice["mid"], once["mid"]) < TOLERANCE


def test_outside_its_window_a_control_adds_nothing(controlled, probe):
    _, pipe, path, net, folder, _ = controlled
    inputs = call_inputs(pipe.unet, seed=8)
    # sigma 14.6 is the schedule's first step; a window from half the steps on excludes it.
    late, _ = probe("controlnet_unet", {"pipeline": str(path), "controlnet": str(folder),
                                        "start_percent": 0.5, "sigma": 14.6}, inputs)
    assert "mid" not in late
    assert max_abs_diff(late["out"], plain_unet(pipe, inputs)) < TOLERANCE


def run_diffusers_pipeline(family, pipe, net, hint, latents, steps, guidance):
    pipeline_class = StableDiffusionXLControlNetPipeline if family == "sdxl" \
        else StableDiffusionControlNetPipeline
    components = {k: v for k, v in pipe.components.items()
                  if k not in ("safety_checker", "feature_extractor", "image_encoder")}
    controlled_pipe = pipeline_class(**components, controlnet=net,
                                     **({} if family == "sdxl" else
                                        {"safety_checker": None, "feature_extractor": None,
                                         "requires_safety_checker": False}))
    controlled_pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    with torch.no_grad():
        return controlled_pipe(prompt="a squirrel", negative_prompt="blurry", image=hint,
                               num_inference_steps=steps, guidance_scale=guidance,
                               latents=latents.clone(), output_type="latent", height=64, width=64,
                               generator=torch.manual_seed(0)).images, controlled_pipe.scheduler


def test_sampling_run_matches_the_controlnet_pipeline(controlled, probe, clip_tokenizer_dir):
    family, pipe, path, net, folder, _ = controlled
    steps, guidance = 4, 6.0
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(9))
    hint = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(10))
    expected, scheduler = run_diffusers_pipeline(family, pipe, net, hint, latents, steps, guidance)
    sigmas = scheduler.sigmas.to(torch.float32)
    args = {"pipeline": str(path), "controlnet": str(folder), "prompt": "a squirrel",
            "negative": "blurry", "cfg": guidance, "sampler": "euler"}
    inputs = {"latents": latents * scheduler.init_noise_sigma, "sigmas": sigmas, "hint": hint}
    out, _ = probe("controlnet_txt2img", args, inputs)
    bound = TOLERANCE * max(1.0, expected.abs().max().item())
    assert max_abs_diff(out["latents"], expected) < bound
    # Strength 0 samples as without the ControlNet, far from the controlled run.
    uncontrolled, _ = probe("controlnet_txt2img", {**args, "strength": 0.0}, inputs)
    assert max_abs_diff(uncontrolled["latents"], expected) > 100 * bound


def test_shuffle_controlnets_pool_their_residuals(controlled, probe):
    """diffusers' global_pool_conditions, and ComfyUI's rule for files named *_shuffle."""
    family, pipe, path, net, _, work = controlled
    pooled = random_controlnet(pipe.unet, seed=5)
    pooled.register_to_config(global_pool_conditions=True)
    folder = work / "pooled"
    pooled.save_pretrained(str(folder), safe_serialization=True)
    inputs = call_inputs(pipe.unet, seed=11)
    expected, _, mid = reference(pipe, pooled, inputs)
    assert mid.shape[2:] == (1, 1)
    out, _ = probe("controlnet_unet", {"pipeline": str(path), "controlnet": str(folder)}, inputs)
    assert max_abs_diff(out["out"], expected) < TOLERANCE
    named = work / "control_tiny_shuffle.safetensors"
    save_file(original_layout(net, "control_model."), str(named),
              metadata={"dreamforge.controlnet_config": json.dumps(dict(net.config))})
    by_name, _ = probe("controlnet_unet", {"pipeline": str(path), "controlnet": str(named)}, inputs)
    assert max_abs_diff(by_name["out"], expected) < TOLERANCE
