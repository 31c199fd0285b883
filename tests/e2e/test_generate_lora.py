"""LoRAs in generate jobs: /v1 jobs take `loras` (checked against the models' loras folder at
submission, shown in the parameters schema) and `dreamforge generate --lora NAME[:STRENGTH]` applies
them locally; a tiny LoRA of the tiny checkpoint changes its image, at strength 0 it does not, and
every family takes a LoRA of its own."""
import os

import numpy as np
import pytest

from e2e_support import install_tiny_split_files
from graph_support import pixels, same
from service_support import generate_body

LORA = "tiny-lora.safetensors"


def install_tiny_lora(dreamforge, data_dir, family="sd1"):
    """models/loras/tiny-lora.safetensors for the family's tiny checkpoint."""
    dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", "tiny-lora", "--family",
               family, "--kind", "lora", "--seed", 3)


@pytest.fixture
def service(start_service, dreamforge, tmp_path):
    install_tiny_lora(dreamforge, tmp_path / "data")
    return start_service(data_dir=tmp_path / "data")


def image_of(service, body):
    """The one image a generate job makes, as pixels, and the job as it ended."""
    job = service.wait_for_job(service.create_job(body)["id"])
    assert job["status"] == "succeeded", job["error"]
    [artifact] = service.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"]
    response = service.get(artifact["url"])
    assert response.status_code == 200
    return pixels(response.content), job


def test_a_lora_changes_the_image_and_strength_zero_leaves_it(service):
    plain, _ = image_of(service, generate_body())
    patched, job = image_of(service, generate_body(loras=[{"name": LORA}]))
    zero, _ = image_of(service, generate_body(
        loras=[{"name": LORA, "strength_model": 0, "strength_clip": 0}]))
    assert job["spec"]["loras"] == [{"name": LORA, "strength_model": 1.0, "strength_clip": 1.0}]
    assert np.abs(patched - plain).max() > 8, "the LoRA left the image as it was"
    assert same(zero, plain)


def test_two_loras_apply_in_order_and_each_counts(service, dreamforge):
    dreamforge("model", "create-tiny", "--data-dir", service.data_dir, "--name", "other-lora",
               "--family", "sd1", "--kind", "lora", "--seed", 4)
    one, _ = image_of(service, generate_body(loras=[{"name": LORA}]))
    both, job = image_of(service, generate_body(
        loras=[{"name": LORA}, {"name": "other-lora.safetensors", "strength_clip": 0.5}]))
    assert [lora["name"] for lora in job["spec"]["loras"]] == [LORA, "other-lora.safetensors"]
    assert not same(one, both)


def test_a_missing_lora_is_refused_naming_the_field_and_listing_the_files(service):
    response = service.post("/v1/jobs", generate_body(loras=[{"name": "missing.safetensors"}]))
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "validation"
    assert [f["field"] for f in error["details"]["fields"]] == ["loras[0].name"]
    assert LORA in error["details"]["fields"][0]["message"]
    assert error["details"]["available_loras"] == [LORA]
    assert service.get("/v1/jobs").json()["jobs"] == []


def test_the_parameters_schema_and_the_openapi_document_bound_loras(service):
    [model] = service.get("/v1/models").json()["models"]
    schema = model["parameters_schema"]["properties"]["loras"]
    assert schema["maxItems"] == 8
    assert schema["items"]["required"] == ["name"]
    document = service.get("/v1/openapi.json").json()
    body = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"][0]["properties"]["loras"] == schema
    too_strong = service.post("/v1/jobs", generate_body(
        loras=[{"name": LORA, "strength_model": 10.5}]))
    assert too_strong.status_code == 422
    fields = [f["field"] for f in too_strong.json()["details"]["fields"]]
    assert fields == ["loras/0/strength_model"]
    too_many = service.post("/v1/jobs", generate_body(loras=[{"name": LORA}] * 9))
    assert too_many.status_code == 422
    assert [f["field"] for f in too_many.json()["details"]["fields"]] == ["loras"]


def generate_locally(dreamforge, data_dir, out_dir, *flags, check=True, model="tiny", env=None):
    return dreamforge("generate", "a lighthouse at dusk", "--model",
                      data_dir / "models" / "checkpoints" / model, "--width", 64, "--height", 64,
                      "--steps", 3, "--seed", 1234, "--device", "cpu", "--out", out_dir, *flags,
                      check=check, env={**os.environ, **(env or {})})


def written_image(proc):
    """The pixels of the one image `dreamforge generate` printed the path of."""
    [line] = proc.stdout.splitlines()
    with open(line.split("  ")[0], "rb") as image:
        return pixels(image.read())


def test_the_cli_applies_a_lora_and_names_a_missing_one(dreamforge, tmp_path):
    data_dir = tmp_path / "data"
    dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", "tiny", "--family", "sd1")
    install_tiny_lora(dreamforge, data_dir)
    plain = written_image(generate_locally(dreamforge, data_dir, tmp_path / "plain"))
    patched = written_image(generate_locally(dreamforge, data_dir, tmp_path / "lora",
                                             "--lora", f"{LORA}:0.8"))
    zero = written_image(generate_locally(dreamforge, data_dir, tmp_path / "zero",
                                          "--lora", f"{LORA}:0"))
    assert np.abs(patched - plain).max() > 8
    assert same(zero, plain)

    missing = generate_locally(dreamforge, data_dir, tmp_path / "missing", "--lora",
                               "missing.safetensors", check=False)
    assert missing.returncode != 0
    assert "missing.safetensors" in missing.stderr and LORA in missing.stderr
    assert not (tmp_path / "missing").exists()


def test_the_cli_sends_its_loras_to_a_server(service, dreamforge, tmp_path):
    proc = dreamforge("generate", "a lighthouse at dusk", "--model", "tiny", "--server",
                      service.base_url, "--width", 64, "--height", 64, "--steps", 3, "--seed", 1234,
                      "--lora", f"{LORA}:0.5", "--out", tmp_path / "remote", timeout=180)
    assert len(proc.stdout.splitlines()) == 1
    [job] = service.get("/v1/jobs").json()["jobs"]
    assert job["status"] == "succeeded"
    assert job["spec"]["loras"] == [{"name": LORA, "strength_model": 0.5, "strength_clip": 0.5}]


# The tiny checkpoint each family's create-tiny writes (FLUX.1 and SD3 as all-in-one files).
FAMILY_CHECKPOINTS = {"sd2": "tiny", "sdxl": "tiny", "zimage": "tiny",
                      "flux": "tiny.safetensors", "sd3": "tiny.safetensors"}


@pytest.mark.parametrize("family", sorted(FAMILY_CHECKPOINTS))
def test_every_family_takes_a_lora_of_its_own(dreamforge, tmp_path, family):
    """LoraLoader patches the UNet of the SD families and the transformer of the DiT ones, so a
    generate job on any family may name LoRAs."""
    data_dir = tmp_path / "data"
    dreamforge("model", "create-tiny", "--data-dir", data_dir, "--name", "tiny", "--family", family)
    install_tiny_lora(dreamforge, data_dir, family)
    env = {}
    if family in ("flux", "sd3"):  # the all-in-one files' CLIPs carry no vocabulary
        install_tiny_split_files(data_dir, "flux")
        env["DREAMFORGE_CLIP_VOCAB_DIR"] = str(data_dir / "models" / "text_encoders" /
                                               "clip_l.tokenizer")
    model = FAMILY_CHECKPOINTS[family]
    plain = written_image(generate_locally(dreamforge, data_dir, tmp_path / "plain", model=model,
                                           env=env))
    patched = written_image(generate_locally(dreamforge, data_dir, tmp_path / "lora", "--lora",
                                             LORA, model=model, env=env))
    assert np.abs(patched - plain).max() > 8
