"""The public ComfyUI workflow corpus against a running service: which SD, FLUX and SD3 workflows
to send, the substitutions a user makes before sending one (their own model files, images, small
sizes, few steps), and how each outcome is classified and summarised."""
import collections
import copy
import csv
import io
import json
import pathlib
import re
import shutil
import tempfile
import time

from e2e_support import ROOT, run_dreamforge

CORPUS = ROOT.parent / "shared" / "comfy-workflows"
# Each group of corpus families has its own baseline of the workflows that run.
DATA = pathlib.Path(__file__).resolve().parent / "data"
BASELINES = {"sd": DATA / "corpus_baseline.json", "flux_sd3": DATA / "corpus_baseline_flux_sd3.json"}
SD_FAMILIES = ("sd1", "sd2", "sdxl")
DIT_CORPUS_FAMILIES = ("flux", "sd3")  # manifest.tsv families of the DiT workflows
# The families `create-tiny --kind split` writes ComfyUI's split files for (diffusion model, text
# encoders, VAE); each installs as tiny-<family> in diffusion_models and vae and as
# tiny-<family>-<role> in text_encoders (role: TEXT_ENCODER_ROLES), so the families' files of the
# same ComfyUI name (clip_l, t5xxl_fp16, ae) sit side by side. Their all-in-one checkpoints (where
# `--kind checkpoint` writes one) install as tiny-<family> in checkpoints like the SD ones.
SPLIT_FAMILIES = ("flux", "flux-schnell", "sd3", "zimage")
# What a text-encoder file is, by the hints in the names users give them: (pattern, role).
TEXT_ENCODER_ROLES = [(re.compile(r"t5", re.I), "t5xxl"),
                      (re.compile(r"clip[_-]?g(?![a-z])|bigg", re.I), "clip_g"),
                      (re.compile(r"clip[_-]?l(?![a-z])|vit[_-]?l", re.I), "clip_l"),
                      (re.compile(r"qwen", re.I), "qwen")]
# FLUX workflows naming a schnell model file get the tiny schnell files, the others the dev ones.
SCHNELL = re.compile(r"schnell", re.I)

# Model-file inputs a user points at their own files: (node class or "*", input name) -> the
# `dreamforge model create-tiny --kind` whose tiny file of the workflow's family replaces the
# value, wherever the node's combo in /object_info offers that file. A kind create-tiny does not
# make (yet) leaves the inputs as they are. Adding a kind is one line here. "diffusion_model" and
# "text_encoder" are the files of `create-tiny --kind split` (see SPLIT_FAMILIES).
MODEL_FILE_INPUTS = {
    ("*", "ckpt_name"): "checkpoint",
    ("unCLIPCheckpointLoader", "ckpt_name"): "unclip",
    ("*", "lora_name"): "lora",
    ("*", "vae_name"): "vae",
    ("*", "hypernetwork_name"): "hypernetwork",
    ("*", "control_net_name"): "controlnet",
    ("T2IAdapterLoader", "t2i_adapter_name"): "t2i_adapter",
    ("UpscaleModelLoader", "model_name"): "upscaler",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("UNETLoader", "unet_name"): "diffusion_model",
    ("CLIPLoader", "clip_name"): "text_encoder",
    ("DualCLIPLoader", "clip_name1"): "text_encoder",
    ("DualCLIPLoader", "clip_name2"): "text_encoder",
    ("TripleCLIPLoader", "clip_name1"): "text_encoder",
    ("TripleCLIPLoader", "clip_name2"): "text_encoder",
    ("TripleCLIPLoader", "clip_name3"): "text_encoder",
}
# Checkpoint files named for a special model get that model's kind: (pattern of the file name,
# kind). These kinds install as tiny-<family>-<kind> beside the plain tiny-<family> checkpoint.
SPECIAL_CHECKPOINTS = [(re.compile(r"inpaint", re.I), "inpaint"),
                       (re.compile(r"pix2pix|ip2p", re.I), "ip2p")]
CHECKPOINT_VARIANT_KINDS = {"inpaint", "ip2p", "unclip"}
# Image-file inputs that get the uploaded test image.
IMAGE_FILE_INPUTS = {("LoadImage", "image"), ("LoadImageMask", "image")}
# Numeric inputs cut to a fixed value (a quick run of the same graph).
FIXED_NUMBERS = {
    ("*", "steps"): 2,
    ("*", "batch_size"): 1,
    ("RepeatLatentBatch", "amount"): 1,
    ("RepeatImageBatch", "amount"): 1,
    ("ImageScaleToTotalPixels", "megapixels"): 64 * 64 / 1e6,
}
# Output nodes whose images go to the client's WebSocket and not into /history.
WEBSOCKET_OUTPUT_NODES = {"SaveImageWebsocket"}
SHORT_SIDE = 64  # width/height: the shorter side becomes this, the longer keeps the aspect
LONG_SIDE_MAX = 128
# Template placeholders workflow tools fill in before sending: {{seed}}, ${name:default},
# __RANDOM_INT__, <SEED>, %sampler%.
PLACEHOLDER = re.compile(r"\{\{[^{}]+\}\}|\$\{[^{}]+\}|__[A-Z0-9_]+__|<[A-Z0-9_]+>|%[a-z_]+%")


def tiny_name(family, kind="checkpoint"):
    """The name a tiny file of `kind` installs under: tiny-<family>, or tiny-<family>-<kind> for
    the special checkpoints that sit beside the plain one in models/checkpoints."""
    return f"tiny-{family}-{kind}" if kind in CHECKPOINT_VARIANT_KINDS else f"tiny-{family}"


def text_encoder_role(file_name):
    """clip_l, clip_g, t5xxl or qwen by the file name's hints, or None."""
    return next((role for pattern, role in TEXT_ENCODER_ROLES if pattern.search(file_name)), None)


def corpus_workflows(families):
    """[(file name as in manifest.tsv, family)] of the API-format workflows of `families`."""
    with open(CORPUS / "manifest.tsv", newline="") as manifest:
        rows = csv.DictReader(manifest, delimiter="\t")
        return [(row["file"], row["family"]) for row in rows
                if row["family"] in families and row["file"].startswith("api/")]


def sd_workflows():
    """[(file name as in manifest.tsv, family)] of the API-format SD 1.x/2.x/SDXL workflows."""
    return corpus_workflows(SD_FAMILIES)


def tiny_family(graph, family):
    """The family whose tiny files a workflow of the manifest's `family` gets: flux-schnell for a
    FLUX workflow naming a schnell model file, else the manifest's family."""
    schnell = family == "flux" and any(SCHNELL.search(value) for value in model_file_values(graph))
    return "flux-schnell" if schnell else family


def start_service_with_tiny_files(tmp_path_factory, *flags):
    """A started `dreamforge serve` (with `flags`) whose data dir holds every tiny file
    install_tiny_files makes; skips the test when the corpus is absent."""
    import pytest
    from service_support import Service
    if not (CORPUS / "manifest.tsv").is_file():
        pytest.skip(f"no workflow corpus at {CORPUS} (manifest.tsv and api/*.json)")
    data_dir = tmp_path_factory.mktemp("corpus") / "data"
    install_tiny_files(data_dir)
    # The CLIP vocabulary of the DiT all-in-one files, whose CLIPs carry no tokenizer.
    vocabulary = data_dir / "models" / "text_encoders" / "tiny-flux-clip_l.tokenizer"
    return Service(data_dir, *flags, env={"DREAMFORGE_CLIP_VOCAB_DIR": str(vocabulary)}).start()


def install_tiny_files(data_dir):
    """Creates every kind of MODEL_FILE_INPUTS and SPECIAL_CHECKPOINTS create-tiny makes, for
    each family it makes it for, named tiny_name(family, kind), and the split files of
    SPLIT_FAMILIES; returns the (kind, family) pairs made."""
    made = set()
    kinds = set(MODEL_FILE_INPUTS.values()) | {kind for _, kind in SPECIAL_CHECKPOINTS}
    for kind in sorted(kinds - {"diffusion_model", "text_encoder"}):
        for family in SD_FAMILIES + SPLIT_FAMILIES:
            proc = run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name",
                                  tiny_name(family, kind), "--family", family, "--kind", kind,
                                  check=False)
            if proc.returncode == 0:
                made.add((kind, family))
    for family in SPLIT_FAMILIES:
        install_tiny_split_files(data_dir, family)
        made |= {("diffusion_model", family), ("text_encoder", family)}
    return made


def install_tiny_split_files(data_dir, family):
    """Writes the family's split files with create-tiny and installs them under the names the
    substitutions look for: tiny-<family> (diffusion model, VAE), tiny-<family>-<role> (text
    encoders, their .tokenizer folders beside them)."""
    with tempfile.TemporaryDirectory() as scratch:
        written = pathlib.Path(scratch) / "models"
        run_dreamforge("model", "create-tiny", written, "--family", family, "--kind", "split")
        models = pathlib.Path(data_dir) / "models"
        for path in sorted(written.glob("*/*")):
            role = text_encoder_role(path.stem) if path.parent.name == "text_encoders" else None
            name = f"tiny-{family}-{role}" if role else tiny_name(family)
            target = models / path.parent.name / (name + path.suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)


def _rule(table, class_type, name):
    return table.get((class_type, name), table.get(("*", name)))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choices(object_info, class_type, name):
    """The combo choices /object_info lists for an input, or []."""
    inputs = object_info.get(class_type, {}).get("input", {})
    for section in ("required", "optional"):
        spec = inputs.get(section, {}).get(name)
        if spec and isinstance(spec[0], list):
            return spec[0]
    return []


def _tiny_stems(class_type, name, value, family):
    """The names (without extension) of the tiny files that may replace this model-file input's
    value, preferred first: a special checkpoint's before the plain checkpoint (which runs its
    workflows too, its extra model inputs left out, as ComfyUI leaves them out); a text encoder
    of the role its name hints at."""
    kind = _rule(MODEL_FILE_INPUTS, class_type, name)
    if kind == "text_encoder":
        role = text_encoder_role(value)
        return [f"tiny-{family}-{role}"] if role else []
    if kind != "checkpoint":
        return [tiny_name(family, kind)]
    specials = [special for pattern, special in SPECIAL_CHECKPOINTS if pattern.search(value)]
    return [tiny_name(family, special) for special in specials] + [tiny_name(family)]


def _tiny_choice(object_info, class_type, name, stem):
    """The tiny file named `stem` among the input's combo choices (any extension), or None."""
    for choice in _choices(object_info, class_type, name):
        if isinstance(choice, str) and pathlib.PurePath(choice).stem == stem:
            return choice
    return None


def _small_size(width, height):
    """(width, height) with the shorter side SHORT_SIDE and the aspect kept roughly (multiples of
    16, the longer side at most LONG_SIDE_MAX)."""
    short, long = sorted((width, height))
    long_side = min(LONG_SIDE_MAX, max(SHORT_SIDE, round(SHORT_SIDE * long / short / 16) * 16))
    return (SHORT_SIDE, long_side) if width <= height else (long_side, SHORT_SIDE)


def _cut_sizes(inputs):
    width, height = inputs.get("width"), inputs.get("height")
    if _is_number(width) and _is_number(height) and width > 0 and height > 0:
        inputs["width"], inputs["height"] = _small_size(width, height)
        return
    for name in ("width", "height"):
        if _is_number(inputs.get(name)) and inputs[name] > SHORT_SIDE:
            inputs[name] = SHORT_SIDE


def _cut_steps(inputs):
    """steps -> 2, with KSamplerAdvanced's start/end steps moved to the same fraction."""
    steps = inputs.get("steps")
    new_steps = FIXED_NUMBERS[("*", "steps")]
    if not _is_number(steps) or steps <= 0:
        return
    for name in ("start_at_step", "end_at_step"):
        value = inputs.get(name)
        if _is_number(value) and value < steps:
            inputs[name] = round(value * new_steps / steps)


def prepare(graph, family, object_info, image_name):
    """The graph as a user would send it here: model files -> tiny files of the family (the
    manifest's; see tiny_family) where the service offers them, LoadImage -> the uploaded image,
    small sizes, 2 steps, batches of 1. Template placeholders ("{{seed}}") are left in place."""
    family = tiny_family(graph, family)
    graph = copy.deepcopy(graph)
    for node in graph.values():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        class_type, inputs = node.get("class_type"), node["inputs"]
        _cut_sizes(inputs)
        _cut_steps(inputs)
        for name, value in list(inputs.items()):
            if isinstance(value, str) and PLACEHOLDER.search(value):
                continue
            if isinstance(value, str) and _rule(MODEL_FILE_INPUTS, class_type, name):
                choices = (_tiny_choice(object_info, class_type, name, stem)
                           for stem in _tiny_stems(class_type, name, value, family))
                inputs[name] = next((choice for choice in choices if choice), value)
            elif isinstance(value, str) and (class_type, name) in IMAGE_FILE_INPUTS:
                inputs[name] = image_name
            elif _is_number(value) and _rule(FIXED_NUMBERS, class_type, name) is not None:
                inputs[name] = _rule(FIXED_NUMBERS, class_type, name)
    return graph


def model_file_values(graph):
    """The values of the graph's model-file inputs (those MODEL_FILE_INPUTS names)."""
    return [value for node in graph.values()
            if isinstance(node, dict) and isinstance(node.get("inputs"), dict)
            for name, value in node["inputs"].items()
            if isinstance(value, str) and _rule(MODEL_FILE_INPUTS, node.get("class_type"), name)]


def placeholder_inputs(graph, object_info):
    """[(node id, input)] whose whole value is a template placeholder in an input that does not
    take free text: ComfyUI refuses such a graph at validation."""
    found = []
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        schema = object_info.get(node.get("class_type"), {}).get("input", {})
        for name, value in node["inputs"].items():
            if not (isinstance(value, str) and PLACEHOLDER.fullmatch(value)):
                continue
            spec = schema.get("required", {}).get(name) or schema.get("optional", {}).get(name)
            if not spec or spec[0] != "STRING":
                found.append((node_id, name))
    return found


def unknown_node_types(graph, object_info):
    return sorted({node.get("class_type") for node in graph.values()
                   if isinstance(node, dict) and node.get("class_type") not in object_info},
                  key=str)


def upload_test_image(service):
    """Uploads a small RGB test image to the input folder; returns its name."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buffer, format="PNG")
    response = service.post("/upload/image", files={"image": ("corpus-test.png", buffer.getvalue(),
                                                              "image/png")})
    assert response.status_code == 200, response.text
    return response.json()["name"]


def _node_error_lines(node_errors):
    """"Class.input: error type" of each error in /prompt's node_errors."""
    return sorted({f"{entry.get('class_type')}.{e.get('extra_info', {}).get('input_name', '')}: "
                   f"{e['type']}" for entry in node_errors.values() for e in entry.get("errors", [])})


def refusal(response, graph, object_info):
    """The record of a /prompt refusal: ComfyUI's error type and the unknown node types."""
    body = response.json()
    return {"class": "refused", "status": response.status_code, "error_type": body["error"]["type"],
            "message": body["error"]["message"], "unknown_node_types": unknown_node_types(graph, object_info),
            "node_errors": _node_error_lines(body["node_errors"])}


def outcome(entry, graph, node_errors=None):
    """The record of a finished prompt from its /history entry: ran when it succeeded with outputs
    in the history, or with an output node that sends its images over /ws only; "ran in part" when
    /prompt accepted it with some outputs left out (node_errors, as ComfyUI runs the valid outputs
    of a graph)."""
    status = entry.get("status", {})
    streamed = any(node.get("class_type") in WEBSOCKET_OUTPUT_NODES for node in graph.values()
                   if isinstance(node, dict))
    if status.get("status_str") == "success" and (entry.get("outputs") or streamed):
        if node_errors:
            return {"class": "ran in part", "node_errors": _node_error_lines(node_errors)}
        return {"class": "ran"}
    errors = [data for kind, data in status.get("messages", []) if kind == "execution_error"]
    message = errors[0].get("exception_message", "") if errors else "finished without outputs"
    node_type = errors[0].get("node_type", "") if errors else ""
    return {"class": "failed", "message": message.strip(), "node_type": node_type}


def _history_entry(service, prompt_id):
    """The prompt's /history entry once it finished, else None."""
    entry = service.get(f"/history/{prompt_id}").json().get(prompt_id)
    done = entry and entry.get("status", {}).get("status_str") in ("success", "error")
    return entry if done else None


def wait_for_prompts(client, prompt_ids, deadline):
    """{prompt id: /history entry} of the prompts that finished by the deadline
    (time.monotonic()): each is done when /ws says `executing` with node null for it; after 10 s
    without a message the pending ones are looked up in /history instead."""
    import websocket
    service, pending = client.service, set(prompt_ids)
    client.ws.settimeout(10)
    while pending and time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError("the service exited:\n" + "".join(service.output[-50:]))
        try:
            frame = client.ws.recv()
        except websocket.WebSocketTimeoutException:
            pending = {p for p in pending if _history_entry(service, p) is None}
            continue
        if isinstance(frame, str):
            message = json.loads(frame)
            data = message.get("data", {})
            if message["type"] == "executing" and data.get("node") is None:
                pending.discard(data.get("prompt_id"))
    entries = {p: _history_entry(service, p) for p in prompt_ids if p not in pending}
    return {p: entry for p, entry in entries.items() if entry}


def summary(records, families):
    """Counts per class and per family, and the node types most often unknown."""
    per_class = collections.Counter(r["class"] for r in records.values())
    per_family = collections.defaultdict(collections.Counter)
    for name, record in records.items():
        per_family[families[name]][record["class"]] += 1
    missing = collections.Counter(t for r in records.values() for t in r.get("unknown_node_types", []))
    failures = collections.Counter(r["message"][:160] for r in records.values() if r["class"] == "failed")
    return {"total": len(records), "per_class": dict(per_class),
            "per_family": {f: dict(c) for f, c in sorted(per_family.items())},
            "top_missing_node_types": missing.most_common(25),
            "top_run_time_failures": failures.most_common(10)}


def format_summary(report, label):
    lines = [f"corpus: {report['per_class'].get('ran', 0)} of {report['total']} {label} workflows ran "
             f"({report['seconds']:.0f} s)", f"  per class: {report['per_class']}"]
    lines += [f"  {family}: {counts}" for family, counts in report["per_family"].items()]
    lines.append("  top missing node types: " +
                 ", ".join(f"{t} ({n})" for t, n in report["top_missing_node_types"]))
    lines += [f"  run-time failure ({n}): {m}" for m, n in report["top_run_time_failures"]]
    return "\n".join(lines)


def read_baseline(group):
    path = BASELINES[group]
    return json.loads(path.read_text()) if path.exists() else {"ran": [], "count": 0}


def write_baseline(group, ran, total):
    path = BASELINES[group]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"count": len(ran), "total": total, "ran": sorted(ran)}, indent=1) + "\n")
