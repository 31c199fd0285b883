"""ComfyUI backend benchmark: the time Dream Forge adds per job when a real ComfyUI server runs the
job as its backend, against posting the same workflow to that ComfyUI server directly.

The bench writes a small custom node pack into ComfyUI's custom_nodes folder (one node,
DreamForgeBenchInvert, that Dream Forge does not have), starts ComfyUI on the CPU, then starts a
`dreamforge serve --workers 0` front whose <data>/config/backends.yaml names that ComfyUI server as
its only backend. The workflow is EmptyImage -> DreamForgeBenchInvert -> SaveImage (no model: the
job's own work is a few milliseconds, so what is measured is the path, not the engine). Each path
first runs it once (warm-up, not counted); then the measured jobs alternate between the two paths,
each job with its own shade so that ComfyUI's cache never answers for it. A job's time is from
sending POST /prompt to its `executing` message with node null (the prompt is done) at the
client's /ws socket, on one client clock. Afterwards the last job's image is fetched back through
each path (/history, /view) and checked to be the inverted shade.

Usage: .venv/bin/python bench/comfy_backend_bench.py --comfyui DIR --comfyui-python PATH
       [--jobs 50] [--size 64] [--workdir DIR]
"""
import argparse
import io
import json
import pathlib
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from PIL import Image

from comfyui_api_bench import ComfyUIProcess
from comfyui_ws_client import Loop, PromptPoster, WebSocketClient
from job_service_bench import BIN, ServiceProcess, machine_description, percentile, progress

NODE = "DreamForgeBenchInvert"
NODE_PACK = f'''"""Dream Forge's benchmark node pack: {NODE} inverts an IMAGE."""


class {NODE}:
    CATEGORY = "image/dreamforge_bench"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "invert"

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"image": ("IMAGE",)}}}}

    def invert(self, image):
        return (1.0 - image,)


NODE_CLASS_MAPPINGS = {{"{NODE}": {NODE}}}
NODE_DISPLAY_NAME_MAPPINGS = {{"{NODE}": "Invert (Dream Forge bench)"}}
'''
PATHS = ("ComfyUI directly", "through Dream Forge")
JOB_TIMEOUT = 120


def write_node_pack(base_dir):
    pack = base_dir / "custom_nodes" / "dreamforge_bench_nodes"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "__init__.py").write_text(NODE_PACK)


def workflow(shade, size, prefix):
    """The API graph: a grey image of `shade` (0..255), inverted by the custom node, saved."""
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": size, "height": size, "batch_size": 1,
                         "color": shade * 0x010101}},
        "2": {"class_type": NODE, "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def start_front(workdir, backend_address):
    """`dreamforge serve` with no native worker and the ComfyUI server as its one backend."""
    data_dir = workdir / "dreamforge"
    (data_dir / "config").mkdir(parents=True, exist_ok=True)
    (data_dir / "config" / "backends.yaml").write_text(
        "backends:\n"
        "  - name: comfyui\n"
        f"    url: http://{backend_address[0]}:{backend_address[1]}\n")
    return ServiceProcess(PATHS[1], [str(BIN / "dreamforge"), "serve", "--data-dir",
                                     str(data_dir), "--port", "0", "--workers", "0"])


def wait_for_node(address):
    """Waits until Dream Forge's /object_info offers the custom node: it has read its backend."""
    deadline = time.time() + 60
    while NODE not in get_json(address, "/object_info"):
        if time.time() > deadline:
            raise SystemExit(f"Dream Forge's /object_info did not offer {NODE} within 60 s")
        time.sleep(0.2)


def get_json(address, path):
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}{path}", timeout=30) as reply:
        return json.load(reply)


class Client:
    """One /ws socket and one keep-alive POST /prompt connection to a server."""

    def __init__(self, name, address):
        self.name = name
        self.address = address
        self.socket = WebSocketClient(address, f"bench-{time.time_ns()}")
        self.poster = PromptPoster(address)
        self.loop = Loop(self.poster, [self.socket])
        self.loop.run_until(lambda: self.socket.messages, 30, f"{name}: the /ws greeting")

    def run(self, graph):
        """Posts the graph and waits until it is done: (prompt id, seconds from the POST to its
        answer, to the prompt's execution_start and to its done message)."""
        since = len(self.socket.messages)
        self.poster.send({"prompt": graph, "client_id": self.socket.client_id})
        self.loop.run_until(lambda: self.poster.answer is not None, JOB_TIMEOUT,
                            f"{self.name}: the POST /prompt answer")
        answered_at, status, body = self.poster.answer
        if status != 200:
            raise SystemExit(f"{self.name}: POST /prompt answered {status}: {body}")
        prompt_id = body["prompt_id"]
        self.loop.run_until(lambda: self._end(prompt_id, since) is not None, JOB_TIMEOUT,
                            f"{self.name}: the end of prompt {prompt_id}")
        ended_at, failure = self._end(prompt_id, since)
        if failure is not None:
            raise SystemExit(f"{self.name}: prompt {prompt_id} failed: {json.dumps(failure)}")
        started_at = next(at for at, message in self.socket.messages[since:]
                          if message and message["type"] == "execution_start"
                          and message["data"].get("prompt_id") == prompt_id)
        sent_at = self.poster.sent_at
        return prompt_id, answered_at - sent_at, started_at - sent_at, ended_at - sent_at

    def _end(self, prompt_id, since):
        """(arrival time, None) once the prompt is done, (arrival time, data) if it failed."""
        for at, message in self.socket.messages[since:]:
            if not message or message["data"].get("prompt_id") != prompt_id:
                continue
            if message["type"] == "executing" and message["data"].get("node") is None:
                return at, None
            if message["type"] in ("execution_error", "execution_interrupted"):
                return at, message["data"]
        return None

    def fetch_image(self, prompt_id):
        """The prompt's first saved image, through this server's /history and /view."""
        outputs = get_json(self.address, f"/history/{prompt_id}")[prompt_id]["outputs"]
        image = next(image for output in outputs.values() for image in output.get("images", []))
        query = urllib.parse.urlencode({key: image[key]
                                        for key in ("filename", "subfolder", "type")})
        url = f"http://{self.address[0]}:{self.address[1]}/view?{query}"
        with urllib.request.urlopen(url, timeout=30) as reply:
            return Image.open(io.BytesIO(reply.read())).convert("RGB")

    def close(self):
        self.loop.close()
        self.socket.close()
        self.poster.close()


def check_image(client, prompt_id, shade, size):
    """The prompt's image is size x size of 255 - shade (SaveImage truncates 255 * value, so a
    float32 value just under it gives one less)."""
    image = client.fetch_image(prompt_id)
    expected = 255 - shade
    values = set(image.tobytes())
    if image.size != (size, size) or len(values) != 1 or not 0 <= expected - min(values) <= 1:
        raise SystemExit(f"{client.name}: the image of {prompt_id} is {image.size} with values "
                         f"{sorted(values)[:8]}, not {size}x{size} of {expected}")
    return f"{client.name}: {size}x{size}, every pixel {min(values)} (255 - {shade} = {expected})"


def summary(seconds):
    return (statistics.median(seconds) * 1000, percentile(seconds, 0.9) * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comfyui", type=pathlib.Path, required=True,
                        help="a ComfyUI source folder (its main.py)")
    parser.add_argument("--comfyui-python", required=True, help="the python that runs ComfyUI")
    parser.add_argument("--jobs", type=int, default=50, help="measured jobs per path")
    parser.add_argument("--size", type=int, default=64, help="the image's width and height")
    parser.add_argument("--workdir", type=pathlib.Path, help="keep the servers' folders here")
    args = parser.parse_args()
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="comfy-backend-bench-"))
    comfy_dir = workdir / "comfyui"
    write_node_pack(comfy_dir)

    progress("starting ComfyUI")
    comfyui = ComfyUIProcess(args.comfyui.resolve(), args.comfyui_python, comfy_dir)
    front = None
    clients = []
    try:
        if NODE not in get_json(comfyui.address, f"/object_info/{NODE}"):
            raise SystemExit(f"ComfyUI did not load the node pack; see {comfyui.log}")
        system = get_json(comfyui.address, "/system_stats")["system"]
        progress("starting Dream Forge with ComfyUI as its backend")
        front = start_front(workdir, comfyui.address)
        wait_for_node(front.address)
        clients = [Client(PATHS[0], comfyui.address), Client(PATHS[1], front.address)]

        for index, client in enumerate(clients):
            progress(f"warm-up: {client.name}")
            client.run(workflow(200 + index, args.size, "bench_warmup"))
        times = {path: [] for path in PATHS}
        answers = {path: [] for path in PATHS}
        starts = {path: [] for path in PATHS}
        last = {}
        for job in range(args.jobs):
            # Alternate which path goes first, so that neither always follows the other.
            for client in (clients if job % 2 == 0 else clients[::-1]):
                shade = (2 * job + PATHS.index(client.name)) % 200
                prompt_id, answered, started, ended = client.run(
                    workflow(shade, args.size, "bench"))
                times[client.name].append(ended)
                answers[client.name].append(answered)
                starts[client.name].append(started)
                last[client.name] = (prompt_id, shade)
        checks = [check_image(client, *last[client.name], args.size) for client in clients]
    finally:
        for client in clients:
            client.close()
        if front is not None:
            front.stop()
        comfyui.stop()

    direct, through = (summary(times[path]) for path in PATHS)
    paired = [t - d for t, d in zip(times[PATHS[1]], times[PATHS[0]])]
    print(f"machine: {machine_description()}")
    print(f"ComfyUI {system.get('comfyui_version')}, Python {system.get('python_version')}, "
          f"torch {system.get('pytorch_version')}; Dream Forge binaries: {BIN}")
    print(f"{args.jobs} jobs per path, {args.size}x{args.size}, after one warm-up job each")
    print("| per job (ms) | median | p90 | POST → answer (median) | POST → execution_start "
          "(median) |")
    print("|---|---|---|---|---|")
    for path, (median, p90) in zip(PATHS, (direct, through)):
        answer, start = (statistics.median(values[path]) * 1000 for values in (answers, starts))
        print(f"| {path} | {median:.2f} | {p90:.2f} | {answer:.2f} | {start:.2f} |")
    print(f"| Dream Forge's overhead (difference of medians) | {through[0] - direct[0]:.2f} | "
          f"{through[1] - direct[1]:.2f} | | |")
    print(f"| Dream Forge's overhead (median / p90 of the paired differences) | "
          f"{statistics.median(paired) * 1000:.2f} | {percentile(paired, 0.9) * 1000:.2f} | | |")
    print(f"ratio of medians (through Dream Forge / directly): {through[0] / direct[0]:.2f}")
    for line in checks:
        print(f"image back: {line}")
    print(f"work directory: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
