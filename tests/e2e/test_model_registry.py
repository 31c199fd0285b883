"""The model registry behind `dreamforge serve`: models in the checkpoints folder are registered and
offered by /v1/models, /object_info and jobs; entries whose files vanish are warned about at start
and refused with a reason; models copied in while the service runs appear without a restart."""
import shutil

from e2e_support import run_dreamforge
from service_support import comfy_graph, generate_body, install_tiny_model


def checkpoint_choices(service):
    return service.get("/object_info/CheckpointLoaderSimple").json()[
        "CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]


def test_models_copied_in_while_running_are_offered_everywhere(start_service, tmp_path):
    service = start_service()
    install_tiny_model(tmp_path / "data", name="second", family="sdxl")
    assert [m["id"] for m in service.get("/v1/models").json()["models"]] == ["second", "tiny"]
    assert checkpoint_choices(service) == ["second", "tiny"]
    detail = service.get("/v1/models/second").json()
    assert detail["family"] == "sdxl" and detail["installed"] and detail["enabled"]
    assert detail["kind"] == "checkpoints" and detail["ckpt_name"] == "second"
    # Without keys the caller is the admin of this machine: the detail says where the files lie
    # (a user key does not see it: test_api_keys); the list never does.
    assert detail["local_path"].endswith("second") and isinstance(detail["files_json"], list)
    assert all("local_path" not in m for m in service.get("/v1/models").json()["models"])
    response = service.post("/v1/jobs", generate_body(model_id="second"))
    assert response.status_code == 202, response.text
    assert service.wait_for_job(response.json()["id"])["status"] == "succeeded"


def test_an_entry_whose_files_vanished_is_warned_about_and_refused(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_model(data_dir, name="kept")
    service = start_service()
    assert {m["id"] for m in service.get("/v1/models").json()["models"]} == {"kept", "tiny"}
    service.stop()

    shutil.move(data_dir / "models" / "checkpoints" / "tiny", tmp_path / "tiny-elsewhere")
    service = start_service(model=False)
    warnings = [line for line in service.output if "warning" in line]
    assert any("'tiny'" in line and "files are missing" in line for line in warnings), service.output
    assert [m["id"] for m in service.get("/v1/models").json()["models"]] == ["kept"]
    assert service.get("/v1/models/tiny").json()["installed"] is False

    refused = service.post("/v1/jobs", generate_body(model_id="tiny"))
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "model_not_found" and "files are missing" in body["message"]
    assert body["details"]["models"] == ["kept"]
    assert checkpoint_choices(service) == ["kept"]
    rejected = service.post("/prompt", {"prompt": comfy_graph(ckpt="tiny")})
    assert rejected.status_code == 400
    assert rejected.json()["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"


def test_a_disabled_model_is_not_offered_until_enabled_again(start_service, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service()
    disabled = run_dreamforge("model", "disable", "tiny", "--data-dir", data_dir)
    assert "disabled: tiny" in disabled.stdout
    assert service.get("/v1/models").json()["models"] == []
    assert service.get("/v1/models/tiny").json()["enabled"] is False
    refused = service.post("/v1/jobs", generate_body())
    assert refused.status_code == 422 and "disabled" in refused.json()["message"]

    run_dreamforge("model", "enable", "tiny", "--data-dir", data_dir)
    assert [m["id"] for m in service.get("/v1/models").json()["models"]] == ["tiny"]
    unknown = run_dreamforge("model", "disable", "nope", "--data-dir", data_dir, check=False)
    assert unknown.returncode != 0 and "no model 'nope'" in unknown.stderr
