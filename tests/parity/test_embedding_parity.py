"""Parity of textual-inversion embeddings in prompts: the engine's CLIPTextEncode output against
transformers' CLIP text models fed the same input embeddings (the embedding's vectors in place of
tokens, BOS/EOS/padding around them) and ComfyUI's weighting and layer choice."""
import pytest
import torch
from safetensors.torch import save_file

from parity_support import max_abs_diff

TOLERANCE = 1e-4


def encoders_of(family, pipe):
    """(tokenizer, text model, embedding key) per encoder, in the engine's order."""
    if family == "sdxl":
        return [(pipe.tokenizer, pipe.text_encoder, "clip_l"),
                (pipe.tokenizer_2, pipe.text_encoder_2, "clip_g")]
    return [(pipe.tokenizer, pipe.text_encoder, "clip_l")]


def write_embedding(directory, family, rows):
    torch.manual_seed(3)
    if family == "sdxl":
        tensors = {"clip_l": torch.randn(rows, 32) * 0.1, "clip_g": torch.randn(rows, 32) * 0.1}
    else:
        tensors = {"emb_params": torch.randn(rows, 32) * 0.1}
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "style.safetensors"))
    return tensors


def chunk_ids(tokenizer, before, vectors, after):
    """One 77-token chunk: BOS, before's ids, one placeholder per vector, after's ids, EOS, pad.
    Returns (ids, positions of the vectors)."""
    head = tokenizer(before, add_special_tokens=False).input_ids
    tail = tokenizer(after, add_special_tokens=False).input_ids
    ids = [tokenizer.bos_token_id] + head + [0] * vectors + tail + [tokenizer.eos_token_id]
    ids += [tokenizer.pad_token_id] * (77 - len(ids))
    return ids, list(range(1 + len(head), 1 + len(head) + vectors))


def encode(family, model, ids, positions, vectors):
    """ComfyUI's hidden state choice for the family (the final LayerNorm for SD1/SD2), on the model fed inputs_embeds built from ids
    with `vectors` at `positions` (through a token table extended by those vectors)."""
    table = model.get_input_embeddings().weight
    extended = torch.nn.Embedding.from_pretrained(torch.cat([table, vectors]))
    ids = torch.tensor([ids])
    for row, position in enumerate(positions):
        ids[0, position] = table.shape[0] + row
    original = model.get_input_embeddings()
    model.set_input_embeddings(extended)
    try:
        out = model(input_ids=ids, output_hidden_states=True)
    finally:
        model.set_input_embeddings(original)
    # SD2's penultimate layer is the last one a diffusers SD2 text encoder stores.
    hidden = out.last_hidden_state if family in ("sd1", "sd2") else out.hidden_states[-2]
    pooled = out.text_embeds if hasattr(out, "text_embeds") else None
    return hidden, pooled


def reference(family, pipe, tensors, before, after, weight=1.0):
    hidden_parts, pooled = [], None
    for tokenizer, model, key in encoders_of(family, pipe):
        vectors = tensors.get(key, next(iter(tensors.values())))
        ids, positions = chunk_ids(tokenizer, before, vectors.shape[0], after)
        hidden, pooled = encode(family, model, ids, positions, vectors)
        if weight != 1.0:
            empty_ids, _ = chunk_ids(tokenizer, "", 0, "")
            empty, _ = encode(family, model, empty_ids, [], vectors[:0])
            scale = torch.ones(77, 1)
            scale[positions] = weight
            hidden = (hidden - empty) * scale + empty
        hidden_parts.append(hidden)
    return torch.cat(hidden_parts, dim=-1), pooled


@pytest.mark.parametrize("weight", [1.0, 1.3])
def test_embedding_in_prompt_matches_transformers(tiny_pipeline, probe, tmp_path, weight):
    family, pipe, path = tiny_pipeline
    tensors = write_embedding(tmp_path / "embeddings" / "sub", family, rows=3)
    word = "embedding:style" if weight == 1.0 else f"(embedding:style:{weight})"
    out, _ = probe("encode_embedding_prompt", {"model": str(path),
                                               "embeddings_dir": str(tmp_path / "embeddings"),
                                               "prompt": f"a photo of {word} a cat"})
    context, pooled = reference(family, pipe, tensors, "a photo of ", " a cat", weight)
    assert out["context"].shape == context.shape
    assert max_abs_diff(out["context"], context) < TOLERANCE
    if family == "sdxl":
        assert max_abs_diff(out["pooled"], pooled) < TOLERANCE


def test_vectors_of_another_width_are_left_out(tiny_pipeline, probe, tmp_path):
    family, pipe, path = tiny_pipeline
    (tmp_path / "embeddings").mkdir()
    save_file({"emb_params": torch.randn(2, 16)}, str(tmp_path / "embeddings" / "narrow.safetensors"))
    args = {"model": str(path), "embeddings_dir": str(tmp_path / "embeddings")}
    with_embedding, proc = probe("encode_embedding_prompt", {**args, "prompt": "a embedding:narrow cat"})
    plain, _ = probe("encode_embedding_prompt", {**args, "prompt": "a cat"})
    assert "WARNING: shape mismatch when trying to apply embedding" in proc.stderr
    assert max_abs_diff(with_embedding["context"], plain["context"]) < TOLERANCE


def test_missing_embeddings_are_dropped_with_a_warning(tiny_pipeline, probe, tmp_path):
    family, pipe, path = tiny_pipeline
    (tmp_path / "embeddings").mkdir()
    args = {"model": str(path), "embeddings_dir": str(tmp_path / "embeddings")}
    missing, proc = probe("encode_embedding_prompt", {**args, "prompt": "a embedding:gone cat"})
    plain, _ = probe("encode_embedding_prompt", {**args, "prompt": "a cat"})
    assert "warning, embedding:gone does not exist, ignoring" in proc.stderr
    assert max_abs_diff(missing["context"], plain["context"]) < TOLERANCE
