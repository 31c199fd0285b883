"""Parity of the C++ CLIP tokenizer and ComfyUI prompt weighting with transformers'
CLIPTokenizer."""
import random

import pytest
import torch
from transformers import CLIPTokenizer

WORDS = ["a", "photo", "of", "cat", "Dog", "PAINTING", "squirrel", "eating", "burger", "Castle",
         "masterpiece", "best", "quality", "ultra-detailed", "8k", "bokeh", "trending",
         "artstation", "by", "greg", "rutkowski", "hyperrealistic", "cinematic", "lighting",
         "portrait", "woman", "red", "fox", "McDonald", "iPhone", "x-ray", "e-mail", "self-portrait",
         "sci-fi"]
ACCENTED = ["café", "naïve", "Ærøskøbing", "Straße", "İstanbul", "ΣΟΦΟΣ", "Москва", "résumé",
            "piñata", "Þingvellir", "ﬁne", "Ⅻ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "cafe\u0301", "A\u030a", "ǅemal"]
CJK = ["日本語", "東京タワー", "한국어", "中文字", "ひらがな", "カタカナ", "龍", "漢字テスト"]
EMOJI = ["😀", "👍🏽", "🐱\u200d👤", "❤️", "🇯🇵", "🌸🌸", "⭐"]
SYMBOLS = [",", ".", "!", "?", "...", "--", "[", "]", ":", ";", '"', "'", "/", "\\", "#", "@", "&",
           "*", "~", "^", "<", ">", "|", "{", "}", "=", "+", "%", "$", "€", "©", "°", "…", "—",
           "<|endoftext|>", "<|startoftext|>", "<|ENDOFTEXT|>", "<|endoftext", "\ufffd"]
NUMBERS = ["1234", "3.14", "4K", "1920x1080", "½", "²", "٣", "10,000", "2nd", "007"]
CONTRACTIONS = ["it's", "don't", "THEY'RE", "we'll", "I'm", "she'd", "you've", "'s'", "rock'n'roll",
                "'re'", "can't!", "o'clock"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u200b", "\x00", "\x1f",
          "\x7f", "\u0085", "\x0b"]
FIXED = ["", " ", "a photo of a cat", "A painting of a squirrel eating a burger",
         "\n\n  leading and trailing  \t", "(emphasis:1.2) [brackets]", "!!!", "a!b!c",
         "l" * 300, "word " * 80, "日本" * 50, "😀" * 40]


def generate_prompts(count, seed):
    """Deterministic mixed prompts: words, unicode, symbols, digits, contractions, whitespace."""
    rng = random.Random(seed)
    pools = [WORDS] * 6 + [ACCENTED, CJK, EMOJI, SYMBOLS, SYMBOLS, NUMBERS, CONTRACTIONS]
    prompts = list(FIXED)
    while len(prompts) < count:
        length = rng.randint(60, 150) if rng.random() < 0.12 else rng.randint(1, 20)
        parts = []
        for _ in range(length):
            part = rng.choice(rng.choice(pools))
            style = rng.random()
            if style < 0.1:
                part = part.upper()
            elif style < 0.2:
                part = part.title()
            parts.append(part)
            parts.append(rng.choice(SPACES) if rng.random() < 0.15 else
                         ("" if rng.random() < 0.15 else " "))
        prompts.append("".join(parts))
    return prompts


@pytest.fixture(params=["clip_tokenizer_dir", "clip_tokenizer_2_dir"])
def tokenizer_dir(request):
    return request.getfixturevalue(request.param)


def reference_ids(directory, prompts):
    tokenizer = CLIPTokenizer.from_pretrained(str(directory))
    return tokenizer(prompts, padding="max_length", max_length=77, truncation=True)["input_ids"]


def assert_same_ids(probe, directory, prompts):
    out, _ = probe("tokenize", {"tokenizer_dir": str(directory), "prompts": prompts})
    ids = out["ids"]
    assert ids.dtype == torch.int64 and tuple(ids.shape) == (len(prompts), 77)
    expected = reference_ids(directory, prompts)
    mismatches = [(p, e, ids[i].tolist()) for i, (p, e) in enumerate(zip(prompts, expected))
                  if ids[i].tolist() != e]
    assert not mismatches, f"{len(mismatches)} prompts differ, first: {mismatches[0]!r}"


def test_tokenize_matches_transformers(probe, tokenizer_dir):
    assert_same_ids(probe, tokenizer_dir, generate_prompts(520, seed=7))


def test_tiny_tokenizer_loads_in_transformers_with_same_ids(probe, tmp_path):
    for pad in ["<|endoftext|>", "!"]:
        directory = tmp_path / ("tiny_" + ("eos" if pad != "!" else "bang"))
        probe("write_tiny_tokenizer", {"dir": str(directory), "pad_token": pad})
        tokenizer = CLIPTokenizer.from_pretrained(str(directory))
        assert tokenizer.pad_token == pad
        assert tokenizer.eos_token_id == len(tokenizer) - 1 <= 999
        assert tokenizer.bos_token_id == len(tokenizer) - 2
        assert tokenizer.tokenize("A painting of a squirrel eating a burger") == [
            "a</w>", "painting</w>", "of</w>", "a</w>", "squirrel</w>", "eating</w>", "a</w>",
            "burger</w>"]
        assert_same_ids(probe, directory, generate_prompts(200, seed=11))


# ComfyUI weighting, recomputed here from the rules (sd1_clip.SDTokenizer.tokenize_with_weights)
# with the reference tokenizer doing the per-word encoding.
def top_level_groups(text):
    groups, current, depth = [], "", 0
    for char in text:
        if char == "(":
            if depth == 0 and current:
                groups.append(current)
                current = ""
            current += char
            depth += 1
        elif char == ")":
            depth -= 1
            current += char
            if depth == 0:
                groups.append(current)
                current = ""
        else:
            current += char
    if current:
        groups.append(current)
    return groups


def weighted_segments(text, weight=1.0):
    segments = []
    for group in top_level_groups(text):
        if len(group) < 2 or group[0] != "(" or group[-1] != ")":
            segments.append((group, weight))
            continue
        inner, inner_weight = group[1:-1], weight * 1.1
        colon = inner.rfind(":")
        if colon > 0:
            try:
                inner_weight = float(inner[colon + 1:])
                inner = inner[:colon]
            except ValueError:
                pass
        segments += weighted_segments(inner, inner_weight)
    return segments


def reference_weighted(tokenizer, prompt):
    vocab = tokenizer.get_vocab()
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    escaped = prompt.replace("\\)", "\0\1").replace("\\(", "\0\2")
    words = []
    for text, weight in weighted_segments(escaped):
        text = text.replace("\0\1", ")").replace("\0\2", "(")
        for word in text.replace("\n", " ").split(" "):
            if not word:
                continue
            ids = [vocab[word + "</w>"]] if word + "</w>" in vocab else \
                tokenizer(word)["input_ids"][1:-1]
            words.append([(i, weight) for i in ids])
    chunks, chunk = [], [(bos, 1.0)]
    for word in words:
        splittable = len(word) >= 8
        while word:
            if len(word) + len(chunk) <= 76:
                chunk += word
                break
            room = 76 - len(chunk)
            if splittable:
                chunk += word[:room]
                word = word[room:]
            chunks.append(chunk + [(eos, 1.0)] + [(pad, 1.0)] * (76 - len(chunk)))
            chunk = [(bos, 1.0)]
    chunks.append(chunk + [(eos, 1.0)] + [(pad, 1.0)] * (76 - len(chunk)))
    return chunks


WEIGHTED_FIXED = [
    "", "a cat", "a (cat) on a mat", "((masterpiece)), best quality, (red fox:1.3)",
    "(a (b):1.2) c", "((cat):1.5)", "(cat:big) (dog:)", "(:1.5) x", "\\(literal\\) (and:0.5)",
    "[square brackets] stay", "unbalanced (open", "unbalanced) close", ") (cat)", "((cat)",
    "(cat: 0.8 ) (dog:1e-1) (fox:1_5)", "line one\nline (two:1.1)\nthree", "  spaced   out  ",
    "(" + "word " * 80 + ":0.9)", "(" + "q" * 30 + ":1.2)", "cat " * 70 + "(" + "q" * 8 + ":0.5)",
    "cat " * 70 + "q" * 7, "CAF\u00c9 (caf\u00e9) \u00e9 日本語 😀 it's", "(nested (deeply (very:2)))",
]


def weighted_prompts(seed, count):
    rng = random.Random(seed)
    prompts = list(WEIGHTED_FIXED)
    base = generate_prompts(count, seed)
    for prompt in base[len(FIXED):]:
        words = prompt.split(" ")
        for _ in range(rng.randint(0, 3)):
            start = rng.randrange(len(words))
            end = rng.randint(start, min(len(words), start + 4))
            suffix = rng.choice(["", "", f":{rng.choice([0.5, 0.8, 1.2, 1.35, 2])}", ":x"])
            words[start] = "(" + words[start]
            words[end - 1 if end > start else start] += suffix + ")"
        prompts.append(" ".join(words))
        if len(prompts) >= count:
            break
    return prompts


@pytest.fixture(scope="module")
def reference_tokenizer_2(clip_tokenizer_2_dir):
    return CLIPTokenizer.from_pretrained(str(clip_tokenizer_2_dir))


@pytest.mark.parametrize("prompt", weighted_prompts(seed=3, count=40))
def test_tokenize_weighted_matches_comfyui_rules(probe, clip_tokenizer_2_dir, reference_tokenizer_2,
                                                 prompt):
    expected = reference_weighted(reference_tokenizer_2, prompt)
    out, _ = probe("tokenize_weighted",
                   {"tokenizer_dir": str(clip_tokenizer_2_dir), "prompt": prompt})
    assert out["ids"].dtype == torch.int64 and out["weights"].dtype == torch.float32
    assert out["ids"].tolist() == [[i for i, _ in chunk] for chunk in expected]
    expected_weights = torch.tensor([[w for _, w in chunk] for chunk in expected],
                                    dtype=torch.float32)
    assert torch.equal(out["weights"], expected_weights)


def test_tokenize_weighted_pads_with_end_token_for_clip_l(probe, clip_tokenizer_dir):
    out, _ = probe("tokenize_weighted", {"tokenizer_dir": str(clip_tokenizer_dir),
                                         "prompt": "a (red:1.2) fox"})
    assert out["ids"][0, :6].tolist() == [49406, 320, 736, 3240, 49407, 49407]
    assert out["weights"][0, :5].tolist() == pytest.approx([1.0, 1.0, 1.2, 1.0, 1.0])


def test_non_finite_weight_is_a_validation_error(probe, clip_tokenizer_dir):
    _, proc = probe("tokenize_weighted", {"tokenizer_dir": str(clip_tokenizer_dir),
                                          "prompt": "(cat:nan)"}, expect_ok=False)
    assert proc.returncode == 1 and "error[validation]" in proc.stderr
