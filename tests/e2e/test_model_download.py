"""`dreamforge model download|verify|list|remove` against a local fake Hugging Face Hub and
CivitAI: pipelines and single files, resume after a dropped connection, retries after 429,
hash mismatches in quarantine, gated repos and tokens, unsafe formats, and a downloaded model
listed by a started service and used by a job."""
import hashlib
import importlib.util
import json
import os
import pathlib
import shutil
import struct

import pytest
import torch

from e2e_support import BIN, run_dreamforge, run_on_terminal
from service_support import FIXTURES, generate_body

REPO = "test-org/tiny-sd"
UNET = "unet/diffusion_pytorch_model.safetensors"
HF_TOKEN = "hf_e2eSecretToken0123456789"
CIVITAI_TOKEN = "civitai-e2e-secret-4711"


def load_hub_module():
    spec = importlib.util.spec_from_file_location("fake_model_hub", FIXTURES / "fake_model_hub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fake_model_hub = load_hub_module()


def write_safetensors(path, tensors):
    """A safetensors file of float32 tensors {name: (shape, fill value)}."""
    header, data = {}, b""
    for name, (shape, value) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        chunk = struct.pack(f"<{count}f", *([value] * count))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [len(data), len(data) + len(chunk)]}
        data += chunk
    text = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    """A tiny sd1 diffusers folder with the extras a real repo carries: a safety checker, a
    feature extractor, fp16 variants, pickle weights, a README."""
    path = tmp_path_factory.mktemp("pipeline") / "tiny-sd"
    run_dreamforge("model", "create-tiny", path, "--family", "sd1", "--seed", 3)
    index = json.loads((path / "model_index.json").read_text())
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    (path / "model_index.json").write_text(json.dumps(index, indent=2))
    write_safetensors(path / "safety_checker" / "model.safetensors", {"w": ((4,), 1.0)})
    (path / "safety_checker" / "config.json").write_text("{}")
    (path / "feature_extractor").mkdir()
    (path / "feature_extractor" / "preprocessor_config.json").write_text("{}")
    shutil.copy(path / UNET, path / "unet" / "diffusion_pytorch_model.fp16.safetensors")
    (path / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle bytes")
    (path / "README.md").write_text("# tiny")
    return path


@pytest.fixture
def hub(tmp_path, tiny_pipeline):
    hub = fake_model_hub.FakeModelHub(tmp_path / "hub").start()
    shutil.copytree(tiny_pipeline, hub.root / "hf" / REPO)
    yield hub
    hub.stop()


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def models(hub, data_dir):
    """models(*args, env=None, check=True): runs `dreamforge model ARGS --data-dir DATA` with the
    fake hub as Hugging Face and CivitAI."""
    def run(*args, env=None, check=True):
        environment = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "CIVITAI_TOKEN")}
        environment.update({"HF_ENDPOINT": hub.url, "DREAMFORGE_CIVITAI_URL": hub.url, **(env or {})})
        return run_dreamforge("model", *args, "--data-dir", data_dir, env=environment, check=check)
    return run


def installed_dir(data_dir, hub, kind="checkpoints", repo=REPO, name="tiny-sd"):
    return data_dir / "models" / kind / f"{name}@{hub.commit(repo)[:12]}"


def layout_leftovers(data_dir):
    """Files in the layout (outside staging and quarantine) that are partial."""
    root = data_dir / "models"
    return [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".part")
            and ".staging" not in p.parts and ".quarantine" not in p.parts]


def test_pipeline_download_installs_the_needed_files_and_a_rerun_transfers_nothing(models, hub, data_dir):
    proc = models("download", f"hf:{REPO}")
    target = installed_dir(data_dir, hub)
    assert f"installed: {target.name}" in proc.stdout
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert "model_index.json" in files and UNET in files
    assert "tokenizer/vocab.json" in files and "tokenizer/merges.txt" in files
    assert "scheduler/scheduler_config.json" in files and "text_encoder/model.safetensors" in files
    assert not [f for f in files if f.startswith(("safety_checker/", "feature_extractor/"))]
    assert not [f for f in files if f.endswith((".bin", ".fp16.safetensors", ".md", ".part"))]
    descriptor = json.loads((target / "dreamforge-model.json").read_text())
    assert descriptor["source_uri"] == f"hf:{REPO}@main"
    assert descriptor["revision"] == hub.commit(REPO)
    recorded = {f["path"]: f for f in descriptor["files"]}
    unet_bytes = (target / UNET).read_bytes()
    assert recorded[UNET]["sha256"] == hashlib.sha256(unet_bytes).hexdigest()
    assert recorded[UNET]["size"] == len(unet_bytes)
    assert not list((data_dir / "models" / ".staging").rglob("*.part"))

    listing = json.loads(models("list", "--json").stdout)["models"]
    entry = next(m for m in listing if m["id"] == target.name)
    assert entry["installed"] and entry["family"] == "sd1" and entry["source_uri"] == f"hf:{REPO}@main"
    assert target.name in models("list").stdout

    hub.clear_requests()
    again = models("download", f"hf:{REPO}")
    assert f"already installed: {target.name}" in again.stdout
    assert hub.file_requests() == []
    assert [r["path"] for r in hub.requests] == [f"/api/models/{REPO}/revision/main"]

    assert "ok: " + target.name in models("verify", target.name).stdout
    assert "ok: " + target.name in models("verify", f"hf:{REPO}").stdout


def test_a_dropped_connection_is_resumed_with_a_range_request(models, hub, data_dir):
    hub.drop_once.add(f"{REPO}/{UNET}")
    proc = models("download", f"hf:{REPO}", "--jobs", "2")
    assert "retrying " + UNET in proc.stderr
    transfers = [r for r in hub.requests if r["path"] == f"/_lfs/{REPO}/{UNET}"]
    assert len(transfers) == 2
    assert transfers[0]["range"] is None
    assert transfers[1]["range"].startswith("bytes=") and transfers[1]["range"] != "bytes=0-"
    target = installed_dir(data_dir, hub)
    assert (target / UNET).read_bytes() == (hub.root / "hf" / REPO / UNET).read_bytes()


def test_rate_limiting_is_retried_after_the_servers_delay(models, hub, data_dir):
    hub.rate_limit_once.add(f"{REPO}/unet/config.json")
    proc = models("download", f"hf:{REPO}")
    assert "retrying unet/config.json (HTTP 429) in 1.0 s" in proc.stderr
    assert (installed_dir(data_dir, hub) / "unet" / "config.json").is_file()


def test_bytes_that_do_not_match_their_published_hash_are_quarantined(models, hub, data_dir):
    hub.corrupt.add(f"{REPO}/{UNET}")
    proc = models("download", f"hf:{REPO}", check=False)
    assert proc.returncode != 0
    actual = hashlib.sha256((hub.root / "hf" / REPO / UNET).read_bytes()).hexdigest()
    expected = hub.sibling(REPO, UNET)["lfs"]["sha256"]
    assert "error[corrupt_file]" in proc.stderr
    assert UNET in proc.stderr and expected in proc.stderr and actual in proc.stderr
    quarantined = data_dir / "models" / ".quarantine" / "checkpoints" / installed_dir(data_dir, hub).name / UNET
    assert quarantined.is_file()
    assert not installed_dir(data_dir, hub).exists()
    assert layout_leftovers(data_dir) == []
    assert installed_dir(data_dir, hub).name not in models("list").stdout


def test_gated_repos_need_the_right_token_which_never_shows(models, hub, data_dir):
    hub.gated[REPO] = HF_TOKEN
    without = models("download", f"hf:{REPO}", check=False)
    assert without.returncode != 0 and "error[forbidden]" in without.stderr
    assert "HF_TOKEN" in without.stderr
    wrong = models("download", f"hf:{REPO}", env={"HF_TOKEN": "hf_wrong_token_42"}, check=False)
    assert wrong.returncode != 0 and "no access" in wrong.stderr
    assert "hf_wrong_token_42" not in wrong.stderr + wrong.stdout
    hub.clear_requests()
    right = models("download", f"hf:{REPO}", env={"HF_TOKEN": HF_TOKEN})
    assert "installed: " in right.stdout
    assert all(r["authorized"] for r in hub.requests if not r["path"].startswith("/_lfs/"))

    outputs = without.stdout + without.stderr + right.stdout + right.stderr
    outputs += models("list", "--json", env={"HF_TOKEN": HF_TOKEN}).stdout
    assert HF_TOKEN not in outputs
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert HF_TOKEN.encode() not in path.read_bytes(), path


def test_unknown_repos_revisions_and_files_are_clear_errors(models, hub, data_dir):
    for ref, words in ((f"hf:test-org/nope", "was not found"),
                       (f"hf:{REPO}@v9", "was not found"),
                       (f"hf:{REPO}#nope.safetensors", "no file 'nope.safetensors'"),
                       (f"hf:{REPO}#*.gguf", "matches '*.gguf'")):
        proc = models("download", ref, check=False)
        assert proc.returncode != 0, ref
        assert "error[not_found]" in proc.stderr and words in proc.stderr, (ref, proc.stderr)
    bad = models("download", "hf:../etc", check=False)
    assert bad.returncode != 0 and "error[validation]" in bad.stderr
    assert hub.file_requests() == []
    assert not (data_dir / "models" / "checkpoints").exists() or \
        not list((data_dir / "models" / "checkpoints").iterdir())


class _System:
    """Unpickling it runs os.system(command)."""
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def hostile_checkpoint(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.zeros(2), "evil": _System(f"touch {marker}")}}, str(path))


def files_named(root, name):
    return [p for p in root.rglob("*") if p.is_file() and p.name.startswith(name)] if root.exists() else []


def test_pickles_are_installed_only_when_the_weights_reader_accepts_their_bytes(models, hub, data_dir, tmp_path):
    repo = hub.root / "hf" / "test-org" / "pickles"
    marker = tmp_path / "MARKER"
    hostile_checkpoint(repo / "evil.ckpt", marker)
    torch.save({"state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 1, 1)},
                "global_step": 10}, str(repo / "good.ckpt"))

    refused = models("download", "hf:test-org/pickles#evil.ckpt", check=False)
    assert refused.returncode != 0 and "error[unsafe_format]" in refused.stderr, refused.stderr
    assert "evil.ckpt" in refused.stderr and "system'" in refused.stderr
    assert hub.file_requests(), "the file is judged by its downloaded bytes"
    assert files_named(data_dir / "models", "evil.ckpt") == []
    assert not marker.exists()

    models("download", "hf:test-org/pickles#good.ckpt")
    target = installed_dir(data_dir, hub, repo="test-org/pickles", name="good")
    assert (target / "good.ckpt").read_bytes() == (repo / "good.ckpt").read_bytes()
    listed = [m for m in json.loads(models("list", "--json").stdout)["models"] if m["id"] == target.name]
    assert listed and listed[0]["format"] == "pytorch-zip" and listed[0]["family"] == "sd1"


def single_file_checkpoint(path):
    """A safetensors file the registry recognises as an sd1 single-file checkpoint."""
    write_safetensors(path, {"model.diffusion_model.input_blocks.0.0.weight": ((4, 4, 1, 1), 0.5)})


def test_a_single_file_is_installed_under_its_own_name(models, hub, data_dir):
    single_file_checkpoint(hub.root / "hf" / "test-org" / "single" / "v1-tiny.safetensors")
    (hub.root / "hf" / "test-org" / "single" / "README.md").write_text("single")
    proc = models("download", "hf:test-org/single#v1-tiny.safetensors")
    target = installed_dir(data_dir, hub, repo="test-org/single", name="v1-tiny")
    assert f"installed: {target.name}" in proc.stdout
    assert sorted(p.name for p in target.iterdir()) == ["dreamforge-model.json", "v1-tiny.safetensors"]
    descriptor = json.loads((target / "dreamforge-model.json").read_text())
    assert descriptor["local_path"] == "v1-tiny.safetensors"
    assert descriptor["checkpoint_hash"] == hashlib.sha256((target / "v1-tiny.safetensors").read_bytes()).hexdigest()


def add_civitai_model(hub, *, model_id=101, name="Tiny Ink Lora", kind="LORA", version_id=1001,
                      files=(("tiny_ink.safetensors", "safetensors"),), login_required=False):
    folder = hub.root / "civitai" / "files"
    entries = []
    for index, (file_name, form) in enumerate(files):
        if form == "safetensors":
            write_safetensors(folder / file_name, {"lora_unet_down.weight": ((8,), 0.25)})
        else:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / file_name).write_bytes(b"\x80\x04pickle")
        entries.append({"name": file_name, "path": f"files/{file_name}", "primary": index == 0,
                        "format": "SafeTensor" if form == "safetensors" else "PickleTensor"})
    catalogue = hub.civitai_models()
    catalogue.append({"id": model_id, "name": name, "type": kind, "versions": [
        {"id": version_id, "name": "v1", "baseModel": "SD 1.5", "login_required": login_required,
         "trainedWords": ["inkstyle"], "files": entries}]})
    (hub.root / "civitai" / "models.json").write_text(json.dumps(catalogue))


def test_civitai_lora_goes_to_the_loras_folder_and_is_found_by_slug(models, hub, data_dir):
    add_civitai_model(hub, login_required=True)
    hub.civitai_token = CIVITAI_TOKEN
    hub.rate_limit_once.add("civitai/files/tiny_ink.safetensors")
    refused = models("download", "civitai:101", check=False)
    assert refused.returncode != 0 and "CIVITAI_TOKEN" in refused.stderr

    proc = models("download", "civitai:101", env={"CIVITAI_TOKEN": CIVITAI_TOKEN})
    target = data_dir / "models" / "loras" / "tiny-ink-lora@1001"
    assert "installed: tiny-ink-lora@1001" in proc.stdout
    assert (target / "tiny_ink.safetensors").read_bytes() == (hub.root / "civitai" / "files" / "tiny_ink.safetensors").read_bytes()
    descriptor = json.loads((target / "dreamforge-model.json").read_text())
    assert descriptor["kind"] == "loras" and descriptor["extra"]["trained_words"] == ["inkstyle"]
    assert CIVITAI_TOKEN not in proc.stdout + proc.stderr + refused.stderr

    hub.clear_requests()
    again = models("download", "civitai:tiny-ink-lora@1001", env={"CIVITAI_TOKEN": CIVITAI_TOKEN})
    assert "already installed: tiny-ink-lora@1001" in again.stdout
    assert hub.file_requests() == []
    assert "ok: tiny-ink-lora@1001" in models("verify", "civitai:101").stdout


def test_civitai_hostile_pickles_are_refused_and_corrupt_files_quarantined(models, hub, data_dir, tmp_path):
    add_civitai_model(hub, model_id=202, name="Old Ckpt", kind="Checkpoint", version_id=2002,
                      files=(("old.ckpt", "pickle"),))
    hostile_checkpoint(hub.root / "civitai" / "files" / "old.ckpt", tmp_path / "MARKER")
    proc = models("download", "civitai:202", check=False)
    assert proc.returncode != 0 and "error[unsafe_format]" in proc.stderr and "old.ckpt" in proc.stderr
    assert files_named(data_dir / "models", "old.ckpt") == []
    assert not (tmp_path / "MARKER").exists()

    add_civitai_model(hub, model_id=303, name="Bad Bytes", version_id=3003,
                      files=(("bad.safetensors", "safetensors"),))
    hub.corrupt.add("civitai/files/bad.safetensors")
    bad = models("download", "civitai:303@3003", check=False)
    assert bad.returncode != 0 and "error[corrupt_file]" in bad.stderr and "bad.safetensors" in bad.stderr
    assert (data_dir / "models" / ".quarantine" / "loras" / "bad-bytes@3003" / "bad.safetensors").is_file()
    assert not (data_dir / "models" / "loras" / "bad-bytes@3003").exists()
    wrong_model = models("download", "civitai:101@3003", check=False)
    assert wrong_model.returncode != 0 and "error[not_found]" in wrong_model.stderr


def test_verify_finds_changed_files_and_remove_deletes_the_model(models, hub, data_dir):
    models("download", f"hf:{REPO}")
    target = installed_dir(data_dir, hub)
    config = target / "unet" / "config.json"
    config.write_text(config.read_text().replace("{", "[", 1).replace("}", "]", 1))  # same size
    proc = models("verify", target.name, check=False)
    assert proc.returncode != 0 and "error[corrupt_file]" in proc.stderr
    assert "unet/config.json: sha256" in proc.stderr

    assert f"removed: {target.name}" in models("remove", target.name).stdout
    assert not target.exists()
    assert target.name not in models("list").stdout
    missing = models("remove", target.name, check=False)
    assert missing.returncode != 0 and "error[not_found]" in missing.stderr


def test_a_terminal_gets_a_progress_bar(hub, data_dir):
    code, output = run_on_terminal(["env", f"HF_ENDPOINT={hub.url}", BIN / "dreamforge", "model",
                                    "download", f"hf:{REPO}", "--data-dir", data_dir])
    assert code == 0, output
    assert "\r\x1b[K[" in output and "files" in output
    assert "installed: " in output


def test_a_downloaded_pipeline_is_served_and_runs_a_job(models, hub, data_dir, start_service):
    if not (BIN / "dreamforge-runner").exists():
        pytest.skip("this build has no dreamforge-runner (built without libtorch)")
    models("download", f"hf:{REPO}")
    model_id = installed_dir(data_dir, hub).name
    service = start_service(data_dir=data_dir, model=False)
    listed = [m["id"] for m in service.get("/v1/models").json()["models"]]
    assert model_id in listed
    job = service.create_job(generate_body(model_id=model_id))
    done = service.wait_for_job(job["id"])
    assert done["status"] == "succeeded", done["error"]


def test_admins_download_in_the_background_once_per_reference(hub, data_dir, start_service, keys_cli):
    admin = json.loads(keys_cli(data_dir, "create", "--name", "root", "--scope", "admin", "--json").stdout)
    user = json.loads(keys_cli(data_dir, "create", "--name", "alice", "--json").stdout)
    service = start_service("--model-downloads", "1", data_dir=data_dir, model=False,
                            env={"HF_ENDPOINT": hub.url, "HF_TOKEN": HF_TOKEN})
    as_admin = {"Authorization": f"Bearer {admin['key']}"}
    refused = service.post("/v1/models:download", {"ref": f"hf:{REPO}"},
                           headers={"Authorization": f"Bearer {user['key']}"})
    assert refused.status_code == 403, refused.text

    hub.released.clear()  # the transfer waits: the second request finds the first unfinished
    first = service.post("/v1/models:download", {"ref": f"hf:{REPO}"}, headers=as_admin)
    assert first.status_code == 202, first.text
    job = first.json()["job"]
    assert job["type"] == "model_download" and job["spec"]["ref"] == f"hf:{REPO}@main"
    again = service.post("/v1/models:download", {"ref": f"hf:{REPO}@main"}, headers=as_admin)
    assert again.status_code == 200 and again.json()["job"]["id"] == job["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    hub.released.set()

    service.http.headers.update(as_admin)
    done = service.wait_for_job(job["id"])
    assert done["status"] == "succeeded", done["error"]
    model_id = installed_dir(data_dir, hub).name
    assert model_id in [m["id"] for m in service.get("/v1/models").json()["models"]]
    lines = [json.loads(line) for line in service.get(f"/v1/jobs/{job['id']}/logs").text.splitlines()]
    codes = [line["code"] for line in lines]
    assert {"download.start", "download.file", "download.file_done", "job.finish"} <= set(codes), codes
    progress = [e[2] for e in service.events(job["id"]) if e[1] == "progress"]
    assert progress and progress[-1]["data"]["bytes_done"] == progress[-1]["data"]["bytes_total"] > 0
    assert HF_TOKEN not in service.get(f"/v1/jobs/{job['id']}/logs").text
    assert HF_TOKEN not in "".join(service.output)
    metrics = service.get("/metrics").text
    assert 'dreamforge_model_downloads_total{outcome="installed"} 1' in metrics
    assert "dreamforge_model_download_bytes_total" in metrics
    assert job["id"] not in json.dumps(service.get("/history").json()), "not a ComfyUI prompt"
    audit = run_dreamforge("audit", "--data-dir", data_dir, "--json",
                           env={**os.environ, **{k: v for k, v in service.env.items()
                                                 if k.startswith("DREAMFORGE_")}}).stdout
    assert any(e["action"] == "model.download" and e["actor"] == admin["id"]
               and e["target"] == f"hf:{REPO}@main" for e in json.loads(audit))

    verify = service.post("/v1/models:download", {"ref": f"hf:{REPO}", "verify_only": True})
    assert service.wait_for_job(verify.json()["job"]["id"])["status"] == "succeeded"
    (installed_dir(data_dir, hub) / UNET).write_bytes(b"changed")
    verify = service.post("/v1/models:download", {"ref": f"hf:{REPO}", "verify_only": True})
    failed = service.wait_for_job(verify.json()["job"]["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "corrupt_file", failed["error"]
    assert UNET in failed["error"]["message"]


def test_model_downloads_over_the_api_are_off_unless_enabled_and_bodies_are_checked(hub, data_dir,
                                                                                   start_service):
    off = start_service(data_dir=data_dir, model=False, env={"HF_ENDPOINT": hub.url})
    refused = off.post("/v1/models:download", {"ref": f"hf:{REPO}"})
    assert refused.status_code == 403 and "--model-downloads" in refused.json()["message"]
    off.stop()
    service = start_service("--model-downloads", "1", data_dir=data_dir, model=False,
                            env={"HF_ENDPOINT": hub.url})
    for body, field in (({"ref": "nope"}, "ref"), ({}, "ref"), ({"ref": f"hf:{REPO}", "kind": "../x"}, "kind"),
                        ({"ref": f"hf:{REPO}", "extra": 1}, "extra"), ({"ref": 42}, "ref")):
        bad = service.post("/v1/models:download", body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.json()["details"]["fields"][0]["field"].startswith(field), (body, bad.json())
    missing = service.post("/v1/models:download", {"ref": "hf:test-org/no-such-repo"})
    failed = service.wait_for_job(missing.json()["job"]["id"])
    assert failed["status"] == "failed" and "no-such-repo" in failed["error"]["message"]

    hub.released.clear()
    held = service.post("/v1/models:download", {"ref": f"hf:{REPO}"}).json()["job"]
    service.wait_for_job(held["id"], statuses=("running",))
    assert service.post(f"/v1/jobs/{held['id']}/cancel").status_code == 202
    hub.released.set()
    canceled = service.wait_for_job(held["id"])
    assert canceled["status"] == "canceled", canceled
    assert not installed_dir(data_dir, hub).exists()
    assert 'dreamforge_model_downloads_total{outcome="canceled"} 1' in service.get("/metrics").text
