"""ComfyUI's SaveImageWebsocket against `dreamforge serve`: the flow of ComfyUI's
script_examples/websockets_api_example_ws_images.py (websocket-client on /ws?clientId=..., the
prompt POSTed to /api/prompt with urllib, binary frames kept while the node runs, done at
`executing` with node null), metadata frames for clients that ask for them, a large image, and
what a prompt without its client and a /v1 job get. Nothing is ever written to disk."""
import io
import json
import os
import struct
import urllib.request
import uuid

import websocket
from PIL import Image

NODE = "save_image_websocket_node"  # the node id the example script looks for


def example_prompt(batch_size, seed=5):
    """The example script's graph on the tiny model and a small latent."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "cfg": 8, "denoise": 1, "latent_image": ["5", 0], "model": ["4", 0],
            "negative": ["7", 0], "positive": ["6", 0], "sampler_name": "euler",
            "scheduler": "normal", "seed": seed, "steps": 3}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"batch_size": batch_size, "height": 64, "width": 64}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "masterpiece best quality man"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "bad hands"}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        NODE: {"class_type": "SaveImageWebsocket", "inputs": {"images": ["8", 0]}},
    }


def server_address(service):
    return service.base_url.removeprefix("http://")


def connect(service, client_id):
    ws = websocket.WebSocket()
    ws.connect("ws://{}/ws?clientId={}".format(server_address(service), client_id), timeout=120)
    return ws


def queue_prompt(service, client_id, prompt):
    """As the example script sends it: JSON bytes with urllib's default headers."""
    p = {"prompt": prompt, "client_id": client_id}
    data = json.dumps(p).encode("utf-8")
    req = urllib.request.Request("http://{}/api/prompt".format(server_address(service)), data=data)
    return json.loads(urllib.request.urlopen(req, timeout=60).read())


def get_images(ws, service, client_id, prompt):
    """The example script's get_images; the 8-byte headers it strips are kept for the asserts."""
    prompt_id = queue_prompt(service, client_id, prompt)["prompt_id"]
    output_images = {}
    headers = []
    current_node = ""
    while True:
        out = ws.recv()
        if isinstance(out, str):
            message = json.loads(out)
            if message["type"] == "executing":
                data = message["data"]
                if data["prompt_id"] == prompt_id:
                    if data["node"] is None:
                        break  # execution is done
                    current_node = data["node"]
        elif current_node == NODE:
            output_images.setdefault(current_node, []).append(out[8:])
            headers.append(out[:8])
    return prompt_id, output_images, headers


def binary_frames_of_next_run(ws, service, client_id, prompt):
    """Queues `prompt` again and reads raw WebSocket frames until it is done; returns the binary
    ones (text frames are whole messages: the server never fragments)."""
    prompt_id = queue_prompt(service, client_id, prompt)["prompt_id"]
    frames = []
    while True:
        frame = ws.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_TEXT:
            data = json.loads(frame.data)["data"]
            if data.get("prompt_id") == prompt_id and "node" in data and data["node"] is None:
                return frames
        elif frame.opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_CONT):
            frames.append(frame)


def files_under(folder):
    return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]


def expect_nothing_saved(service):
    for folder in ("output", "temp"):
        assert files_under(service.data_dir / folder) == [], folder


def test_the_ws_images_example_gets_one_png_per_batch_image(start_service):
    service = start_service()
    client_id = str(uuid.uuid4())
    ws = connect(service, client_id)
    prompt_id, images, headers = get_images(ws, service, client_id, example_prompt(batch_size=2))
    # The node is never cached (ComfyUI's IS_CHANGED is the time): the same prompt streams again.
    _, again, _ = get_images(ws, service, client_id, example_prompt(batch_size=2))
    ws.close()

    for received in (images, again):
        assert list(received) == [NODE] and len(received[NODE]) == 2
        for png in received[NODE]:
            image = Image.open(io.BytesIO(png))
            image.load()
            assert image.format == "PNG" and image.size == (64, 64) and image.mode == "RGB"
    assert images[NODE][0] != images[NODE][1]  # two images of the batch, in its order
    assert headers == [struct.pack(">II", 1, 2)] * 2  # PREVIEW_IMAGE, PNG
    expect_nothing_saved(service)
    history = service.get(f"/history/{prompt_id}").json()[prompt_id]
    assert history["status"]["status_str"] == "success" and NODE not in history["outputs"]


def test_clients_announcing_preview_metadata_get_png_frames_with_metadata(start_service):
    service = start_service()
    client_id = str(uuid.uuid4())
    ws = connect(service, client_id)
    ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    prompt = example_prompt(batch_size=1)
    prompt_id = queue_prompt(service, client_id, prompt)["prompt_id"]
    frames, progress, current_node = [], [], ""
    while True:
        out = ws.recv()
        if isinstance(out, str):
            message = json.loads(out)
            data = message["data"]
            if message["type"] == "executing" and data.get("prompt_id") == prompt_id:
                if data["node"] is None:
                    break
                current_node = data["node"]
            if message["type"] == "progress" and data["node"] == NODE:
                progress.append((data["value"], data["max"]))
        elif current_node == NODE:
            frames.append(out)
    ws.close()

    assert progress == [(0, 1)]  # ComfyUI's progress bar over the batch, before each image
    assert len(frames) == 1
    event_type, length = struct.unpack(">II", frames[0][:8])
    assert event_type == 4  # PREVIEW_IMAGE_WITH_METADATA
    metadata = json.loads(frames[0][8:8 + length])
    assert metadata == {"node_id": NODE, "prompt_id": prompt_id, "display_node_id": NODE,
                        "parent_node_id": None, "real_node_id": NODE, "image_type": "image/png"}
    assert Image.open(io.BytesIO(frames[0][8 + length:])).size == (64, 64)
    expect_nothing_saved(service)


def test_a_large_image_arrives_whole_and_exact(start_service, tmp_path):
    service = start_service(model=False)
    # Noise does not compress: a PNG of about 20 MB, 26 MB as base64 on the runner's event line.
    pixels = os.urandom(2560 * 2560 * 3)
    source = Image.frombytes("RGB", (2560, 2560), pixels)
    (service.data_dir / "input").mkdir(parents=True, exist_ok=True)
    source.save(service.data_dir / "input" / "noise.png", compress_level=1)
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "noise.png"}},
              NODE: {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}}
    client_id = str(uuid.uuid4())
    ws = connect(service, client_id)
    _, images, headers = get_images(ws, service, client_id, prompt)
    image_frames = binary_frames_of_next_run(ws, service, client_id, prompt)
    ws.close()

    assert headers == [struct.pack(">II", 1, 2)] and len(images[NODE][0]) > 16 * 1024 * 1024
    # One WebSocket frame, as aiohttp sends it: websocket-client joins continuation frames in
    # quadratic time (minutes for this image).
    assert [(frame.fin, frame.opcode, frame.data[8:] == images[NODE][0]) for frame in image_frames] == [
        (1, websocket.ABNF.OPCODE_BINARY, True)]
    received = Image.open(io.BytesIO(images[NODE][0]))
    assert received.size == (2560, 2560) and received.mode == "RGB"
    assert received.tobytes() == pixels
    expect_nothing_saved(service)


def test_without_its_client_the_prompt_still_runs_and_v1_jobs_get_an_event(start_service):
    service = start_service()
    gone = str(uuid.uuid4())
    ws = connect(service, gone)
    ws.close()
    prompt_id = queue_prompt(service, gone, example_prompt(batch_size=1))["prompt_id"]
    assert service.wait_for_job(prompt_id)["status"] == "succeeded"

    # /v1: the record of each streamed image (no pixels); the image itself went to nobody.
    job = service.create_job({"type": "workflow", "workflow": example_prompt(batch_size=2)})
    assert service.wait_for_job(job["id"])["status"] == "succeeded"
    streamed = [data for _, kind, data in service.events(job["id"]) if kind == "streamed_image"]
    assert [(e["data"]["index"], e["data"]["count"]) for e in streamed] == [(0, 2), (1, 2)]
    for event in streamed:
        assert event["data"]["node"] == NODE and event["data"]["bytes"] > 0
        assert (event["data"]["width"], event["data"]["height"]) == (64, 64)
    assert service.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"] == []
    expect_nothing_saved(service)
