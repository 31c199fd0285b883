"""ComfyUI's Canny node against kornia.filters.canny as ComfyUI calls it (the IMAGE moved to
channels-first, the edges repeated to 3 channels): edges are 0 or 1, and at most a tiny fraction
of pixels may differ where float rounding tips a magnitude over a threshold or a tie."""
import numpy as np
import pytest
import torch
from kornia.filters import canny
from PIL import Image, ImageDraw, ImageFilter

from parity_support import ROOT

MAX_DIFFERING_FRACTION = 1e-3
TEMPLATES = ROOT / "share" / "dreamforge" / "templates"


def _to_image(picture):
    return torch.from_numpy(np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0)[None]


def _drawn_scene():
    """Shapes over a gradient, softened and with a little noise, like a photo's edges."""
    x = np.linspace(0, 1, 200, dtype=np.float32)
    y = np.linspace(0, 1, 160, dtype=np.float32)[:, None]
    base = np.stack([0.2 + 0.5 * x + 0 * y, 0.3 + 0.4 * y + 0 * x, 0.6 - 0.3 * x * y], -1)
    picture = Image.fromarray((base * 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((20, 30, 90, 110), fill=(230, 200, 40))
    draw.rectangle((110, 20, 180, 70), fill=(30, 60, 160))
    draw.polygon([(120, 140), (190, 90), (150, 150)], fill=(200, 40, 60))
    draw.line((10, 150, 190, 120), fill=(250, 250, 250), width=3)
    picture = picture.filter(ImageFilter.GaussianBlur(0.8))
    noise = np.random.default_rng(0).normal(0, 0.01, (160, 200, 3)).astype(np.float32)
    return (_to_image(picture) + torch.from_numpy(noise)).clamp(0, 1)


def _flat_shapes():
    """Noise-free axis-aligned shapes: equal magnitudes across each step test the tie rule."""
    image = torch.zeros(1, 40, 48, 3)
    image[:, 8:20, 6:24] = 1.0
    image[:, 24:36, 28:44] = torch.tensor([0.2, 0.9, 0.5])
    return image


IMAGES = {
    "drawn_scene": _drawn_scene,
    "flat_shapes": _flat_shapes,
    "generated_photo":
        lambda: _to_image(Image.open(TEMPLATES / "dreamforge_sd15_image_to_image-1.webp")),
    "generated_portrait":
        lambda: _to_image(Image.open(TEMPLATES / "dreamforge_sd15_hires_fix-1.webp")),
}


def comfyui_canny(image, low, high):
    _, edges = canny(image.movedim(-1, 1), low, high)
    return edges.repeat(1, 3, 1, 1).movedim(1, -1)


@pytest.mark.parametrize("thresholds", [(0.4, 0.8), (0.1, 0.3), (0.05, 0.05), (0.7, 0.99)])
@pytest.mark.parametrize("name", sorted(IMAGES))
def test_canny_matches_kornia(probe, name, thresholds):
    image = IMAGES[name]()
    low, high = thresholds
    out, _ = probe("canny", {"low_threshold": low, "high_threshold": high}, {"image": image})
    expected = comfyui_canny(image, low, high)
    edges = out["edges"]
    assert edges.shape == expected.shape
    assert set(edges.unique().tolist()) <= {0.0, 1.0}
    differing = (edges != expected).float().mean().item()
    assert differing <= MAX_DIFFERING_FRACTION, f"{differing:.4%} of pixels differ"
    # The comparison means something: the image has edges at the lower thresholds.
    if low <= 0.1:
        assert expected.mean().item() > 0.01


def test_batch_is_detected_per_image(probe):
    image = torch.cat([IMAGES["drawn_scene"]()[:, :128, :128], IMAGES["generated_photo"]()])
    out, _ = probe("canny", {"low_threshold": 0.4, "high_threshold": 0.8}, {"image": image})
    expected = comfyui_canny(image, 0.4, 0.8)
    assert (out["edges"] != expected).float().mean().item() <= MAX_DIFFERING_FRACTION


def test_image_smaller_than_the_blur_is_refused(probe):
    _, proc = probe("canny", {"low_threshold": 0.4, "high_threshold": 0.8},
                    {"image": torch.rand(1, 2, 8, 3)}, expect_ok=False)
    assert proc.returncode != 0 and "error[validation]" in proc.stderr
