"""Functions and quality tiers through POST /v1/jobs: the routing table picks the model, falls back
in plain words, keeps explicit models, and jobs carry a time estimate once the model has history."""
import pytest

from service_support import install_tiny_model

SMALL = {"width": 64, "height": 64, "steps": 2}


def routed_job(service, **fields):
    response = service.post("/v1/jobs", {"prompt": "a red kite", **SMALL, **fields})
    assert response.status_code == 202, response.text
    return response.json()


def test_a_quality_tier_falls_back_in_plain_words_and_the_job_runs(start_service):
    service = start_service()
    job = routed_job(service, function="create_image", quality="high")
    routing = job["spec"]["routing"]
    assert job["spec"]["model_id"] == "tiny" and routing["fell_back"] is True
    assert [skipped["family"] for skipped in routing["skipped"]] == ["flux", "sdxl"]
    assert {skipped["reason"] for skipped in routing["skipped"]} == {"not_installed"}
    assert routing["message"] == ("No FLUX.1 dev model is installed. No SDXL model is installed; "
                                  "using tiny (test model, random weights) instead.")

    events = service.events(job["id"])
    fallback = [data for _, kind, data in events if kind == "log" and data.get("code") == "model_fallback"]
    assert fallback and fallback[0]["plain"] == routing["message"]
    assert events[-1][1] == "job_finished" and service.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"


def test_jobs_get_an_estimate_once_the_model_has_run(start_service):
    service = start_service()
    first = routed_job(service, model_id="tiny")
    assert "estimate" not in first, "no history yet"
    service.wait_for_job(first["id"])

    second = routed_job(service, model_id="tiny", count=2)
    estimate = second["estimate"]
    assert estimate["seconds"] > 0 and estimate["samples_used"] == 1
    assert "earlier run" in estimate["basis"]
    assert estimate["seconds_left"] == pytest.approx(estimate["seconds"], abs=0.11)
    progress = [data["data"] for _, kind, data in service.events(second["id"]) if kind == "progress"]
    assert progress and all("eta_seconds_left" in data for data in progress)
    assert progress[-1]["eta_seconds_left"] < estimate["seconds"]
    done = service.get(f"/v1/jobs/{second['id']}").json()
    assert done["status"] == "succeeded" and done["estimate"]["seconds_left"] is None


def test_a_model_too_large_for_the_gpu_is_passed_over(start_service, tmp_path):
    install_tiny_model(tmp_path / "data", name="tiny-xl", family="sdxl")
    # The API alone: it routes for the workers' 8 GB GPU without touching one.
    service = start_service("--device", "cuda", "--gpu-memory-mb", "8192", command="api")
    job = routed_job(service, function="create_image", quality="high")
    assert job["spec"]["model_id"] == "tiny"
    skipped = job["spec"]["routing"]["skipped"][1]  # after FLUX.1 dev, which is not installed
    assert skipped["reason"] == "needs_more_memory" and "8 GB" in skipped["message"]

    explicit = service.post("/v1/jobs", {"prompt": "x", "model_id": "tiny-xl", "quality": "high"})
    assert explicit.status_code == 422 and explicit.json()["details"]["fields"][0]["field"] == "model_id"
    nothing = service.post("/v1/jobs", {"prompt": "x", "function": "create_image", "quality": "high",
                                        "preset": "no-such-preset"})
    assert nothing.status_code == 422 and "sdxl-high" in nothing.json()["message"]


def test_a_broken_routing_table_stops_the_start_with_its_line(start_service, tmp_path):
    config = tmp_path / "data" / "config"
    config.mkdir(parents=True)
    (config / "routing.yaml").write_text("version: 1\npresets:\n  fast: [not, a, preset]\n")
    with pytest.raises(AssertionError) as failure:
        start_service()
    assert "routing.yaml:3" in str(failure.value)
