"""Image files and their embedded metadata interoperate with Pillow, the reader A1111, ComfyUI and
most tools build on: files Dream Forge writes read back right in Pillow (PNG text chunks, JPEG/WebP
EXIF as A1111 and ComfyUI lay it out, pixels), and files Pillow writes decode right in Dream Forge.
The C++ side is the df_unit_tests ImageInterop suite, driven through two directories."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageOps, PngImagePlugin

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DREAMFORGE_BIN", ROOT / "build" / "bin"))
UNIT_TESTS = BIN / "df_unit_tests"

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
MODEL, MAKE, ORIENTATION = 0x0110, 0x010F, 0x0112


def run_interop_test(name, **env):
    if not UNIT_TESTS.is_file():
        pytest.fail(f"no df_unit_tests in {BIN}; build it or set DREAMFORGE_BIN")
    proc = subprocess.run([str(UNIT_TESTS), f"--gtest_filter=ImageInterop.{name}"],
                          env={**os.environ, **{k: str(v) for k, v in env.items()}},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[  PASSED  ] 1 test" in proc.stdout, proc.stdout


def a1111_user_comment(raw):
    """What A1111's reader makes of a UserComment (piexif's UserComment.load)."""
    assert raw[:8] == b"UNICODE\0", raw[:8]
    return raw[8:].decode("utf_16_be")


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    directory = tmp_path_factory.mktemp("samples")
    run_interop_test("WritesSamplesForOtherReaders", DF_IMAGE_SAMPLES_DIR=directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    return directory, {entry["file"]: entry for entry in manifest}


def expected_pixels(directory, entry):
    raw = np.frombuffer((directory / entry["pixels"]).read_bytes(), dtype=np.uint8)
    return raw.reshape(entry["height"], entry["width"], entry["channels"])


@pytest.mark.parametrize("name", ["rgb.png", "rgba.png"])
def test_png_text_chunks_and_pixels_read_in_pillow(samples, name):
    directory, manifest = samples
    entry = manifest[name]
    with Image.open(directory / name) as image:
        assert image.format == "PNG"
        assert image.size == (entry["width"], entry["height"])
        assert image.mode == ("RGBA" if entry["channels"] == 4 else "RGB")
        assert list(image.text.items()) == [tuple(kv) for kv in entry["metadata"]]
        assert len(image.text["workflow"]) >= 100 * 1024
        json.loads(image.text["prompt"])  # ComfyUI parses these chunks as JSON
        json.loads(image.text["workflow"])
        assert np.array_equal(np.asarray(image), expected_pixels(directory, entry))


@pytest.mark.parametrize("name", ["rgb.jpg", "rgb.webp", "rgba.webp"])
def test_exif_metadata_reads_as_a1111_and_comfyui_expect(samples, name):
    directory, manifest = samples
    entry = manifest[name]
    metadata = dict(entry["metadata"])
    with Image.open(directory / name) as image:
        assert image.size == (entry["width"], entry["height"])
        exif = image.getexif()
        assert a1111_user_comment(exif.get_ifd(EXIF_IFD)[USER_COMMENT]) == metadata["parameters"]
        assert exif[MODEL] == "prompt:" + metadata["prompt"]  # ComfyUI's WebP layout
        assert exif[MAKE] == "workflow:" + metadata["workflow"]
        pixels = np.asarray(image.convert("RGBA" if entry["channels"] == 4 else "RGB"))
        difference = np.abs(pixels.astype(int) - expected_pixels(directory, entry).astype(int))
        assert difference.mean() < 3.0


def test_a1111_parameters_text_layout(samples):
    directory, manifest = samples
    with Image.open(directory / "rgb.png") as image:
        lines = image.text["parameters"].split("\n")
    assert lines[0] == "桜の木の下の猫, cherry blossoms 🌸, café"
    assert lines[1] == "Negative prompt: lowres, ぼやけた"
    assert lines[2] == ("Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, "
                        "Seed: 156680208700286, Size: 64x48, Model hash: 6ce0161689, "
                        "Model: v1-5-pruned-emaonly, Denoising strength: 0.6")


# ---- files Pillow writes, decoded by Dream Forge ----

def gradient(width, height, mode):
    """A smooth test image in `mode` that lossy codecs keep close."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2)], -1)
    image = Image.fromarray(rgb.astype(np.uint8))
    if mode in ("RGBA", "LA"):
        alpha = Image.fromarray((255 - x * 200 // (width - 1)).astype(np.uint8))
        image = image.convert(mode[:-1])
        image.putalpha(alpha)
        return image
    return image.convert(mode)


class ForeignFiles:
    """Writes files with Pillow plus the manifest ReadsFilesOtherWritersMade checks them against."""

    def __init__(self, directory):
        self.directory = directory
        self.entries = []

    def add(self, name, expected, tolerance=0.0, metadata=None, **save_options):
        image = save_options.pop("image")
        image.save(self.directory / name, **save_options)
        expected = np.ascontiguousarray(expected, dtype=np.uint8)
        (self.directory / f"{name}.raw").write_bytes(expected.tobytes())
        entry = {"file": name, "width": expected.shape[1], "height": expected.shape[0],
                 "channels": expected.shape[2], "pixels": f"{name}.raw", "tolerance": tolerance}
        if metadata is not None:
            entry["metadata"] = metadata
        self.entries.append(entry)

    def write_manifest(self):
        (self.directory / "manifest.json").write_text(json.dumps(self.entries))


def decoded_by_pillow(path, mode):
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert(mode))


def test_files_pillow_writes_decode_in_dream_forge(tmp_path):
    files = ForeignFiles(tmp_path)

    # PNG flavours: palette with transparency, gray, gray + alpha, 16-bit gray (high byte kept).
    palette = gradient(24, 16, "RGB").quantize(8)
    palette.info["transparency"] = 0
    files.add("palette.png", np.asarray(palette.convert("RGBA")), image=palette)
    gray = gradient(24, 16, "L")
    files.add("gray.png", np.asarray(gray.convert("RGB")), image=gray)
    gray_alpha = gradient(24, 16, "LA")
    files.add("gray_alpha.png", np.asarray(gray_alpha.convert("RGBA")), image=gray_alpha)
    deep = (np.arange(24 * 16, dtype=np.uint16).reshape(16, 24) * 171).astype(np.uint16)
    high = np.repeat((deep >> 8).astype(np.uint8)[..., None], 3, axis=-1)
    files.add("gray16.png", high, image=Image.fromarray(deep))

    # PNG text in every chunk kind: tEXt (Latin-1), zTXt, compressed iTXt (UTF-8).
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "café\nSteps: 4, Sampler: Euler, CFG scale: 2, Seed: 3, Size: 24x16")
    info.add_text("prompt", '{"1": {"class_type": "KSampler"}}', zip=True)
    info.add_itxt("workflow", '{"title": "桜 🌸"}', zip=True)
    rgb = gradient(24, 16, "RGB")
    files.add("text.png", np.asarray(rgb), image=rgb, pnginfo=info,
              metadata=[["parameters", "café\nSteps: 4, Sampler: Euler, CFG scale: 2, Seed: 3, Size: 24x16"],
                        ["prompt", '{"1": {"class_type": "KSampler"}}'],
                        ["workflow", '{"title": "桜 🌸"}']])

    # JPEG flavours: grayscale, progressive, CMYK, and every EXIF orientation with a UserComment in
    # the little-endian EXIF Pillow writes.
    for name, image, options in [("gray.jpg", gradient(24, 16, "L"), {}),
                                 ("progressive.jpg", gradient(24, 16, "RGB"), {"progressive": True}),
                                 ("cmyk.jpg", gradient(24, 16, "RGB").convert("CMYK"), {})]:
        image.save(tmp_path / "probe.jpg", quality=95, **options)
        with Image.open(tmp_path / "probe.jpg") as reloaded:
            if reloaded.mode == "CMYK":
                cmyk = np.asarray(reloaded).astype(np.int32)
                expected = (255 - cmyk[..., :3]) * (255 - cmyk[..., 3:]) / 255.0
            else:
                expected = np.asarray(reloaded.convert("RGB"))
        files.add(name, np.rint(expected), tolerance=1.0, image=image, quality=95, **options)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"UNICODE\0" + f"oriented {orientation} 桜".encode("utf-16-le")
        name = f"orientation{orientation}.jpg"
        rgb = gradient(24, 16, "RGB")
        rgb.save(tmp_path / name, quality=95, exif=exif)
        files.add(name, decoded_by_pillow(tmp_path / name, "RGB"), tolerance=1.0, image=rgb,
                  quality=95, exif=exif, metadata=[["parameters", f"oriented {orientation} 桜"]])

    # WebP: lossless with alpha (exact), and lossy with ComfyUI's EXIF layout.
    rgba = gradient(24, 16, "RGBA")
    files.add("lossless.webp", np.asarray(rgba), image=rgba, lossless=True)
    exif = Image.Exif()
    exif[MODEL] = 'prompt:{"3": {"class_type": "KSampler"}}'
    exif[MAKE] = 'workflow:{"nodes": []}'
    rgb = gradient(24, 16, "RGB")
    rgb.save(tmp_path / "probe.webp", quality=90, exif=exif)
    files.add("comfyui.webp", decoded_by_pillow(tmp_path / "probe.webp", "RGB"), tolerance=1.0,
              image=rgb, quality=90, exif=exif,
              metadata=[["prompt", '{"3": {"class_type": "KSampler"}}'], ["workflow", '{"nodes": []}']])

    files.write_manifest()
    run_interop_test("ReadsFilesOtherWritersMade", DF_IMAGE_FOREIGN_DIR=tmp_path)
