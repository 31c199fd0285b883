"""Hostile and malformed requests against `dreamforge serve`: each reproduction of a crash, a
poisoned state or a 5xx once found gets a clear 4xx, and the service stays alive and correct."""
import json
import os
import pathlib
import socket
import subprocess

import pytest
import websocket

from service_support import Service, comfy_graph, generate_body, install_tiny_model

DEEP = 100_000  # nesting depth that overflowed the stack


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    install_tiny_model(data_dir)
    started = Service(data_dir, env={"HF_TOKEN": "hf-secret-token",
                                     "DREAMFORGE_SECRET": "a-signing-secret-of-length"}).start()
    yield started
    started.stop()


def raw_request(service, method, target, body=b"", headers=None):
    """Sends bytes exactly as given (requests would re-encode a path or a body) and returns
    (status, headers, body)."""
    host, port = service.base_url[len("http://"):].split(":")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
             f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, payload = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer_headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), answer_headers, payload


def assert_alive(service):
    assert service.process.poll() is None, "".join(service.output)
    assert service.get("/healthz").status_code == 200


def assert_envelope(body, status):
    envelope = json.loads(body)
    assert envelope["code"] and envelope["message"] and envelope["correlation_id"], envelope
    assert 400 <= status < 500, (status, envelope)
    return envelope


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("method,target", [
    ("GET", "/%ff"), ("GET", "/v1/jobs/%ff"), ("GET", "/v1/jobs?status=%ff"),
    ("GET", "/v1/models/%ff"), ("PUT", "/v1/jobs/%ff"), ("GET", "/api/%ff%fe"),
    ("GET", "/view?filename=%ff"), ("GET", "/history/%ff"), ("DELETE", "/userdata/%ff"),
])
def test_invalid_utf8_in_a_target_is_answered_with_an_envelope(service, method, target):
    status, headers, body = raw_request(service, method, target)
    assert status < 500, (status, body)  # /history/<unknown id> is {} as in ComfyUI
    body.decode("utf-8")  # the answer itself is valid UTF-8
    if headers.get("content-type", "").startswith("application/json"):
        json.loads(body)
    assert_alive(service)


@pytest.mark.parametrize("target", ["/v1/jobs", "/prompt", "/api/prompt", "/settings"])
def test_invalid_utf8_in_a_body_is_a_bad_request(service, target):
    status, _, body = raw_request(service, "POST", target, b"\xb8\x1e", JSON)
    assert status == 400, body
    body.decode("utf-8")  # the message quotes the bytes as U+FFFD
    assert_alive(service)


def test_invalid_utf8_in_a_prompt_graph_is_a_bad_request(service):
    graph = json.dumps({"prompt": comfy_graph(prefix="PREFIX")}).encode()
    status, _, body = raw_request(service, "POST", "/prompt", graph.replace(b"PREFIX", b"\xff"),
                                  JSON)
    assert status == 400, body
    json.loads(body)
    assert_alive(service)


@pytest.mark.parametrize("target,body", [
    ("/prompt", b'{"prompt": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}"),
    ("/v1/jobs", json.dumps(generate_body())[:-1].encode() + b', "extra": ' + b"[" * DEEP +
     b"]" * DEEP + b"}"),
    ("/settings", b'{"x": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    ("/api/settings/Comfy.X", b"[" * DEEP + b"]" * DEEP),
])
def test_deep_nesting_is_refused_at_parse_time(service, target, body):
    status, _, answer = raw_request(service, "POST", target, body, JSON)
    assert status == 400, answer
    assert b"deeper than" in answer  # an envelope, or plain text on ComfyUI's settings routes
    assert_alive(service)


def test_deep_nesting_in_a_websocket_message_is_ignored(service):
    ws = websocket.create_connection(service.base_url.replace("http", "ws") + "/ws", timeout=30)
    ws.recv()  # status
    ws.send("[" * DEEP + "]" * DEEP)
    ws.send_binary(b"\xff\xfe")
    ws.close()
    assert_alive(service)


def non_utf8_upload(name_bytes):
    """A multipart body whose file name is raw bytes (clients send what the disk holds)."""
    from PIL import Image
    import io
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, format="PNG")
    boundary = b"hostileboundary"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="' +
            name_bytes + b'"\r\nContent-Type: image/png\r\n\r\n' + buffer.getvalue() + b"\r\n--" +
            boundary + b"--\r\n")
    return body, {"Content-Type": "multipart/form-data; boundary=" + boundary.decode()}


def test_a_file_name_that_is_not_utf8_is_refused_before_writing(service):
    body, headers = non_utf8_upload(b"caf\xe9.png")
    status, _, answer = raw_request(service, "POST", "/upload/image", body, headers)
    assert status == 400, answer
    assert not any(b"caf" in p.name.encode("utf-8", "surrogateescape")
                   for p in (service.data_dir / "input").iterdir())
    for path in ("/object_info", "/object_info/LoadImage", "/api/userdata?dir=workflows",
                 "/api/v2/userdata"):
        assert service.get(path).status_code == 200, path
    assert_alive(service)


def test_listings_skip_or_escape_names_already_on_disk_that_are_not_utf8(service):
    for folder in (service.data_dir / "input",
                   service.data_dir / "user" / "default" / "workflows"):
        folder.mkdir(parents=True, exist_ok=True)
        with open(os.fsencode(folder) + b"/bad\xff.png", "wb") as file:
            file.write(b"x")
    try:
        info = service.get("/object_info/LoadImage")
        assert info.status_code == 200
        assert not any("bad" in name for name in info.json()["LoadImage"]["input"]["required"]
                       ["image"][0])
        assert service.get("/object_info").status_code == 200
        listing = service.get("/api/userdata?dir=workflows")
        assert listing.status_code == 200, listing.text
        assert service.get("/api/v2/userdata?path=workflows").status_code == 200
        assert service.post("/prompt", {"prompt": comfy_graph()}).status_code == 200
    finally:
        for folder in (service.data_dir / "input",
                       service.data_dir / "user" / "default" / "workflows"):
            os.unlink(os.fsencode(folder) + b"/bad\xff.png")
    assert_alive(service)


def cycle_graph(size):
    graph = {str(i): {"class_type": "ImageScale", "inputs": {
        "image": [str((i + 1) % size), 0], "upscale_method": "nearest-exact", "width": 8,
        "height": 8, "crop": "disabled"}} for i in range(size)}
    graph["save"] = {"class_type": "SaveImage", "inputs": {"images": ["0", 0],
                                                           "filename_prefix": "c"}}
    return graph


def test_a_cycle_is_reported_once(service):
    response = service.post("/prompt", {"prompt": cycle_graph(2000)})
    assert response.status_code == 400
    assert len(response.content) < 200_000
    cycle_errors = [(node, error) for node, entry in response.json()["node_errors"].items()
                    for error in entry["errors"] if error["type"] == "dependency_cycle"]
    assert len(cycle_errors) == 1, cycle_errors[:3]
    assert len(cycle_errors[0][1]["extra_info"]["cycle_nodes"]) == 2000
    assert_alive(service)


def test_a_long_chain_is_validated_without_recursion(service):
    size = 4000
    graph = {str(i): {"class_type": "ImageScale", "inputs": {
        "image": [str(i + 1), 0], "upscale_method": "nearest-exact", "width": 8, "height": 8,
        "crop": "disabled"}} for i in range(size)}
    graph[str(size)] = {"class_type": "LoadImage", "inputs": {"image": "missing.png"}}
    graph["save"] = {"class_type": "SaveImage", "inputs": {"images": ["0", 0],
                                                           "filename_prefix": "c"}}
    response = service.post("/prompt", {"prompt": graph})
    assert response.status_code == 400, response.text[:500]
    assert_alive(service)


def test_a_huge_graph_is_refused_with_comfyuis_shape(service):
    graph = {str(i): {"class_type": "EmptyLatentImage", "inputs": {}} for i in range(100_000)}
    response = service.post("/prompt", {"prompt": graph})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_prompt" and "at most" in error["message"], error
    assert_alive(service)


@pytest.mark.parametrize("field", ["seed", "steps", "guidance", "width"])
def test_overflowing_numbers_are_refused(service, field):
    body = json.dumps(generate_body()).encode()[:-1] + f', "{field}": 1e400}}'.encode()
    status, _, answer = raw_request(service, "POST", "/v1/jobs", body, JSON)
    assert status == 400, answer
    digits = json.dumps(generate_body()).encode()[:-1] + f', "{field}": {10**400}}}'.encode()
    status, _, answer = raw_request(service, "POST", "/v1/jobs", digits, JSON)
    assert 400 <= status < 500, answer
    assert_alive(service)


def test_overflowing_numbers_in_prompt_inputs_are_refused(service):
    graph = json.dumps({"prompt": comfy_graph(seed=123456789)}).encode()
    for replacement in (b"1e400", str(10**400).encode(), b"-1e400"):
        status, _, answer = raw_request(service, "POST", "/prompt",
                                        graph.replace(b"123456789", replacement), JSON)
        assert status == 400, answer
    assert_alive(service)


def test_front_takes_any_truthy_value_as_comfyui_does(service):
    # ComfyUI numbers prompts from 0 and negates the number of one sent to the front, so only a
    # prompt after the first shows the front's sign.
    assert service.post("/prompt", {"prompt": comfy_graph()}).status_code == 200
    response = service.post("/prompt", {"prompt": comfy_graph(), "front": "yes"})
    assert response.status_code == 200, response.text
    assert response.json()["number"] < 0
    for body in ({"clear": "yes"}, {"delete": "not a list"}, [1, 2]):
        assert service.post("/queue", body).status_code in (200, 400)
    assert service.post("/interrupt", {"prompt_id": 5}).status_code == 200
    assert service.post("/free", {"unload_models": "yes"}).status_code == 200
    assert_alive(service)


@pytest.mark.parametrize("length", [300, 1000, 5000])
def test_long_file_names_are_refused(service, length):
    name = "a" * length + ".png"
    assert service.get("/view", params={"filename": name}).status_code == 400
    assert service.get("/view", params={"filename": name, "subfolder": "b" * length}
                       ).status_code == 400
    from test_comfy_files import png_bytes, upload
    assert upload(service, name, png_bytes()).status_code == 400
    assert upload(service, "ok.png", png_bytes(), subfolder="s" * length).status_code == 400
    assert_alive(service)


def test_view_refuses_links_out_of_its_folders_and_nul_in_names(service):
    output = service.data_dir / "output"
    output.mkdir(parents=True, exist_ok=True)
    (output / "evil.png").symlink_to("/etc/passwd")
    from test_comfy_files import png_bytes
    (output / "ok.png").write_bytes(png_bytes())
    try:
        assert service.get("/view", params={"filename": "evil.png"}).status_code == 403
        status, _, _ = raw_request(service, "GET", "/view?filename=ok.png%00.txt&type=output")
        assert status == 400
        assert service.get("/view", params={"filename": "ok.png"}).status_code == 200
    finally:
        (output / "evil.png").unlink()
    assert_alive(service)


def test_text_and_prefixes_that_cannot_be_saved_fail_validation(service):
    for graph in (comfy_graph(prefix="p" * 300), comfy_graph(prefix="ok/" + "d" * 300 + "/x")):
        response = service.post("/prompt", {"prompt": graph})
        assert response.status_code == 400, response.text
        assert response.json()["node_errors"]["9"]["errors"][0]["type"] == \
            "custom_validation_failed"
    with_nul = comfy_graph()
    with_nul["6"]["inputs"]["text"] = "a red\u0000boat"
    response = service.post("/prompt", {"prompt": with_nul})
    assert response.status_code == 400, response.text
    assert response.json()["node_errors"]["6"]["errors"][0]["type"] == "invalid_input_type"
    assert_alive(service)


def test_an_emoji_prefix_saves_an_image(service):
    response = service.post("/prompt", {"prompt": comfy_graph(prefix="🎨 art/ünïcode 🖼")})
    assert response.status_code == 200, response.text
    job = service.wait_for_job(response.json()["prompt_id"])
    assert job["status"] == "succeeded", job
    assert list((service.data_dir / "output" / "🎨 art").glob("ünïcode 🖼_*.png"))


EVIL = {"Origin": "http://evil.example"}


def test_cross_site_requests_are_refused(service):
    status, _, body = raw_request(service, "POST", "/v1/jobs",
                                  json.dumps(generate_body()).encode(),
                                  {"Content-Type": "text/plain", **EVIL})
    assert status == 403, body
    for path, body in (("/prompt", {"prompt": comfy_graph()}), ("/interrupt", {}),
                       ("/queue", {"clear": True}), ("/api/userdata/x.json", {}),
                       ("/settings", {"a": 1})):
        response = service.post(path, body, headers=EVIL)
        assert response.status_code == 403, (path, response.text)
    from test_comfy_files import png_bytes
    response = service.post("/upload/image", files={"image": ("x.png", png_bytes(), "image/png")},
                            headers=EVIL)
    assert response.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(service.base_url.replace("http", "ws") + "/ws", timeout=30,
                                    origin="http://evil.example")
    assert refused.value.status_code == 403
    assert_alive(service)


def test_json_routes_want_a_json_content_type(service):
    body = json.dumps(generate_body()).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        status, _, answer = raw_request(service, "POST", "/v1/jobs", body,
                                        {"Content-Type": content_type})
        assert status == 415, answer
        assert json.loads(answer)["code"] == "unsupported_media_type"
    # ComfyUI's web frontend posts settings as text/plain from its own page: accepted.
    own_page = {"Origin": service.base_url, "Content-Type": "text/plain;charset=UTF-8"}
    status, _, answer = raw_request(service, "POST", "/api/settings/Comfy.X", b'"v"', own_page)
    assert status == 200, answer
    # ComfyUI's example scripts post JSON without a Content-Type: still accepted.
    status, _, answer = raw_request(service, "POST", "/prompt",
                                    json.dumps({"prompt": comfy_graph()}).encode())
    assert status == 200, answer


def test_same_origin_requests_are_served(service):
    response = service.post("/prompt", {"prompt": comfy_graph()},
                            headers={"Origin": service.base_url})
    assert response.status_code == 200, response.text
    ws = websocket.create_connection(service.base_url.replace("http", "ws") + "/ws", timeout=30,
                                     origin=service.base_url)
    assert json.loads(ws.recv())["type"] == "status"
    ws.close()


def test_a_foreign_host_name_is_refused(service):
    status, _, body = raw_request(service, "GET", "/v1/jobs", headers={"Host": "evil.example"})
    assert status in (400, 403), body  # a second Host header is malformed HTTP, or refused
    response = service.get("/v1/jobs", headers={"Host": "evil.example"})
    assert response.status_code == 403
    assert "--allowed-hosts" in response.json()["message"]
    assert service.get("/v1/jobs", headers={"Host": "localhost"}).status_code == 200


def test_allowed_hosts_admit_a_reverse_proxys_name(tmp_path):
    data_dir = tmp_path / "data"
    proxied = Service(data_dir, "--allowed-hosts", "images.example.com").start()
    try:
        headers = {"Host": "images.example.com", "Origin": "https://images.example.com"}
        assert proxied.get("/v1/jobs", headers=headers).status_code == 200
        assert proxied.get("/v1/jobs", headers={"Host": "evil.example"}).status_code == 403
    finally:
        proxied.stop()


def runner_pids(service):
    found = subprocess.run(["pgrep", "-P", str(service.process.pid)], capture_output=True,
                           text=True).stdout.split()
    return [int(pid) for pid in found]


def test_runners_inherit_no_sockets_and_no_secrets(service):
    job = service.create_job(generate_body(), headers={"Idempotency-Key": "runner-inherit"})
    assert service.wait_for_job(job["id"])["status"] == "succeeded"
    pids = runner_pids(service)
    assert pids, "no runner process"
    for pid in pids:
        environment = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0] for entry in environment}
        assert b"HF_TOKEN" not in names and b"DREAMFORGE_SECRET" not in names, names
        descriptors = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert not [d for d in descriptors if d.startswith("socket:")], descriptors


def test_server_errors_are_logged_with_their_correlation_id(tmp_path):
    data_dir = tmp_path / "data"
    broken = Service(data_dir, "--runner", str(tmp_path / "no-such-runner")).start()
    try:
        response = broken.get("/readyz", headers={"X-Request-ID": "probe-4711"})
        assert response.status_code == 503
    finally:
        broken.stop()
    logged = [line for line in broken.output if "probe-4711" in line]
    assert logged and "503" in logged[0], "".join(broken.output)


def test_the_service_still_generates_after_all_this(service):
    job = service.create_job(generate_body(seed=99), headers={"Idempotency-Key": "after-all"})
    assert service.wait_for_job(job["id"])["status"] == "succeeded"
    assert_alive(service)


def test_an_extra_pnginfo_that_is_not_an_object_is_refused(service):
    for value in ("x", None, [], 5):
        response = service.post("/prompt", {"prompt": comfy_graph(),
                                            "extra_data": {"extra_pnginfo": value}})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_prompt"
    assert service.get("/api/jobs").status_code == 200
    assert_alive(service)


def test_a_settings_file_written_as_user_data_does_not_break_settings(service):
    for body in ("true", "[]", "{", ""):
        written = service.post("/api/userdata/comfy.settings.json?overwrite=true", data=body)
        assert written.status_code == 200, written.text
        assert service.get("/api/settings").json() == {}
        assert service.get("/api/settings/Comfy.X").status_code == 200
    assert service.post("/api/settings/Comfy.X", "kept").status_code == 200
    assert service.get("/api/settings/Comfy.X").json() == "kept"
    user_dir = service.data_dir / "user" / "default"
    assert (user_dir / "comfy.settings.json.invalid").read_text() == ""  # the last one, kept
    assert_alive(service)


def test_an_undeclared_input_linking_to_a_missing_output_fails_validation(service):
    graph = comfy_graph()
    graph["3"]["inputs"]["image"] = ["9", 0]  # KSampler takes no image; SaveImage has no output
    response = service.post("/prompt", {"prompt": graph})
    assert response.status_code == 400, response.text
    assert response.json()["node_errors"]["3"]["errors"][0]["type"] == "bad_linked_input"
    graph["3"]["inputs"]["image"] = [1, 2, 3]  # not a link to ComfyUI: an ignored value
    response = service.post("/prompt", {"prompt": graph})
    assert response.status_code == 200, response.text
    assert service.wait_for_job(response.json()["prompt_id"])["status"] == "succeeded"
