"""VAEDecodeTiled and VAEEncodeTiled against a reference of ComfyUI's tiled_scale on diffusers' VAE."""
import pytest
import torch

from parity_support import max_abs_diff


def feather_mask(result, feather):
    """ComfyUI's tile weights: (t + 1) / feather for the t-th row/column from each side."""
    mask = torch.ones_like(result)
    for dim in (2, 3):
        length = mask.shape[dim]
        if feather >= length:
            continue
        for t in range(feather):
            weight = (t + 1) / feather
            mask.narrow(dim, t, 1).mul_(weight)
            mask.narrow(dim, length - 1 - t, 1).mul_(weight)
    return mask


def tiled_reference(x, run, tile_h, tile_w, overlap, scale):
    """ComfyUI's tiled_scale: tiles of x (sizes in x's pixels) run, feathered and averaged."""
    height, width = x.shape[2], x.shape[3]
    if height <= tile_h and width <= tile_w:
        return run(x)

    def starts(length, tile):
        return range(0, length - overlap, tile - overlap) if length > tile else [0]

    total = weight = None
    for top in starts(height, tile_h):
        for left in starts(width, tile_w):
            h, w = min(tile_h, height - top), min(tile_w, width - left)
            result = run(x[:, :, top:top + h, left:left + w])
            if total is None:
                size = (x.shape[0], result.shape[1], round(height * scale), round(width * scale))
                total, weight = torch.zeros(size), torch.zeros(size)
            mask = feather_mask(result, round(overlap * scale))
            y, x0 = round(top * scale), round(left * scale)
            total[:, :, y:y + result.shape[2], x0:x0 + result.shape[3]] += result * mask
            weight[:, :, y:y + result.shape[2], x0:x0 + result.shape[3]] += mask
    return total / weight


def three_tilings(x, run, tile, overlap, scale):
    passes = [(tile * 2, tile // 2), (tile // 2, tile * 2), (tile, tile)]
    return sum(tiled_reference(x, run, h, w, overlap, scale) for h, w in passes) / 3.0


def limited_overlap(tile_size, overlap):
    return tile_size // 4 if tile_size < overlap * 4 else overlap


@pytest.mark.parametrize("tile_size,overlap", [(64, 16), (64, 64), (128, 32)])
def test_vae_decode_tiled_matches_reference(tiny_pipeline, probe, tile_size, overlap):
    family, pipe, path = tiny_pipeline
    latents = torch.randn(2, 4, 20, 26, generator=torch.Generator().manual_seed(5))
    out, _ = probe("vae_decode_tiled", {"path": str(path / "vae"), "tile_size": tile_size,
                                        "overlap": overlap}, {"latents": latents})
    cell = pipe.vae_scale_factor

    # Each tile as the engine's VAE decode returns it: (x + 1) / 2 clamped to [0, 1].
    def decode(z):
        return ((pipe.vae.decode(z).sample + 1) / 2).clamp(0, 1)

    overlap = limited_overlap(tile_size, overlap)
    expected = three_tilings(latents, decode, tile_size // cell, overlap // cell, cell)
    expected = expected.permute(0, 2, 3, 1)
    assert out["image"].shape == expected.shape
    diff = max_abs_diff(out["image"], expected)
    print(f"{family} tiled decode {tile_size}/{overlap}: max abs diff {diff:.3g}")
    assert diff < 1e-4


@pytest.mark.parametrize("height,width", [(160, 208), (165, 210)])
def test_vae_encode_tiled_matches_reference(tiny_pipeline, probe, height, width):
    family, pipe, path = tiny_pipeline
    image = torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(6))
    out, _ = probe("vae_encode_tiled", {"path": str(path / "vae"), "tile_size": 64,
                                        "overlap": 16}, {"image": image})
    cell = pipe.vae_scale_factor
    h, w = height // cell * cell, width // cell * cell
    top, left = (height - h) // 2, (width - w) // 2
    pixels = image[:, top:top + h, left:left + w, :].permute(0, 3, 1, 2) * 2 - 1

    def encode(x):
        return pipe.vae.encode(x).latent_dist.mean

    expected = three_tilings(pixels, encode, 64, 16, 1 / cell)
    assert out["latents"].shape == expected.shape
    diff = max_abs_diff(out["latents"], expected)
    print(f"{family} tiled encode {height}x{width}: max abs diff {diff:.3g}")
    assert diff < 1e-4
