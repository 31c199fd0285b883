"""ComfyUI clients against `dreamforge serve`: /prompt, /ws, /history, /view, /queue, /interrupt,
written the way ComfyUI's own API examples are."""
import io
import json
import re
import threading
import urllib.parse
import uuid

import websocket
from PIL import Image

from service_support import comfy_graph, failing_graph


def open_socket(service, client_id):
    ws = websocket.WebSocket()
    ws.connect(service.base_url.replace("http://", "ws://") + f"/ws?clientId={client_id}", timeout=60)
    return ws


def queue_prompt(service, prompt, client_id, **extra):
    response = service.post("/prompt", {"prompt": prompt, "client_id": client_id, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def messages_until_done(ws, prompt_id, previews=None):
    """Reads JSON messages until `executing` with node null for this prompt (what ComfyUI's
    websockets_api_example.py waits for); binary preview frames go into `previews`."""
    received = []
    while True:
        frame = ws.recv()
        if not isinstance(frame, str):
            if previews is not None:
                previews.append(frame)
            continue
        message = json.loads(frame)
        received.append(message)
        data = message["data"]
        if message["type"] == "executing" and data["node"] is None and data["prompt_id"] == prompt_id:
            return received


def test_the_websocket_api_example_flow_gets_the_image(start_service):
    service = start_service()
    client_id = str(uuid.uuid4())
    ws = open_socket(service, client_id)
    hello = json.loads(ws.recv())
    assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}}

    answer = queue_prompt(service, comfy_graph(seed=42, steps=4, prefix="ComfyUI"), client_id)
    assert set(answer) == {"prompt_id", "number", "node_errors"} and answer["node_errors"] == {}
    prompt_id = answer["prompt_id"]
    previews = []
    messages = messages_until_done(ws, prompt_id, previews)
    ws.close()

    # One latent preview per sampler step: [u32 1 = PREVIEW_IMAGE][u32 1 = JPEG][JPEG bytes].
    assert len(previews) == 4
    for frame in previews:
        assert frame[:8] == b"\x00\x00\x00\x01\x00\x00\x00\x01"
        assert Image.open(io.BytesIO(frame[8:])).size == (8, 8)  # the 64x64 image's latent

    kinds = [m["type"] for m in messages]
    assert kinds.index("execution_start") < kinds.index("execution_cached") < kinds.index("executing")
    executing = [m["data"]["node"] for m in messages if m["type"] == "executing"]
    assert executing[-1] is None and set(executing[:-1]) == {"3", "4", "5", "6", "7", "8", "9"}
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert [p["value"] for p in progress] == [1, 2, 3, 4] and {p["max"] for p in progress} == {4}
    assert all(p["prompt_id"] == prompt_id and p["node"] == "3" for p in progress)
    executed = [m["data"] for m in messages if m["type"] == "executed"]
    assert executed[0]["node"] == "9" and executed[0]["output"]["images"][0]["type"] == "output"
    assert kinds.index("execution_success") < len(kinds) - 1
    assert any(m["type"] == "status" for m in messages[kinds.index("execution_success"):])

    history = service.get(f"/history/{prompt_id}").json()[prompt_id]
    assert history["status"]["status_str"] == "success" and history["status"]["completed"] is True
    assert history["prompt"][1] == prompt_id and history["prompt"][3]["client_id"] == client_id
    images = history["outputs"]["9"]["images"]
    assert len(images) == 1 and images[0]["filename"].startswith("ComfyUI_")
    query = urllib.parse.urlencode({"filename": images[0]["filename"], "subfolder": images[0]["subfolder"],
                                    "type": images[0]["type"]})
    view = service.get(f"/view?{query}")
    assert view.status_code == 200
    image = Image.open(io.BytesIO(view.content))
    assert image.size == (64, 64) and json.loads(image.text["prompt"])["3"]["inputs"]["seed"] == 42

    # The same prompt is a Dream Forge job too, and /api/... answers like the plain path.
    job = service.get(f"/v1/jobs/{prompt_id}").json()
    assert job["type"] == "workflow" and job["status"] == "succeeded"
    assert service.get(f"/api/history/{prompt_id}").json()[prompt_id]["outputs"] == history["outputs"]


def test_a_client_chosen_prompt_id_and_extra_pnginfo_are_kept(start_service):
    service = start_service()
    prompt_id = str(uuid.uuid4())
    workflow = {"nodes": [], "links": [], "version": 0.4}
    answer = queue_prompt(service, comfy_graph(), "scripted", prompt_id=prompt_id,
                          extra_data={"extra_pnginfo": {"workflow": workflow}, "api_key_comfy_org": "secret"})
    assert answer["prompt_id"] == prompt_id
    service.wait_for_job(prompt_id)
    entry = service.get(f"/history/{prompt_id}").json()[prompt_id]
    assert "api_key_comfy_org" not in entry["prompt"][3]
    image = entry["outputs"]["9"]["images"][0]
    view = service.get("/view", params={"filename": image["filename"], "type": "output"})
    assert json.loads(Image.open(io.BytesIO(view.content)).text["workflow"]) == workflow
    again = service.post("/prompt", {"prompt": comfy_graph(), "prompt_id": prompt_id})
    assert again.status_code == 400


def jobs_created(service):
    """dreamforge_jobs_created_total as /metrics shows it."""
    found = re.search(r"^dreamforge_jobs_created_total (\S+)$", service.get("/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


def test_two_racing_prompts_with_one_prompt_id_give_one_job_and_comfyuis_400(start_service):
    service = start_service()
    before = jobs_created(service)
    prompt_id = str(uuid.uuid4())
    start = threading.Barrier(2)
    answers = []

    def post():
        start.wait()
        answers.append(service.post("/prompt", {"prompt": comfy_graph(), "prompt_id": prompt_id}))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [200, 400], [a.text for a in answers]
    refused = next(answer for answer in answers if answer.status_code == 400).json()
    assert refused["error"]["type"] == "invalid_prompt"
    assert refused["error"]["details"] == f"prompt_id '{prompt_id}' is already used"
    assert service.wait_for_job(prompt_id)["status"] == "succeeded"
    # /prompt jobs count among the jobs created, like /v1 ones.
    service.create_job({"type": "workflow", "workflow": comfy_graph()})
    assert jobs_created(service) == before + 2


def test_validation_errors_have_comfyuis_shape(start_service):
    service = start_service()
    assert service.post("/prompt", {"client_id": "x"}).json() == {
        "error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                  "extra_info": {}},
        "node_errors": {}}
    broken = comfy_graph(ckpt="not-installed.safetensors")
    broken["3"]["inputs"]["steps"] = 0
    response = service.post("/prompt", {"prompt": broken})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["error"]["message"] == "Prompt outputs failed validation"
    errors = {node: [e["type"] for e in entry["errors"]] for node, entry in body["node_errors"].items()}
    assert errors == {"4": ["value_not_in_list"], "3": ["value_smaller_than_min"]}
    assert body["node_errors"]["3"]["class_type"] == "KSampler"
    assert body["node_errors"]["3"]["errors"][0]["extra_info"]["input_name"] == "steps"
    unknown = {"1": {"class_type": "NoSuchNode", "inputs": {}}}
    assert service.post("/prompt", {"prompt": unknown}).json()["error"]["type"] in ("missing_node_type", "invalid_prompt")


def test_interrupt_stops_the_running_prompt_and_queue_delete_removes_a_pending_one(start_service):
    service = start_service()
    client_id = "interrupt-test"
    ws = open_socket(service, client_id)
    ws.recv()
    # Far more steps than a fast machine gets through before the interrupt is noticed (the worker
    # looks every 300 ms): the prompt is still running whatever the speed of the machine.
    running = queue_prompt(service, comfy_graph(steps=1000), client_id)["prompt_id"]
    pending = queue_prompt(service, comfy_graph(seed=9), client_id)["prompt_id"]
    queue = service.get("/queue").json()
    assert [t[1] for t in queue["queue_pending"]] == [pending] or [t[1] for t in queue["queue_pending"]] == [running, pending]
    while True:  # wait until the sampler runs
        frame = ws.recv()
        if isinstance(frame, str) and json.loads(frame)["type"] == "progress":
            break
    assert service.get("/prompt").json() == {"exec_info": {"queue_remaining": 2}}
    assert service.post("/queue", {"delete": [pending]}).status_code == 200
    assert service.post("/interrupt", {"prompt_id": running}).status_code == 200
    messages = messages_until_done(ws, running)
    ws.close()
    assert "execution_interrupted" in [m["type"] for m in messages]
    entry = service.get(f"/history/{running}").json()[running]
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert service.get(f"/v1/jobs/{pending}").json()["status"] == "canceled"
    assert service.get("/queue").json() == {"queue_running": [], "queue_pending": []}


def test_history_lists_and_clears_without_losing_jobs(start_service):
    service = start_service()
    ids = []
    for seed in (1, 2):
        # One after the other: prompts queued within the same millisecond (a fast machine) may run,
        # and so enter the history, in either order.
        ids.append(queue_prompt(service, comfy_graph(seed=seed), "h")["prompt_id"])
        service.wait_for_job(ids[-1])
    assert list(service.get("/history").json()) == ids
    assert list(service.get("/history?max_items=1").json()) == ids[-1:]
    assert service.post("/history", {"delete": [ids[0]]}).status_code == 200
    assert list(service.get("/history").json()) == ids[1:]
    service.post("/history", {"clear": True})
    assert service.get("/history").json() == {}
    assert service.get(f"/v1/jobs/{ids[0]}").json()["status"] == "succeeded"


def test_the_frontends_jobs_api_lists_queue_and_history(start_service):
    service = start_service()
    done = queue_prompt(service, comfy_graph(seed=3), "fe")["prompt_id"]
    service.wait_for_job(done)
    # Long enough that a fast machine cannot finish it before the interrupt below is noticed.
    failed = queue_prompt(service, comfy_graph(seed=4, steps=1000), "fe")["prompt_id"]
    # Deleting cancels it while queued; interrupting after that cancels it once running (in the
    # other order a worker could claim it between the two calls and neither would apply).
    service.post("/queue", {"delete": [failed]})
    service.post("/interrupt", {"prompt_id": failed})
    service.wait_for_job(failed)

    history = service.get("/api/jobs?status=completed,failed,cancelled&limit=10&offset=0").json()
    assert history["pagination"] == {"offset": 0, "limit": 10, "total": 2, "has_more": False}
    by_id = {job["id"]: job for job in history["jobs"]}
    assert [job["id"] for job in history["jobs"]] == [failed, done]  # newest first
    assert by_id[done]["status"] == "completed" and by_id[done]["outputs_count"] == 1
    assert by_id[done]["preview_output"]["nodeId"] == "9" and by_id[done]["preview_output"]["type"] == "output"
    assert isinstance(by_id[done]["create_time"], int)
    assert by_id[failed]["status"] == "cancelled"
    assert service.get("/api/jobs?status=in_progress,pending&limit=200").json()["jobs"] == []

    detail = service.get(f"/api/jobs/{done}").json()
    assert detail["outputs"]["9"]["images"][0]["type"] == "output"
    assert detail["execution_status"]["status_str"] == "success"
    assert detail["workflow"]["prompt"]["3"]["inputs"]["seed"] == 3
    assert service.get("/api/jobs/nope").status_code == 404
    assert service.get("/api/jobs?status=sleeping").status_code == 400
    assert service.get("/api/jobs?limit=0").status_code == 400


def test_the_web_frontend_is_served_at_the_root(start_service):
    service = start_service()
    index = service.get("/")
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
    assert index.headers["Cache-Control"] == "no-cache"
    script = next(part.split('"')[0] for part in index.text.split('src="')[1:] if part.split('"')[0].endswith(".js"))
    js = service.get("/" + script.lstrip("./"))
    assert js.status_code == 200 and js.headers["Content-Type"] == "application/javascript"
    assert service.get("/assets/no-such-file.js").status_code == 404
    escape = service.get("/%2e%2e/%2e%2e/secret.key")
    secret = (service.data_dir / "secret.key").read_text()
    assert escape.status_code in (403, 404) and secret not in escape.text


def test_a_client_announcing_preview_metadata_gets_previews_with_metadata(start_service):
    service = start_service()
    ws = open_socket(service, "fe-client")
    ws.recv()
    ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    flags = json.loads(ws.recv())
    assert flags["type"] == "feature_flags" and flags["data"]["supports_preview_metadata"] is True
    prompt_id = queue_prompt(service, comfy_graph(steps=2), "fe-client")["prompt_id"]
    previews = []
    messages_until_done(ws, prompt_id, previews)
    ws.close()
    assert len(previews) == 2
    frame = previews[0]
    assert int.from_bytes(frame[:4], "big") == 4
    length = int.from_bytes(frame[4:8], "big")
    metadata = json.loads(frame[8:8 + length])
    assert metadata == {"node_id": "3", "prompt_id": prompt_id, "display_node_id": "3",
                        "parent_node_id": None, "real_node_id": "3", "image_type": "image/jpeg"}
    assert Image.open(io.BytesIO(frame[8 + length:])).format == "JPEG"
    # A client that chose no previews gets none.
    ws = open_socket(service, "quiet")
    ws.recv()
    quiet = queue_prompt(service, comfy_graph(steps=2, seed=8), "quiet",
                         extra_data={"preview_method": "none"})["prompt_id"]
    none = []
    messages_until_done(ws, quiet, none)
    ws.close()
    assert none == []


def test_a_failed_prompt_carries_the_error_the_frontends_job_schema_requires(start_service):
    service = start_service()
    failed = queue_prompt(service, failing_graph(service.data_dir), "fe")["prompt_id"]
    assert service.wait_for_job(failed)["status"] == "failed"
    for job in (service.get(f"/api/jobs/{failed}").json(),
                service.get("/api/jobs?status=failed").json()["jobs"][0]):
        assert job["status"] == "failed"
        error = job["execution_error"]
        # The frontend's zod schema of a job's execution_error (a ZodError empties its panels).
        assert error["node_id"] == "10" and error["node_type"] == "LoadImage"
        assert isinstance(error["exception_message"], str) and error["exception_message"]
        assert isinstance(error["exception_type"], str)
        assert isinstance(error["traceback"], list)
        assert all(isinstance(node, str) for node in error["executed"])
    messages = dict(service.get(f"/history/{failed}").json()[failed]["status"]["messages"])
    assert messages["execution_error"]["node_id"] == "10"
