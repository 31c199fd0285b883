"""The ComfyUI routes of the mask editor, the model library and the Logs panel against
`dreamforge serve`: /upload/mask, /view_metadata, /experiment/models/preview, /node_replacements,
POST /users and /internal/logs (text, raw and live WebSocket messages)."""
import io
import json
import signal
import struct
import uuid

import pytest
import websocket
from PIL import Image, PngImagePlugin


def png_bytes(mode, size, color, text=None):
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def safetensors_bytes(metadata=None):
    """A one-tensor safetensors file with `metadata` in its header."""
    header = {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\0\0\0\0"


def upload_mask(service, mask, original_ref, prefix="/api", **fields):
    fields = {"type": "input", "subfolder": "clipspace", **fields}
    if original_ref is not None:
        fields["original_ref"] = json.dumps(original_ref)
    return service.post(f"{prefix}/upload/mask", files={"image": ("clipspace-mask-1.png", mask,
                                                                  "image/png")}, data=fields)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_mask_upload_stores_the_original_with_the_masks_alpha(start_service, data_dir, prefix):
    (data_dir / "output" / "shots").mkdir(parents=True)
    original = png_bytes("RGB", (8, 6), (200, 100, 50), {"prompt": '{"3": {}}', "workflow": "{}"})
    (data_dir / "output" / "shots" / "ComfyUI_00001_.png").write_bytes(original)
    service = start_service()
    mask = png_bytes("RGBA", (4, 3), (0, 0, 0, 128))
    ref = {"filename": "ComfyUI_00001_.png", "subfolder": "shots", "type": "output"}
    answer = upload_mask(service, mask, ref, prefix)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"name": "clipspace-mask-1.png", "subfolder": "clipspace",
                             "type": "input"}

    stored = Image.open(data_dir / "input" / "clipspace" / "clipspace-mask-1.png")
    assert stored.format == "PNG" and stored.mode == "RGBA" and stored.size == (8, 6)
    assert set(stored.getdata()) == {(200, 100, 50, 128)}
    assert stored.text == {"prompt": '{"3": {}}', "workflow": "{}"}
    view = service.get(f"{prefix}/view", params={"filename": "clipspace-mask-1.png",
                                                 "subfolder": "clipspace", "type": "input"})
    assert view.status_code == 200 and Image.open(io.BytesIO(view.content)).size == (8, 6)

    other_mask = png_bytes("RGBA", (8, 6), (0, 0, 0, 7))
    renamed = upload_mask(service, other_mask, ref, prefix).json()["name"]
    assert renamed == "clipspace-mask-1 (1).png"


def test_mask_upload_errors(start_service, data_dir):
    (data_dir / "output").mkdir(parents=True)
    (data_dir / "output" / "a.png").write_bytes(png_bytes("RGB", (2, 2), (1, 2, 3)))
    service = start_service()
    mask = png_bytes("RGBA", (2, 2), (0, 0, 0, 0))
    for ref, status in [({"filename": "missing.png"}, 404),
                        ({"filename": "../output/a.png", "type": "input"}, 400),
                        ({"filename": "a.png", "subfolder": "../input"}, 403),
                        (None, 400),
                        ({"filename": "a.png"}, 200)]:
        assert upload_mask(service, mask, ref).status_code == status, ref
    assert upload_mask(service, b"not an image", {"filename": "a.png"}).status_code == 400


def test_view_metadata_of_safetensors_models(start_service, data_dir):
    checkpoints = data_dir / "models" / "checkpoints"
    (checkpoints / "loras").mkdir(parents=True)
    (checkpoints / "loras" / "styled.safetensors").write_bytes(
        safetensors_bytes({"ss_base_model": "sd15", "modelspec.title": "Styled"}))
    (checkpoints / "bare.safetensors").write_bytes(safetensors_bytes())
    service = start_service()
    for prefix in ("", "/api"):
        answer = service.get(f"{prefix}/view_metadata/checkpoints",
                             params={"filename": "loras/styled.safetensors"})
        assert answer.status_code == 200
        assert answer.json() == {"ss_base_model": "sd15", "modelspec.title": "Styled"}
    for folder, filename in [("checkpoints", "bare.safetensors"), ("checkpoints", "tiny"),
                             ("checkpoints", "nope.safetensors"), ("loras", "styled.safetensors"),
                             ("checkpoints", "../../../etc/passwd.safetensors")]:
        answer = service.get(f"/api/view_metadata/{folder}", params={"filename": filename})
        assert answer.status_code == 404, (folder, filename)
    assert service.get("/api/view_metadata/checkpoints").status_code == 404


def test_model_previews_are_served_as_webp(start_service, data_dir):
    checkpoints = data_dir / "models" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "a.safetensors").write_bytes(safetensors_bytes())
    (checkpoints / "a.preview.png").write_bytes(png_bytes("RGB", (5, 3), (9, 9, 9)))
    service = start_service()
    for prefix in ("", "/api"):
        preview = service.get(f"{prefix}/experiment/models/preview/checkpoints/0/a.safetensors")
        assert preview.status_code == 200
        assert preview.headers["Content-Type"] == "image/webp"
        image = Image.open(io.BytesIO(preview.content))
        assert image.format == "WEBP" and image.size == (5, 3)
    base = "/api/experiment/models/preview"
    assert service.get(f"{base}/checkpoints/0/tiny").status_code == 404
    assert service.get(f"{base}/checkpoints/1/a.safetensors").status_code == 404
    assert service.get(f"{base}/checkpoints/x/a.safetensors").status_code == 400
    assert service.get(f"{base}/loras/0/a.safetensors").status_code == 404


def test_no_node_replacements_and_no_second_user(start_service):
    service = start_service(model=False)
    for prefix in ("", "/api"):
        assert service.get(f"{prefix}/node_replacements").json() == {}
        duplicate = service.post(f"{prefix}/users", {"username": "default"})
        assert duplicate.status_code == 400 and duplicate.json() == {"error": "Duplicate username."}
        refused = service.post(f"{prefix}/users", {"username": "alice"})
        assert refused.status_code == 400 and "single user" in refused.json()["error"]
    assert service.get("/api/users").json() == {"storage": "server", "migrated": True}


def test_the_logs_panel_reads_and_follows_the_service_log(start_service):
    service = start_service(model=False)
    text = service.get("/internal/logs")
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("application/json")
    assert f"serving {service.base_url}" in text.json()
    raw = service.get("/internal/logs/raw").json()
    assert any(f"serving {service.base_url}" in entry["m"] for entry in raw["entries"])
    assert all(entry["m"].endswith("\n") and "T" in entry["t"] for entry in raw["entries"])
    assert raw["size"]["cols"] > 0 and raw["size"]["rows"] > 0
    assert service.get("/api/internal/logs").status_code == 404

    client_id = uuid.uuid4().hex
    ws = websocket.WebSocket()
    ws.connect(service.base_url.replace("http://", "ws://") + f"/ws?clientId={client_id}",
               timeout=30)
    assert json.loads(ws.recv())["type"] == "status"
    subscribed = service.http.patch(service.url("/internal/logs/subscribe"),
                                    json={"clientId": client_id, "enabled": True}, timeout=30)
    assert subscribed.status_code == 200 and subscribed.text == ""
    bad = service.http.patch(service.url("/internal/logs/subscribe"), json={"enabled": True},
                             timeout=30)
    assert bad.status_code == 400

    service.process.send_signal(signal.SIGTERM)  # "dreamforge: stopping" reaches the socket first
    logs = []
    try:
        while True:
            frame = ws.recv()
            if not frame:
                break
            message = json.loads(frame)
            if message["type"] == "logs":
                logs.append(message["data"])
    except websocket.WebSocketConnectionClosedException:
        pass
    ws.close()
    lines = [entry["m"] for data in logs for entry in data["entries"]]
    assert any("stopping" in line for line in lines), lines
