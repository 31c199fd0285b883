"""Image prompts against transformers and diffusers: a tiny random CLIPVisionModelWithProjection
read from its transformers layout (safetensors and a PyTorch pickle) and from the open_clip layout
of the same weights (as SD2.1 unCLIP checkpoints embed it), ComfyUI's CLIP preprocessing, and the unCLIP noise augmentation
against StableUnCLIPImg2ImgPipeline.noise_image_embeddings with the same noise."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from parity_support import max_abs_diff

TOLERANCE = 1e-4
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def tiny_vision_model():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=3,
                              num_attention_heads=2, image_size=16, patch_size=4, projection_dim=32)
    model = CLIPVisionModelWithProjection(config).eval()
    with torch.no_grad():  # wider than the default init so every part shows in the outputs
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layrnorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
            else:
                p.normal_(0, 0.1)
    return model


def open_clip_layout(state, prefix):
    """The transformers tensors under open_clip's visual names (merged qkv, [hidden, proj] proj)."""
    out = {
        prefix + "class_embedding": state["vision_model.embeddings.class_embedding"],
        prefix + "conv1.weight": state["vision_model.embeddings.patch_embedding.weight"],
        prefix + "positional_embedding": state["vision_model.embeddings.position_embedding.weight"],
        prefix + "proj": state["visual_projection.weight"].t().contiguous(),
    }
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for kind in ("weight", "bias"):
            out[f"{prefix}{ours}.{kind}"] = state[f"vision_model.{theirs}.{kind}"]
    layer = 0
    while f"vision_model.encoder.layers.{layer}.layer_norm1.weight" in state:
        src, dst = f"vision_model.encoder.layers.{layer}.", f"{prefix}transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):
            out[dst + "attn.in_proj_" + kind] = torch.cat(
                [state[f"{src}self_attn.{p}_proj.{kind}"] for p in "qkv"])
            for ours, theirs in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                                 ("attn.out_proj", "self_attn.out_proj"), ("mlp.c_fc", "mlp.fc1"),
                                 ("mlp.c_proj", "mlp.fc2")):
                out[f"{dst}{ours}.{kind}"] = state[f"{src}{theirs}.{kind}"]
        layer += 1
    return out


@pytest.fixture(scope="module")
def vision(tmp_path_factory):
    model = tiny_vision_model()
    folder = tmp_path_factory.mktemp("clip_vision")
    state = {k: v.contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}
    transformers_file = folder / "transformers.safetensors"
    save_file(state, str(transformers_file))
    open_clip_file = folder / "unclip_checkpoint.safetensors"
    unrelated = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2, 2)}
    save_file({**open_clip_layout(state, "embedder.model.visual."), **unrelated}, str(open_clip_file))
    pickle_file = folder / "pytorch_model.bin"  # as transformers' own save_pretrained once wrote it
    torch.save(state, str(pickle_file))
    return model, {"transformers": str(transformers_file), "open_clip": str(open_clip_file),
                   "pytorch_bin": str(pickle_file)}


def reference_outputs(model, pixels):
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
    return {"image_embeds": out.image_embeds, "last_hidden_state": out.last_hidden_state,
            "penultimate_hidden_states": out.hidden_states[-2]}


def comfy_preprocess(images, size, crop):
    """ComfyUI's clip_preprocess, written from its documented steps."""
    x = images[..., :3].movedim(-1, 1)
    if x.shape[2] != size or x.shape[3] != size:
        if crop:
            scale = size / min(x.shape[2], x.shape[3])
            target = (round(scale * x.shape[2]), round(scale * x.shape[3]))
        else:
            target = (size, size)
        x = F.interpolate(x, size=target, mode="bicubic", antialias=True)
        top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
        x = x[:, :, top:top + size, left:left + size]
    x = torch.clip(255.0 * x, 0, 255).round() / 255.0
    return (x - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)


@pytest.mark.parametrize("layout", ["transformers", "open_clip", "pytorch_bin"])
def test_tower_matches_transformers(vision, probe, layout):
    model, files = vision
    pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out, _ = probe("clip_vision_forward", {"path": files[layout]}, {"pixel_values": pixels})
    expected = reference_outputs(model, pixels)
    for name, tensor in expected.items():
        assert out[name].shape == tensor.shape, name
        assert max_abs_diff(out[name], tensor) < TOLERANCE, name
    # The layers matter: the penultimate and last hidden states differ.
    assert max_abs_diff(expected["last_hidden_state"], expected["penultimate_hidden_states"]) > 0.1


@pytest.mark.parametrize("crop", ["center", "none"])
@pytest.mark.parametrize("height,width", [(24, 40), (16, 16), (9, 13)])
def test_preprocessing_matches_comfyui(probe, crop, height, width):
    images = torch.rand(2, height, width, 4, generator=torch.Generator().manual_seed(height))
    out, _ = probe("clip_preprocess", {"size": 16, "crop": crop}, {"images": images})
    expected = comfy_preprocess(images, 16, crop == "center")
    assert out["pixels"].shape == (2, 3, 16, 16)
    assert max_abs_diff(out["pixels"], expected) < TOLERANCE


@pytest.mark.parametrize("crop", ["center", "none"])
def test_encode_image_is_preprocessing_then_tower(vision, probe, crop):
    model, files = vision
    images = torch.rand(1, 30, 20, 3, generator=torch.Generator().manual_seed(5))
    out, _ = probe("clip_vision_encode", {"path": files["transformers"], "crop": crop},
                   {"images": images})
    expected = reference_outputs(model, comfy_preprocess(images, 16, crop == "center"))
    for name, tensor in expected.items():
        assert max_abs_diff(out[name], tensor) < TOLERANCE, name


def test_file_without_a_tower_is_refused(tmp_path, probe):
    path = tmp_path / "not_vision.safetensors"
    save_file({"model.diffusion_model.out.2.weight": torch.zeros(4, 4)}, str(path))
    _, proc = probe("clip_vision_forward", {"path": str(path)},
                    {"pixel_values": torch.zeros(1, 3, 16, 16)}, expect_ok=False)
    assert proc.returncode != 0
    assert "no CLIP vision model" in proc.stderr


def diffusers_noised(embeds, level, noise, schedule, mean=None, std=None):
    from diffusers import DDPMScheduler, StableUnCLIPImg2ImgPipeline
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import (
        StableUnCLIPImageNormalizer)
    normalizer = StableUnCLIPImageNormalizer(embedding_dim=embeds.shape[1])
    with torch.no_grad():
        if mean is not None:
            normalizer.mean.copy_(mean.view(1, -1))
            normalizer.std.copy_(std.view(1, -1))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule=schedule,
                              beta_start=1e-4, beta_end=2e-2)
    pipe = SimpleNamespace(image_normalizer=normalizer, image_noising_scheduler=scheduler)
    with torch.no_grad():
        return StableUnCLIPImg2ImgPipeline.noise_image_embeddings(pipe, embeds, level, noise=noise)


# ComfyUI's "linear" LDM schedule is diffusers' "scaled_linear" from 1e-4 to 2e-2.
@pytest.mark.parametrize("ours,theirs", [("squaredcos_cap_v2", "squaredcos_cap_v2"),
                                         ("linear", "scaled_linear")])
@pytest.mark.parametrize("level", [0, 250, 999])
def test_noise_augmentation_matches_diffusers(probe, ours, theirs, level):
    g = torch.Generator().manual_seed(level)
    embeds, noise = torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g)
    out, _ = probe("unclip_augment", {"schedule": ours, "noise_level": level},
                   {"embeds": embeds, "noise": noise})
    expected = diffusers_noised(embeds, level, noise, theirs)
    assert out["augmented"].shape == (2, 64)
    assert max_abs_diff(out["augmented"], expected) < TOLERANCE


def test_noise_augmentation_with_data_statistics_matches_diffusers(probe):
    g = torch.Generator().manual_seed(9)
    embeds, noise = torch.randn(1, 32, generator=g), torch.randn(1, 32, generator=g)
    mean, std = torch.randn(32, generator=g), torch.rand(32, generator=g) + 0.5
    out, _ = probe("unclip_augment", {"schedule": "squaredcos_cap_v2", "noise_level": 400},
                   {"embeds": embeds, "noise": noise, "mean": mean, "std": std})
    expected = diffusers_noised(embeds, 400, noise, "squaredcos_cap_v2", mean, std)
    assert max_abs_diff(out["augmented"], expected) < TOLERANCE


@pytest.fixture(scope="module")
def unclip_unet(tmp_path_factory):
    """A tiny SD2.1-unCLIP-style UNet (v-prediction SD2 layout, image embeddings as class labels)."""
    from diffusers import UNet2DConditionModel
    torch.manual_seed(4)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=(2, 4), use_linear_projection=True, class_embed_type="projection",
        projection_class_embeddings_input_dim=64).eval()
    with torch.no_grad():
        for p in unet.class_embedding.parameters():
            p.normal_(0, 0.2)
    folder = tmp_path_factory.mktemp("unclip_unet")
    unet.save_pretrained(folder, safe_serialization=True)
    return unet, str(folder)


def test_unet_class_embedding_matches_diffusers(unclip_unet, probe):
    unet, folder = unclip_unet
    g = torch.Generator().manual_seed(6)
    sample, context = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 7, 32, generator=g)
    timesteps = torch.tensor([10.0, 700.0])
    labels = torch.randn(2, 64, generator=g)
    out, _ = probe("unet_with_class_labels", {"path": folder},
                   {"sample": sample, "timesteps": timesteps, "context": context,
                    "class_labels": labels})
    with torch.no_grad():
        expected = unet(sample, timesteps, context, class_labels=labels).sample
        without = unet(sample, timesteps, context, class_labels=torch.zeros_like(labels)).sample
    assert max_abs_diff(out["out"], expected) < TOLERANCE * max(1.0, expected.abs().max().item())
    assert max_abs_diff(expected, without) > 1e-3  # the labels reach the output


def test_unet_without_class_labels_is_refused(unclip_unet, probe):
    _, folder = unclip_unet
    _, proc = probe("unet_with_class_labels", {"path": folder},
                    {"sample": torch.zeros(1, 4, 8, 8), "timesteps": torch.tensor([1.0]),
                     "context": torch.zeros(1, 7, 32), "class_labels": torch.zeros(1, 63)},
                    expect_ok=False)
    assert proc.returncode != 0
    assert "class labels" in proc.stderr


def test_sd21_unclip_single_file_loads_its_class_embedding(tmp_path, probe, vision):
    """An SD2.1-unCLIP-style single file (SD2 text encoder, label_emb taking image embeddings,
    the image tower under embedder.model.visual., noise_augmentor buffers) loads as a v-prediction
    SD 2.x model whose UNet has the projection class embedding; the file's tower is readable."""
    import single_file
    import tiny_models
    from safetensors import safe_open
    from safetensors.torch import load_file
    from diffusers import UNet2DConditionModel
    pipe, _ = tiny_models.build("sd2", tmp_path / "pipe")
    # 64-wide heads, so that the UNet's config is inferred from its tensors as for real files.
    torch.manual_seed(5)
    unet = UNet2DConditionModel(
        block_out_channels=(64, 128), layers_per_block=2, sample_size=32, norm_num_groups=32,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=(1, 2), use_linear_projection=True, class_embed_type="projection",
        projection_class_embeddings_input_dim=64).eval()
    # The LDM writer knows SDXL's label_emb as add_embedding; an unCLIP UNet stores it there too.
    renamed = {k.replace("class_embedding.", "add_embedding."): v for k, v in unet.state_dict().items()}
    stand_in = SimpleNamespace(unet=SimpleNamespace(state_dict=lambda: renamed, config=dict(unet.config)),
                               vae=pipe.vae, text_encoder=pipe.text_encoder, scheduler=pipe.scheduler)
    path = tmp_path / "tiny-unclip.safetensors"
    single_file.pipeline_to_single_file(stand_in, "sd2", path, metadata=True)
    with safe_open(str(path), "pt") as f:
        # The UNet's config and the prediction type are left for the loader to infer.
        metadata = {k: v for k, v in f.metadata().items()
                    if k not in ("dreamforge.unet_config", "dreamforge.scheduler_config")}
    tensors = load_file(str(path))
    vision_model, files = vision
    tensors.update({k: v for k, v in load_file(files["open_clip"]).items() if k.startswith("embedder.")})
    tensors["noise_augmentor.alphas_cumprod"] = torch.linspace(0.99, 0.01, 1000)
    save_file(tensors, str(path), metadata=metadata)

    out, proc = probe("load_model", {"path": str(path)})
    info = __import__("json").loads(proc.stdout)
    assert info["family"] == "sd2"
    assert info["prediction"] == "v_prediction"
    assert info["unet"]["class_embed_type"] == "projection"
    assert info["unet"]["projection_class_embeddings_input_dim"] == 64
    assert "addition_embed_type" not in info["unet"]
    for name in ("linear_1.weight", "linear_2.bias"):
        assert torch.equal(out["unet.class_embedding." + name], unet.state_dict()["class_embedding." + name])

    pixels = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    vision_out, _ = probe("clip_vision_forward", {"path": str(path)}, {"pixel_values": pixels})
    expected = reference_outputs(vision_model, pixels)
    assert max_abs_diff(vision_out["image_embeds"], expected["image_embeds"]) < TOLERANCE
