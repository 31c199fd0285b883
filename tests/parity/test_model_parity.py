"""Parity of the network components (CLIP text encoders, UNet, VAE) with transformers/diffusers on
the tiny SD1, SD2 and SDXL pipelines, one forward pass each, in float32 on the CPU."""
import pytest
import torch
from diffusers import UNet2DConditionModel

from parity_support import max_abs_diff

TOLERANCE = 1e-4
EOS = 49407
BOS = 49406


def assert_close(label, actual, expected, tolerance=TOLERANCE):
    assert actual.shape == expected.shape, \
        f"{label}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    diff = max_abs_diff(actual, expected)
    print(f"{label}: max abs diff {diff:.3g}")
    assert diff <= tolerance, f"{label}: max abs diff {diff} > {tolerance}"


def text_encoders(pipe, path):
    encoders = [("text_encoder", pipe.text_encoder)]
    if getattr(pipe, "text_encoder_2", None) is not None:
        encoders.append(("text_encoder_2", pipe.text_encoder_2))
    return [(name, path / name, model) for name, model in encoders]


def token_rows():
    """Rows like the tokenizers make them: BOS, words, EOS, then EOS padding (SD1 style), "!"
    padding (id 0, SDXL encoder 2 style), or no padding with EOS last."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, BOS, (3, 77), generator=generator)
    ids[:, 0] = BOS
    ids[0, 5:] = EOS
    ids[1, 40] = EOS
    ids[1, 41:] = 0
    ids[2, 76] = EOS
    return ids


def test_text_encoders_match_transformers(tiny_pipeline, probe):
    family, pipe, path = tiny_pipeline
    ids = token_rows()
    for name, directory, model in text_encoders(pipe, path):
        expected = model(ids, output_hidden_states=True)
        pooled = getattr(expected, "text_embeds", None)
        if pooled is None:
            pooled = expected.pooler_output
        out, _ = probe("clip_text", {"path": str(directory)}, {"ids": ids})
        assert_close(f"{family} {name} last_hidden_state", out["last_hidden_state"],
                     expected.last_hidden_state)
        assert_close(f"{family} {name} penultimate", out["penultimate"],
                     expected.hidden_states[-2])
        assert_close(f"{family} {name} pooled", out["pooled"], pooled)


def unet_inputs(unet, height, width, timesteps, seed=2, time_ids=6):
    generator = torch.Generator().manual_seed(seed)
    batch = 2
    inputs = {
        "sample": torch.randn(batch, unet.config.in_channels, height, width, generator=generator),
        "timesteps": torch.tensor(timesteps, dtype=torch.float32),
        "context": torch.randn(batch, 77, unet.config.cross_attention_dim, generator=generator),
    }
    if unet.config.addition_embed_type == "text_time":
        pooled = unet.config.projection_class_embeddings_input_dim - \
            time_ids * unet.config.addition_time_embed_dim
        inputs["text_embeds"] = torch.randn(batch, pooled, generator=generator)
        size = [height * 8.0, width * 8.0]
        if time_ids == 6:  # original size, crop top/left, target size
            rows = [size + [0.0, 0.0] + size, size + [16.0, 8.0, 1024.0, 768.0]]
        else:  # refiner: original size, crop top/left, aesthetic score
            rows = [size + [0.0, 0.0, 6.0], size + [16.0, 8.0, 2.5]]
        inputs["time_ids"] = torch.tensor(rows)
    return inputs


def reference_unet(unet, inputs):
    added = None
    if "time_ids" in inputs:
        added = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
    return unet(inputs["sample"], inputs["timesteps"], encoder_hidden_states=inputs["context"],
                added_cond_kwargs=added).sample


@pytest.mark.parametrize("height,width", [(8, 8), (9, 10)])
@pytest.mark.parametrize("timesteps", [[999.0, 500.5], [1.0]])
def test_unet_matches_diffusers(tiny_pipeline, probe, height, width, timesteps):
    family, pipe, path = tiny_pipeline
    inputs = unet_inputs(pipe.unet, height, width, timesteps)
    out, _ = probe("unet", {"path": str(path / "unet")}, inputs)
    assert_close(f"{family} unet {height}x{width} t={timesteps}", out["out"],
                 reference_unet(pipe.unet, inputs))


def test_unet_refiner_five_time_ids(probe, tmp_path):
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                attention_head_dim=(2, 4), use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                transformer_layers_per_block=(2, 3),
                                projection_class_embeddings_input_dim=5 * 8 + 32,
                                cross_attention_dim=32, norm_num_groups=32)
    unet.save_pretrained(str(tmp_path / "unet"), safe_serialization=True)
    inputs = unet_inputs(unet, 8, 10, [750.25, 20.0], time_ids=5)
    assert inputs["time_ids"].shape == (2, 5)
    out, _ = probe("unet", {"path": str(tmp_path / "unet")}, inputs)
    assert_close("refiner unet", out["out"], reference_unet(unet, inputs))


@pytest.mark.parametrize("height,width", [(36, 40), (35, 41)])
def test_vae_encode_matches_diffusers(tiny_pipeline, probe, height, width):
    family, pipe, path = tiny_pipeline
    image = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(3)) * 2 - 1
    expected = pipe.vae.encode(image).latent_dist
    out, _ = probe("vae_encode", {"path": str(path / "vae")}, {"image": image})
    assert_close(f"{family} vae mean {height}x{width}", out["mean"], expected.mean)
    assert_close(f"{family} vae logvar {height}x{width}", out["logvar"], expected.logvar)


def test_vae_decode_matches_diffusers(tiny_pipeline, probe):
    family, pipe, path = tiny_pipeline
    latents = torch.randn(2, 4, 9, 10, generator=torch.Generator().manual_seed(4))
    out, _ = probe("vae_decode", {"path": str(path / "vae")}, {"latents": latents})
    assert_close(f"{family} vae decode", out["image"], pipe.vae.decode(latents).sample)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_stays_close(tiny_pipeline, probe, dtype):
    """Weights in half precision: inputs are cast at the entry, timestep features stay float32."""
    family, pipe, path = tiny_pipeline
    inputs = unet_inputs(pipe.unet, 9, 10, [999.0, 500.5])
    expected = reference_unet(pipe.unet, inputs)
    out, _ = probe("unet", {"path": str(path / "unet"), "dtype": dtype}, inputs)
    relative = max_abs_diff(out["out"], expected) / expected.abs().max().item()
    print(f"{family} unet {dtype}: max abs diff / max abs = {relative:.3g}")
    assert relative < 0.05
    ids = token_rows()
    out, _ = probe("clip_text", {"path": str(path / "text_encoder"), "dtype": dtype}, {"ids": ids})
    expected = pipe.text_encoder(ids).last_hidden_state
    assert max_abs_diff(out["last_hidden_state"], expected) / expected.abs().max().item() < 0.05


def test_bad_inputs_fail_with_validation_errors(tiny_pipeline, probe):
    family, pipe, path = tiny_pipeline
    inputs = unet_inputs(pipe.unet, 8, 8, [10.0])
    inputs["context"] = inputs["context"][..., :-1].contiguous()
    _, proc = probe("unet", {"path": str(path / "unet")}, inputs, expect_ok=False)
    assert proc.returncode == 1 and "error[validation]" in proc.stderr, proc.stderr

    no_eos = torch.full((1, 77), 320)
    _, proc = probe("clip_text", {"path": str(path / "text_encoder")}, {"ids": no_eos},
                    expect_ok=False)
    assert proc.returncode == 1 and "error[validation]" in proc.stderr, proc.stderr

    _, proc = probe("vae_decode", {"path": str(path / "vae")},
                    {"latents": torch.zeros(1, 3, 4, 4)}, expect_ok=False)
    assert proc.returncode == 1 and "error[validation]" in proc.stderr, proc.stderr
