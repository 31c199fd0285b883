"""ComfyUI API benchmark: `dreamforge serve` against a real ComfyUI server, both on loopback, on the
same machine, with the same API graph and the same checkpoint, measured in the same run.

1. POST /prompt accept latency: the round trip of one POST on a keep-alive connection, with 1 and
   with --clients WebSocket clients connected, while each server's worker is busy sampling a long
   prompt (so the measured prompts only queue; they are cleared afterwards).
2. Status broadcast latency: from sending each POST to the `status` message announcing the new
   queue size arriving at each connected /ws client (1 and --clients clients).
3. POST -> execution_start on an idle worker (left idle for --pause s after the previous prompt)
   with a warm model, at the prompt's own client, and the spacing of its `progress` messages (one
   per sampler step: the engine's speed).

The checkpoint is a random-weight SD 1.5 (bench/comfyui_make_checkpoint.py), loaded by both from
one single-file safetensors. Both samplers run with --threads torch threads.

Usage: .venv/bin/python bench/comfyui_api_bench.py --comfyui DIR --comfyui-python PATH
       [--checkpoint FILE] [--prompts 200] [--clients 50] [--start-samples 5] [--steps 2]
       [--pause 1] [--threads 1] [--workdir DIR]
"""
import argparse
import json
import os
import pathlib
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from comfyui_ws_client import Loop, PromptPoster, WebSocketClient
from job_service_bench import (BIN, ROOT, ServiceProcess, machine_description, percentile, progress,
                               ratio)

sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from service_support import comfy_graph  # noqa: E402  (the e2e tests' SD1 txt2img graph)

SERVICES = ("Dream Forge", "ComfyUI")
BUSY_STEPS = 10000


class ComfyUIProcess(ServiceProcess):
    """ComfyUI's main.py on a free loopback port, ready once /system_stats answers."""

    def __init__(self, comfyui, python, base_dir):
        self.name = SERVICES[1]
        for folder in ("custom_nodes", "input", "output", "temp", "user"):
            (base_dir / folder).mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.address = ("127.0.0.1", probe.getsockname()[1])
        self.log = base_dir / "comfyui.log"
        argv = [python, str(comfyui / "main.py"), "--cpu", "--listen", self.address[0], "--port",
                str(self.address[1]), "--disable-auto-launch", "--base-directory", str(base_dir),
                "--database-url", f"sqlite:///{base_dir / 'user' / 'comfyui.db'}",
                "--preview-method", "latent2rgb"]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=comfyui)
        deadline = time.time() + 180
        while time.time() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(f"http://{self.address[0]}:{self.address[1]}/system_stats",
                                       timeout=5)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise SystemExit("ComfyUI did not start:\n" + self.log.read_text()[-3000:])


def install_checkpoint(checkpoint, checkpoints_dir):
    """A hard link (or a copy across file systems) of the checkpoint in a models folder. Not a
    symbolic link: Dream Forge's runner lists a linked checkpoint under its target's path."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    target = checkpoints_dir / checkpoint.name
    if target.exists():
        return
    try:
        os.link(checkpoint, target)
    except OSError:
        shutil.copyfile(checkpoint, target)


def start_dreamforge(workdir, checkpoint, comfyui):
    data_dir = workdir / "dreamforge"
    install_checkpoint(checkpoint, data_dir / "models" / "checkpoints")
    # A single file carries no tokenizer: use the same CLIP vocabulary that ComfyUI ships.
    os.environ["DREAMFORGE_CLIP_VOCAB_DIR"] = str(comfyui / "comfy" / "sd1_tokenizer")
    return ServiceProcess(SERVICES[0], [str(BIN / "dreamforge"), "serve", "--data-dir",
                                        str(data_dir), "--port", "0"])


def start_comfyui(workdir, checkpoint, comfyui, python):
    base_dir = workdir / "comfyui"
    install_checkpoint(checkpoint, base_dir / "models" / "checkpoints")
    return ComfyUIProcess(comfyui, python, base_dir)


def control(service, path, body):
    """A POST outside the measured windows (queue clearing, interrupts)."""
    request = urllib.request.Request(f"http://{service.address[0]}:{service.address[1]}{path}",
                                     json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()


class Session:
    """A POST connection and `count` /ws clients on one server, in one selector loop."""

    def __init__(self, service, count, checkpoint_name):
        self.service = service
        self.checkpoint_name = checkpoint_name
        self.clients = [WebSocketClient(service.address, f"bench-{i}-{time.time_ns()}")
                        for i in range(count)]
        self.poster = PromptPoster(service.address)
        self.loop = Loop(self.poster, self.clients)
        self.owner = self.clients[0]  # the prompts' client_id: execution messages go here
        self.loop.run_until(lambda: all(c.messages for c in self.clients), 30, "/ws greetings")

    def post(self, seed, steps):
        """Sends a prompt and waits for the answer: (send time, answer time, prompt id)."""
        graph = comfy_graph(ckpt=self.checkpoint_name, seed=seed, steps=steps, prefix="bench")
        self.poster.send({"prompt": graph, "client_id": self.owner.client_id})
        self.loop.run_until(lambda: self.poster.answer is not None, 60, "the POST /prompt answer")
        answered_at, status, body = self.poster.answer
        if status != 200:
            raise SystemExit(f"{self.service.name}: POST /prompt answered {status}: {body}")
        return self.poster.sent_at, answered_at, body["prompt_id"]

    def owner_message(self, kind, prompt_id, since, node=False):
        """Arrival time of the owner's first `kind` message for the prompt after index `since`
        (with node=False any node; else only that node), or None."""
        for at, message in self.owner.messages[since:]:
            if (message and message["type"] == kind
                    and message["data"].get("prompt_id") == prompt_id
                    and (node is False or message["data"].get("node") == node)):
                return at
        return None

    def wait_for(self, kind, prompt_id, since, timeout, node=False):
        self.loop.run_until(lambda: self.owner_message(kind, prompt_id, since, node) is not None,
                            timeout, f"{self.service.name}'s {kind} message")
        return self.owner_message(kind, prompt_id, since, node)

    def run_prompt(self, seed, steps, timeout=900):
        """Posts a prompt and follows it to the end (`executing` with node null): (send time,
        its owner messages [(arrival, message)])."""
        since = len(self.owner.messages)
        sent_at, _, prompt_id = self.post(seed, steps)
        self.wait_for("executing", prompt_id, since, timeout, node=None)
        messages = [(at, m) for at, m in self.owner.messages[since:]
                    if m is None or m["data"].get("prompt_id") in (prompt_id, None)]
        if not any(m and m["type"] == "execution_success" for _, m in messages):
            raise SystemExit(f"{self.service.name}: prompt {prompt_id} did not succeed")
        return sent_at, prompt_id, messages

    def close(self):
        self.loop.close()
        self.poster.close()
        for client in self.clients:
            client.close()


def measure_start(session, samples, steps, pause):
    """POST -> execution_start (ms) per prompt on a worker idle for `pause` s, and the spacing of
    progress messages (s) within each prompt."""
    starts, spacings, previews = [], [], 0
    for sample in range(samples):
        time.sleep(pause)
        sent_at, prompt_id, messages = session.run_prompt(seed=100 + sample, steps=steps)
        start = next(at for at, m in messages if m and m["type"] == "execution_start")
        starts.append(1000 * (start - sent_at))
        steps_at = [at for at, m in messages if m and m["type"] == "progress"]
        spacings += [b - a for a, b in zip(steps_at, steps_at[1:])]
        previews += sum(m is None for _, m in messages)
    return {"starts_ms": starts, "spacings_s": spacings, "previews": previews / samples}


def measure_accept(session, prompts):
    """With the worker busy on a long prompt: per POST the round trip, and per (POST, client) the
    time from sending to the status broadcast with the new queue size (all in ms)."""
    since = len(session.owner.messages)
    _, _, busy_id = session.post(seed=1, steps=BUSY_STEPS)
    session.wait_for("executing", busy_id, since, 600, node="3")  # the sampler runs
    session.loop.run_until(lambda: session.owner.statuses(), 30, "a status broadcast")
    base = session.owner.statuses()[-1][1]
    accepts, from_send, from_answer, last_client = [], [], [], []
    for index in range(1, prompts + 1):
        marks = [len(c.messages) for c in session.clients]
        expected = base + index

        def arrival(client, mark):
            return next((at for at, message in client.messages[mark:]
                         if message and message["type"] == "status" and "sid" not in message["data"]
                         and message["data"]["status"]["exec_info"]["queue_remaining"] >= expected),
                        None)

        sent_at, answered_at, _ = session.post(seed=1000 + index, steps=2)
        session.loop.run_until(
            lambda: all(arrival(c, m) is not None for c, m in zip(session.clients, marks)), 30,
            f"the status broadcast of queue size {expected}")
        arrivals = [arrival(c, m) for c, m in zip(session.clients, marks)]
        accepts.append(1000 * (answered_at - sent_at))
        from_send += [1000 * (at - sent_at) for at in arrivals]
        from_answer += [1000 * (at - answered_at) for at in arrivals]
        last_client.append(1000 * (max(arrivals) - sent_at))
    control(session.service, "/queue", {"clear": True})
    control(session.service, "/interrupt", {})
    session.wait_for("executing", busy_id, since, 600, node=None)
    return {"accept_ms": accepts, "status_ms": from_send, "status_after_answer_ms": from_answer,
            "last_client_ms": last_client}


def summary(values, fractions=(0.5, 0.95, 0.99)):
    return [percentile(values, f) for f in fractions]


def comfyui_version(comfyui):
    version = {}
    exec((comfyui / "comfyui_version.py").read_text(), version)  # a one-line version constant
    found = subprocess.run(["git", "-C", str(comfyui), "rev-parse", "--show-toplevel",
                            "--short", "HEAD"], capture_output=True, text=True).stdout.split()
    # Only a commit of ComfyUI's own checkout, not of a repository the folder happens to be in.
    commit = found[1] if len(found) == 2 and pathlib.Path(found[0]) == comfyui else ""
    return f"ComfyUI {version.get('__version__', '?')}" + (f" ({commit})" if commit else "")


def torch_version(python):
    return subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                          capture_output=True, text=True).stdout.strip() or "?"


def describe_setup(args):
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    os_name = next((line.split("=", 1)[1].strip().strip('"')
                    for line in pathlib.Path("/etc/os-release").read_text().splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.system())
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [f"machine: {machine_description()}, {memory_gb:.0f} GB, {os_name}",
            f"Dream Forge {commit}; torch {torch_version(sys.executable)}",
            f"{comfyui_version(args.comfyui)}; Python {platform.python_version()}; "
            f"torch {torch_version(args.comfyui_python)}",
            f"torch threads per sampler: {args.threads}; checkpoint: {args.checkpoint.name}"]


def print_table(rows):
    header = ("measure", *SERVICES, "Dream Forge vs ComfyUI")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))


def compare(label, ours, theirs, digits=2):
    return (label, f"{ours:.{digits}f}", f"{theirs:.{digits}f}", ratio(ours, theirs))


def percentile_rows(label, ours, theirs, names=("p50", "p95", "p99")):
    return [compare(f"{label}: {name} (ms)", a, b)
            for name, a, b in zip(names, summary(ours), summary(theirs))]


def make_checkpoint(path):
    progress(f"writing the random-weight SD 1.5 checkpoint {path}")
    subprocess.run([sys.executable, str(ROOT / "bench" / "comfyui_make_checkpoint.py"), str(path)],
                   check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comfyui", type=pathlib.Path, required=True,
                        help="a ComfyUI source folder (main.py)")
    parser.add_argument("--comfyui-python", required=True,
                        help="the Python of a virtual environment with ComfyUI's requirements")
    parser.add_argument("--checkpoint", type=pathlib.Path,
                        help="an SD1 single-file .safetensors both load (default: a random SD 1.5 "
                        "written into the work directory)")
    parser.add_argument("--prompts", type=int, default=200, help="POSTs per accept case")
    parser.add_argument("--clients", type=int, default=50, help="/ws clients in the fan-out case")
    parser.add_argument("--start-samples", type=int, default=5,
                        help="prompts run to the end for POST -> execution_start")
    parser.add_argument("--steps", type=int, default=2, help="sampler steps of those prompts")
    parser.add_argument("--pause", type=float, default=1.0,
                        help="seconds the worker is left idle before each of those prompts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each sampler")
    parser.add_argument("--workdir", help="where data folders go (default: a new temp dir)")
    args = parser.parse_args()
    args.comfyui = args.comfyui.resolve()
    if not (args.comfyui / "main.py").exists():
        raise SystemExit(f"{args.comfyui} has no main.py: pass a ComfyUI source folder")
    if not (BIN / "dreamforge").exists():
        raise SystemExit(f"{BIN / 'dreamforge'} is missing: build the project first")
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="df-comfyui-bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.checkpoint is None:
        args.checkpoint = workdir / "sd15-random.safetensors"
        if not args.checkpoint.exists():
            make_checkpoint(args.checkpoint)
    args.checkpoint = args.checkpoint.resolve()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # both servers and their samplers inherit it
    setup = describe_setup(args)
    print("\n".join(setup) + f"\nwork directory: {workdir}")
    started = time.perf_counter()

    services = []
    results = {}
    try:
        services = [start_dreamforge(workdir, args.checkpoint, args.comfyui),
                    start_comfyui(workdir, args.checkpoint, args.comfyui, args.comfyui_python)]
        for service in services:
            progress(f"{service.name}: warm-up prompt (model load)")
            session = Session(service, 1, args.checkpoint.name)
            session.run_prompt(seed=0, steps=1)
            progress(f"{service.name}: POST -> execution_start, {args.start_samples} prompts")
            results[(service.name, "start")] = measure_start(session, args.start_samples,
                                                             args.steps, args.pause)
            session.close()
        for clients in (1, args.clients):
            for service in services:
                progress(f"{service.name}: {args.prompts} POSTs, {clients} /ws client(s)")
                session = Session(service, clients, args.checkpoint.name)
                results[(service.name, clients)] = measure_accept(session, args.prompts)
                session.close()
    finally:
        for service in services:
            service.stop()

    def pair(key, measure):
        return results[(SERVICES[0], key)][measure], results[(SERVICES[1], key)][measure]

    rows = []
    for clients in (1, args.clients):
        suffix = f"{clients} /ws client{'s' if clients > 1 else ''}"
        rows += percentile_rows(f"POST /prompt round trip, {suffix}", *pair(clients, "accept_ms"))
    quarter = max(1, args.prompts // 4)
    for clients in (1, args.clients):
        ours, theirs = pair(clients, "accept_ms")
        for label, part in (("first", slice(0, quarter)), ("last", slice(-quarter, None))):
            rows.append(compare(f"  round trip, {clients} client(s), {label} {quarter} POSTs: p50 "
                                "(ms)", percentile(ours[part], 0.5), percentile(theirs[part], 0.5)))
    for clients in (1, args.clients):
        suffix = f"{clients} client{'s' if clients > 1 else ''}"
        rows += percentile_rows(f"POST -> status at {suffix}", *pair(clients, "status_ms"))
        rows += percentile_rows(f"  answer -> status at {suffix}",
                                *pair(clients, "status_after_answer_ms"), names=("p50",))
    rows += percentile_rows(f"POST -> status at the last of {args.clients}",
                            *pair(args.clients, "last_client_ms"), names=("p50", "p95", "p99"))
    starts = pair("start", "starts_ms")
    rows.append(compare(f"POST -> execution_start, median of {args.start_samples} (ms)",
                        *(percentile(values, 0.5) for values in starts)))
    spacings = pair("start", "spacings_s")
    if all(spacings):
        rows.append(compare("progress spacing = sampler step, median (s)",
                            *(percentile(values, 0.5) for values in spacings)))
    ours, theirs = pair("start", "previews")
    rows.append(("preview frames per prompt", f"{ours:.0f}", f"{theirs:.0f}", ""))
    print()
    print_table(rows)
    print(f"\ntotal time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
