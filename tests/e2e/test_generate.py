"""dreamforge generate end to end: real binaries, a tiny model, files checked as a user would."""
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from e2e_support import run_on_terminal


@pytest.fixture(scope="module")
def tiny_sd1(tmp_path_factory, dreamforge):
    path = tmp_path_factory.mktemp("models") / "tiny-sd1"
    dreamforge("model", "create-tiny", path, "--family", "sd1")
    return path


@pytest.fixture(scope="module")
def tiny_sdxl(tmp_path_factory, dreamforge):
    path = tmp_path_factory.mktemp("models") / "tiny-sdxl"
    dreamforge("model", "create-tiny", path, "--family", "sdxl")
    return path


def generated_paths(proc):
    return [line.split("  (")[0] for line in proc.stdout.splitlines() if line.strip()]


def test_batch_writes_one_image_per_seed_with_metadata(dreamforge, tiny_sd1, tmp_path):
    out = tmp_path / "out"
    proc = dreamforge("generate", "a lighthouse at dawn, (oil painting:1.2)", "--model", tiny_sd1,
                      "--negative", "blurry", "--steps", "3", "--seed", "42", "--count", "3",
                      "--width", "64", "--height", "96", "--sampler", "euler_ancestral",
                      "--scheduler", "karras", "--out", out)
    paths = generated_paths(proc)
    assert len(paths) == 3
    seeds = []
    for path in paths:
        image = Image.open(path)
        assert image.size == (64, 96)
        params = image.text["parameters"]
        assert params.startswith("a lighthouse at dawn, (oil painting:1.2)\nNegative prompt: blurry\n")
        assert "Steps: 3" in params and "Sampler: Euler a" in params and "Schedule type: Karras" in params
        assert "Size: 64x96" in params and "Model: tiny-sd1" in params and "Model hash: " in params
        seeds.append(int(params.split("Seed: ")[1].split(",")[0]))
        graph = json.loads(image.text["prompt"])
        assert graph["3"]["class_type"] == "KSampler"
        assert np.asarray(image).std() > 1.0  # not a flat image
    assert seeds == [42, 43, 44]
    arrays = [np.asarray(Image.open(p)) for p in paths]
    assert not np.array_equal(arrays[0], arrays[1])


def test_same_seed_gives_the_same_image(dreamforge, tiny_sd1, tmp_path):
    images = []
    for run in range(2):
        proc = dreamforge("generate", "a red fox", "--model", tiny_sd1, "--steps", "2",
                          "--seed", "7", "--width", "64", "--height", "64", "--out", tmp_path / str(run))
        images.append(np.asarray(Image.open(generated_paths(proc)[0])))
    assert np.array_equal(images[0], images[1])


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_a_long_prompt_beside_a_short_negative_runs(dreamforge, tiny_sd1, tiny_sdxl, tmp_path,
                                                     family):
    # 400 words make at least six 77-token chunks against the negative's one: more than the 4x
    # ComfyUI batches together, so the two run as separate UNet passes, as in ComfyUI.
    model = tiny_sd1 if family == "sd1" else tiny_sdxl
    proc = dreamforge("generate", "a red lighthouse " * 134, "--negative", "blurry, dark, ugly",
                      "--model", model, "--steps", "2", "--seed", "3", "--width", "64",
                      "--height", "64", "--cfg", "6", "--out", tmp_path)
    image = np.asarray(Image.open(generated_paths(proc)[0]))
    assert image.shape[:2] == (64, 64) and image.std() > 0


def test_image_to_image_with_jpeg_output(dreamforge, tiny_sd1, tmp_path):
    init = tmp_path / "init.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 80, dtype=np.uint8), (72, 1))[..., None].repeat(3, 2)).save(init)
    proc = dreamforge("generate", "a watercolor", "--model", tiny_sd1, "--init-image", init,
                      "--denoise", "0.5", "--steps", "4", "--seed", "1", "--format", "jpeg",
                      "--out", tmp_path / "out")
    path = generated_paths(proc)[0]
    assert path.endswith(".jpg")
    image = Image.open(path)
    assert image.size == (80, 72)  # the init image's size (already a multiple of 8)
    comment = image.getexif().get_ifd(0x8769)[0x9286]
    text = comment.decode("utf-16-be", "ignore") if isinstance(comment, bytes) else comment
    assert "Denoising strength: 0.5" in text


def test_sdxl_model_generates(dreamforge, tiny_sdxl, tmp_path):
    proc = dreamforge("generate", "a castle", "--model", tiny_sdxl, "--steps", "2", "--seed", "3",
                      "--width", "64", "--height", "64", "--cfg", "5", "--out", tmp_path)
    assert Image.open(generated_paths(proc)[0]).size == (64, 64)


def test_unknown_model_and_bad_values_fail_clearly(dreamforge, tiny_sd1, tmp_path):
    proc = dreamforge("generate", "x", "--model", tmp_path / "nope", check=False)
    assert proc.returncode != 0 and "model_not_found" in proc.stderr
    proc = dreamforge("generate", "x", "--model", tiny_sd1, "--width", "65", check=False)
    assert proc.returncode != 0 and "width" in proc.stderr and "multiple of 8" in proc.stderr
    proc = dreamforge("generate", "x", "--model", tiny_sd1, "--sampler", "bogus", "--steps", "1",
                      "--width", "64", "--height", "64", "--out", tmp_path, check=False)
    assert proc.returncode != 0 and "value_not_in_list" in proc.stderr


def test_broken_pickle_checkpoint_is_refused(dreamforge, tmp_path):
    ckpt = tmp_path / "models" / "broken.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"\x80\x04not really a pickle")
    proc = dreamforge("generate", "x", "--model", ckpt, "--steps", "1", "--width", "64",
                      "--height", "64", "--out", tmp_path, check=False)
    assert proc.returncode != 0 and "corrupt_file" in proc.stderr


def test_progress_bar_on_a_terminal(bin_dir, tiny_sd1, tmp_path):
    """On a terminal, generate redraws one progress line per image (a pseudo-terminal here)."""
    code, text = run_on_terminal([bin_dir / "dreamforge", "generate", "a cat", "--model", tiny_sd1,
                                  "--steps", "5", "--seed", "1", "--width", "64", "--height", "64",
                                  "--count", "2", "--out", tmp_path])
    assert code == 0
    assert "\r\x1b[Kimage 1/2 [" in text and "step 5/5" in text and "image 2/2 [" in text
    assert "#" * 30 in text  # a full bar at the last step
    assert text.count(".png") == 2


def test_single_file_checkpoint_needs_and_uses_a_clip_vocabulary(dreamforge, tiny_sd1, tmp_path):
    """A single .safetensors checkpoint (original key names) runs through generate; such files
    carry no tokenizer, and this one's tiny vocabulary is not the standard CLIP vocabulary the
    runner uses by default, so without DREAMFORGE_CLIP_VOCAB_DIR naming it the run is refused."""
    import os
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parity"))
    import single_file
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd1), safety_checker=None,
                                                   requires_safety_checker=False)
    checkpoint = tmp_path / "models" / "tiny-sd1.safetensors"
    checkpoint.parent.mkdir()
    single_file.pipeline_to_single_file(pipe, "sd1", checkpoint)
    args = ["generate", "a cat", "--model", checkpoint, "--steps", "2", "--seed", "5",
            "--width", "64", "--height", "64"]
    env = {k: v for k, v in os.environ.items() if k != "DREAMFORGE_CLIP_VOCAB_DIR"}
    proc = dreamforge(*args, "--out", tmp_path / "a", check=False, env=env)
    assert proc.returncode != 0 and "DREAMFORGE_CLIP_VOCAB_DIR" in proc.stderr
    env["DREAMFORGE_CLIP_VOCAB_DIR"] = str(tiny_sd1 / "tokenizer")
    from_file = generated_paths(dreamforge(*args, "--out", tmp_path / "b", env=env))[0]
    from_folder = generated_paths(dreamforge(*args[:3], str(tiny_sd1), *args[4:], "--out",
                                             tmp_path / "c"))[0]
    # Both load paths give the same image up to float rounding, which depends on the CPU (the
    # weights reach the engine through different loaders, in different layouts, and the CPU's
    # matrix kernels may sum them in another order; see the parity suite). Saving truncates to
    # 8 bits, so a difference of 1e-6 can still move a value lying at a level's edge by one level;
    # a wrong weight mapping changes the image by far more, and in most pixels.
    a = np.asarray(Image.open(from_file)).astype(int)
    b = np.asarray(Image.open(from_folder)).astype(int)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 1
    assert np.count_nonzero(a != b) <= a.size // 100
