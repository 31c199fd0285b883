"""Pre-warming: a routing table naming models under `prewarm` has each native runner load them when
its worker starts, so /healthz lists them warm before any job ran, and a model that is not installed
is named in the log and left out."""
import time

from e2e_support import ROOT


def warm_models(service):
    """The models /healthz lists as held by the service's runners."""
    runners = [r for device in service.get("/healthz").json()["devices"] for r in device["runners"]]
    return {model for runner in runners for model in runner.get("models", [])}


def test_prewarm_models_are_loaded_before_any_job(start_service, tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "config").mkdir(parents=True)
    table = (ROOT / "docs" / "routing.example.yaml").read_text()
    (data_dir / "config" / "routing.yaml").write_text(table + "\nprewarm: [tiny, not-installed]\n")
    service = start_service(data_dir=data_dir)

    deadline = time.monotonic() + 120
    while not warm_models(service):
        assert time.monotonic() < deadline, "no model became warm"
        time.sleep(0.1)
    [model] = warm_models(service)
    assert "tiny" in model, model
    assert service.get("/v1/jobs").json()["jobs"] == []
    assert "no model 'not-installed' is installed; it is not kept warm" in "".join(service.output)
