"""Parity of the C++ CLIP tokenizer and ComfyUI prompt weighting with transformers'
CLIPTokenizer."""
import json
import random
import re

import pytest
import torch
from transformers import CLIPTokenizer

from comfy_prompt_weights import weighted_segments

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


def assert_same_ids(probe, directory, prompts, expected=None, pad_token=None):
    args = {"tokenizer_dir": str(directory), "prompts": prompts}
    if pad_token is not None:
        args["pad_token"] = pad_token
    out, _ = probe("tokenize", args)
    ids = out["ids"]
    assert ids.dtype == torch.int64 and tuple(ids.shape) == (len(prompts), 77)
    expected = expected or reference_ids(directory, prompts)
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


def saved_tokenizer_dirs(path):
    return [path / name for name in ("tokenizer", "tokenizer_2") if (path / name).is_dir()]


def test_saved_pipeline_tokenizers_match_transformers(probe, tiny_pipeline):
    """transformers 5 saves tokenizer.json + tokenizer_config.json only (no vocab.json)."""
    family, _, path = tiny_pipeline
    for directory in saved_tokenizer_dirs(path):
        assert (directory / "tokenizer.json").is_file()
        assert not (directory / "vocab.json").exists() and not (directory / "merges.txt").exists()
        reference = CLIPTokenizer.from_pretrained(str(directory))
        open_clip = family == "sd2" or directory.name == "tokenizer_2"
        assert reference.pad_token == ("!" if open_clip else "<|endoftext|>")
        prompts = generate_prompts(200, seed=17) + ["cat!! (x)", "<|ENDOFTEXT|>!"]
        assert_same_ids(probe, directory, prompts)


def rewrite_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def string_merges(data):
    data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]


def normalized_added_tokens(data):
    for token in data["added_tokens"]:
        token["normalized"] = True


def added_token_objects(data):
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        data[key] = {"__type": "AddedToken", "content": data[key], "lstrip": False,
                     "normalized": False, "rstrip": False, "single_word": False}


@pytest.mark.parametrize("variant", ["string_merges", "normalized_added_tokens",
                                     "added_token_objects", "special_tokens_map_wins"])
def test_tokenizer_json_variants_match_transformers(probe, tmp_path, clip_tokenizer_2_dir, variant):
    directory = tmp_path / variant
    CLIPTokenizer.from_pretrained(str(clip_tokenizer_2_dir)).save_pretrained(str(directory))
    assert not (directory / "vocab.json").exists()
    if variant == "string_merges":
        rewrite_json(directory / "tokenizer.json", string_merges)
    elif variant == "normalized_added_tokens":
        rewrite_json(directory / "tokenizer.json", normalized_added_tokens)
    elif variant == "added_token_objects":
        rewrite_json(directory / "tokenizer_config.json", added_token_objects)
    else:
        (directory / "special_tokens_map.json").write_text(
            json.dumps({"pad_token": "<|endoftext|>"}))
    prompts = generate_prompts(150, seed=23) + ["a <|ENDOFTEXT|> b!", "<|StartOfText|>x!!"]
    assert_same_ids(probe, directory, prompts)
    expected_pad = 49407 if variant == "special_tokens_map_wins" else 0
    assert CLIPTokenizer.from_pretrained(str(directory)).pad_token_id == expected_pad


def test_pad_override_keeps_the_text_and_pads_with_it(probe, clip_tokenizer_dir):
    """Single-file checkpoints: one CLIP-L vocabulary, padded with "!" (id 0) for the OpenCLIP
    encoders as ComfyUI does; a "!" in the prompt stays ordinary text."""
    prompts = generate_prompts(150, seed=29) + ["cat!!", "!", "a (b) !x"]
    reference = CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir))
    unpadded = reference(prompts, max_length=77, truncation=True)["input_ids"]
    expected = [ids + [0] * (77 - len(ids)) for ids in unpadded]
    assert_same_ids(probe, clip_tokenizer_dir, prompts, expected=expected, pad_token="!")


# ComfyUI weighting (sd1_clip.SDTokenizer.tokenize_with_weights as of 2025), recomputed here from
# its rules (comfy_prompt_weights) with the reference tokenizer encoding each piece of text.
EMBEDDING = "embedding:"


class EmbeddingWithoutName(ValueError):
    pass


def segment_pieces(segment):
    """A segment is cut before each "embedding:" that follows whitespace."""
    parts = re.split(r"(?<=\s)" + EMBEDDING, segment)
    return [piece for piece in parts[:1] + [EMBEDDING + part for part in parts[1:]] if piece]


def text_after_missing_embedding(piece):
    """What is still tokenized of "embedding:<name> rest" when no such embedding exists."""
    words = piece[len(EMBEDDING):].strip("\n").split()
    if not words:
        raise EmbeddingWithoutName(piece)
    name, rest = words[0], " ".join(words[1:])
    bracket = re.search(r"[<\[]", name)
    if bracket:
        rest = name[bracket.start():] + (" " + rest if rest else "")
        name = name[:bracket.start()]
    kept = len(name) - len(name.strip(","))
    if kept:
        rest = name[len(name) - kept:] + " " + rest
    return rest


def reference_weighted(tokenizer, prompt, pad):
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    escaped = prompt.replace("\\)", "\0\1").replace("\\(", "\0\2")
    groups = []
    for segment, weight in weighted_segments(escaped):
        segment = segment.replace("\0\1", ")").replace("\0\2", "(")
        for piece in segment_pieces(segment):
            if piece.startswith(EMBEDDING):
                piece = text_after_missing_embedding(piece)
                if not piece:
                    continue
            groups.append([(i, weight) for i in tokenizer(piece)["input_ids"][1:-1]])
    chunks, chunk = [], [(bos, 1.0)]
    for group in groups:
        splittable = len(group) >= 8
        while group:
            if len(group) + len(chunk) <= 76:
                chunk += group
                break
            room = 76 - len(chunk)
            if splittable:
                chunk += group[:room]
                group = group[room:]
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
    "cat " * 72 + "(red fox dog cat:1.2)", "cat " * 70 + "(" + "q" * 7 + ")", "painting(s:1.2)",
    "a red embedding:style, (fox:1.2)", "embedding:style",
    "(embedding:x:1.3) bar embedding:y<lora:a:1>",
    "a\u3000embedding:x\nembedding:y,, cat", "a,embedding:x Embedding:y", "a embedding:,,x[y] z",
    "cat!! (dog!:1.2) !", "a embedding:", "x (embedding: y:0.5)",
]


def weighted_prompts(seed, count):
    rng = random.Random(seed)
    prompts = list(WEIGHTED_FIXED)
    base = generate_prompts(count, seed)
    for prompt in base[len(FIXED):]:
        words = prompt.split(" ")
        if rng.random() < 0.2:
            at = rng.randrange(len(words))
            words[at] = EMBEDDING + words[at]
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


# (tokenizer folder, pad override): CLIP-L as ComfyUI pads it, the OpenCLIP encoders as ComfyUI
# pads them (same vocabulary, pad id 0), and a folder whose own files pad with "!".
WEIGHTED_SETUPS = [("clip_tokenizer_dir", None), ("clip_tokenizer_dir", "!"),
                   ("clip_tokenizer_2_dir", None)]


@pytest.fixture(scope="module", params=WEIGHTED_SETUPS, ids=["clip_l", "open_clip", "bang_files"])
def weighted_setup(request):
    folder, pad_token = request.param
    directory = request.getfixturevalue(folder)
    tokenizer = CLIPTokenizer.from_pretrained(str(directory))
    pad = tokenizer.pad_token_id if pad_token is None else \
        tokenizer.convert_tokens_to_ids(pad_token)
    return directory, pad_token, tokenizer, pad


@pytest.mark.parametrize("prompt", weighted_prompts(seed=3, count=60))
def test_tokenize_weighted_matches_comfyui_rules(probe, weighted_setup, prompt):
    directory, pad_token, tokenizer, pad = weighted_setup
    args = {"tokenizer_dir": str(directory), "prompt": prompt}
    if pad_token is not None:
        args["pad_token"] = pad_token
    try:
        expected = reference_weighted(tokenizer, prompt, pad)
    except EmbeddingWithoutName:
        _, proc = probe("tokenize_weighted", args, expect_ok=False)
        assert proc.returncode == 1 and "error[validation]" in proc.stderr
        return
    out, _ = probe("tokenize_weighted", args)
    assert out["ids"].dtype == torch.int64 and out["weights"].dtype == torch.float32
    assert out["ids"].tolist() == [[i for i, _ in chunk] for chunk in expected]
    expected_weights = torch.tensor([[w for _, w in chunk] for chunk in expected],
                                    dtype=torch.float32)
    assert torch.equal(out["weights"], expected_weights)


def test_segments_are_tokenized_whole_not_word_by_word(probe, clip_tokenizer_dir):
    """"(red fox dog cat:1.2)" after 72 tokens moves to the next chunk as one group."""
    prompt = "cat " * 72 + "(red fox dog cat:1.2)"
    out, _ = probe("tokenize_weighted", {"tokenizer_dir": str(clip_tokenizer_dir),
                                         "prompt": prompt})
    assert out["ids"].shape[0] == 2
    assert out["ids"][0, 73].item() == 49407 and out["ids"][1, 1:6].tolist() == [736, 3240, 1929,
                                                                                 2368, 49407]


def test_tokenize_weighted_pads_with_end_token_for_clip_l(probe, clip_tokenizer_dir):
    out, _ = probe("tokenize_weighted", {"tokenizer_dir": str(clip_tokenizer_dir),
                                         "prompt": "a (red:1.2) fox"})
    assert out["ids"][0, :6].tolist() == [49406, 320, 736, 3240, 49407, 49407]
    assert out["weights"][0, :5].tolist() == pytest.approx([1.0, 1.0, 1.2, 1.0, 1.0])


def test_non_finite_weight_is_a_validation_error(probe, clip_tokenizer_dir):
    _, proc = probe("tokenize_weighted", {"tokenizer_dir": str(clip_tokenizer_dir),
                                          "prompt": "(cat:nan)"}, expect_ok=False)
    assert proc.returncode == 1 and "error[validation]" in proc.stderr
