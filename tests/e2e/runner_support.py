"""Runners driven over their NDJSON protocol through pipes, and the graphs the tests run."""
import json
import pathlib
import queue
import subprocess
import threading

from e2e_support import BIN


class ProtocolProcess:
    """A runner process of any kind (its command line in `argv`) with a background reader of its
    events."""

    def __init__(self, argv, stderr=subprocess.PIPE):
        self.proc = subprocess.Popen([str(word) for word in argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def send_line(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def send(self, request):
        self.send_line(json.dumps(request))

    def next(self, timeout=120):
        return self.events.get(timeout=timeout)

    def until(self, predicate, timeout=300):
        """Events up to and including the first that satisfies `predicate`."""
        seen = []
        while True:
            event = self.next(timeout)
            assert event is not None, f"runner ended early; events: {seen}"
            seen.append(event)
            if predicate(event):
                return seen

    def run(self, request):
        self.send(request)
        return self.until(lambda e: e["type"] == "run_finished" and e["id"] == request["id"])

    def close(self):
        if self.proc.poll() is None:
            self.send({"type": "shutdown"})
            self.proc.wait(timeout=30)


class Runner(ProtocolProcess):
    """A dreamforge-runner process (on the CPU unless `device` says otherwise); `args` are further
    runner flags (e.g. a model budget)."""

    def __init__(self, models_dir, input_dir, *args, bin_dir=BIN, device="cpu",
                 stderr=subprocess.PIPE):
        super().__init__([pathlib.Path(bin_dir) / "dreamforge-runner", "--models-dir", models_dir,
                          "--input-dir", input_dir, "--device", device, *args], stderr)


def txt2img_graph(ckpt_name, seed=5, steps=3, sampler="euler", size=64, batch=1):
    """CheckpointLoaderSimple, two prompts, KSampler, VAEDecode and SaveImage."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 6.0, "sampler_name": sampler, "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "df", "images": ["8", 0]}},
    }
