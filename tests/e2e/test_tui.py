"""`dreamforge tui` driven in tmux (80x24) against a real `dreamforge serve --zmq` (and its /v1 API
with --server): submit a prompt, see its progress and its image in the gallery, cancel a job."""
import os
import pathlib
import shlex
import subprocess
import uuid

import pytest

from backends import free_port
from e2e_support import BIN, wait_until
from service_support import Service, install_tiny_model


class TmuxScreen:
    """A command in a detached 80x24 tmux session on a tmux server of its own."""

    def __init__(self, command, env):
        self.socket = f"df-tui-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "tui"
        assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
        self.tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", self.session,
                  f"env {assignments} {command}")

    def tmux(self, *args):
        return subprocess.run(["tmux", "-u", "-L", self.socket, *args], capture_output=True,
                              text=True, check=True, timeout=30).stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", self.session, *keys)

    def type(self, text):
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def text(self):
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def joined(self):
        """The screen's rows without their trailing blanks, run together (for wrapped paths)."""
        return "".join(line.rstrip() for line in self.text().splitlines())

    def wait_for(self, predicate, what, timeout=120):
        return wait_until(lambda: predicate(self.text()), what, timeout=timeout, explain=self.text)

    def running(self):
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", self.session],
                              capture_output=True, timeout=30).returncode == 0

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def service(tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_model(data_dir)
    req, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    service = Service(data_dir, "--zmq", "--zmq-req-addr", req, "--zmq-pub-addr", pub).start()
    service.zmq = (req, pub)
    yield service
    service.stop()


@pytest.fixture
def screens():
    started = []

    def start(args, env):
        command = " ".join(shlex.quote(str(a)) for a in [BIN / "dreamforge", "tui", *args])
        screen = TmuxScreen(command, {"HOME": os.environ.get("HOME", "/tmp"), **env})
        started.append(screen)
        return screen

    yield start
    for screen in started:
        screen.close()


def set_field(screen, tabs, value, width):
    """Moves `tabs` fields on with Tab, clears the field (at most `width` characters), types."""
    screen.keys(*["Tab"] * tabs)
    screen.keys(*["BSpace"] * width)
    screen.type(value)


def job_lines(text):
    """The queue's job lines (they end with a job status)."""
    statuses = ("queued", "running", "done", "failed", "canceled")
    return [line for line in text.splitlines() if line.rstrip().endswith(statuses)]


def submit_small_job(screen, prompt, steps):
    """Types a prompt into the editor (focused at the start) and submits a 64x64 job."""
    screen.type(prompt)
    set_field(screen, 2, "64", 4)        # Width
    set_field(screen, 1, "64", 4)        # Height
    set_field(screen, 1, str(steps), 4)  # Steps
    screen.keys("Enter")


def artifact_paths(data_dir):
    return sorted(str(p) for p in pathlib.Path(data_dir).rglob("*.png") if "artifacts" in p.parts)


def test_tui_over_zmq_submits_shows_progress_gallery_and_cancels(service, screens):
    req, pub = service.zmq
    screen = screens(["--zmq-req-addr", req, "--zmq-pub-addr", pub],
                     {"TERM": "vt100", "LANG": "C", "LC_ALL": "C", "DREAMFORGE_TUI_IMAGES": "none"})
    screen.wait_for(lambda t: "connected" in t and "< tiny >" in t,
                    "the tui is connected, with the models listed")
    assert "F1 help" in screen.text()

    submit_small_job(screen, "a lighthouse at dusk", 4)
    screen.wait_for(lambda t: any(l.endswith("done") and "100%" in l for l in job_lines(t)),
                    "the job is done in the queue")
    done_line = next(l for l in job_lines(screen.text()) if l.endswith("done"))
    assert "tiny" in done_line and "1/1" in done_line and "#" in done_line, done_line
    assert "\u2588" not in screen.text()  # ASCII bars without UTF-8

    screen.keys("Escape", "g")
    screen.wait_for(lambda t: "GALLERY  1 image(s)" in t, "the gallery lists the image")
    paths = wait_until(lambda: artifact_paths(service.data_dir), "the artifact is on disk")
    wait_until(lambda: paths[0] in screen.joined(), "the gallery shows the image's path",
               explain=screen.text)

    screen.keys("g", "Tab")  # back to the queue, then into the editor's prompt
    set_field(screen, 2, "256", 4)  # a longer job: Width, Height, Steps (the model's most), Count
    set_field(screen, 1, "256", 4)
    set_field(screen, 1, "150", 4)
    set_field(screen, 3, "4", 4)
    screen.keys("Enter")
    screen.keys("Escape")  # the job list; the newest job is selected
    screen.wait_for(lambda t: any("sampling" in l and "running" in l for l in job_lines(t)),
                    "the long job samples, with its stage in the queue")
    sampling = next(l for l in job_lines(screen.text()) if "running" in l)
    assert "%" in sampling and "/4" in sampling, sampling
    screen.keys("c")
    screen.wait_for(lambda t: any(l.endswith("canceled") for l in job_lines(t)),
                    "the canceled job shows canceled")
    assert len(job_lines(screen.text())) == 2

    screen.keys("q")
    wait_until(lambda: not screen.running(), "q quits the tui", explain=screen.text)


def test_tui_keeps_jobs_and_reconnects_after_a_server_restart(service, screens):
    req, pub = service.zmq
    screen = screens(["--zmq-req-addr", req, "--zmq-pub-addr", pub],
                     {"TERM": "vt100", "LANG": "C", "DREAMFORGE_TUI_IMAGES": "none"})
    screen.wait_for(lambda t: "< tiny >" in t, "the models are listed")
    submit_small_job(screen, "a red boat", 3)
    screen.wait_for(lambda t: any(l.endswith("done") for l in job_lines(t)), "the job is done")
    service.stop()
    screen.wait_for(lambda t: "reconnecting" in t, "the status line says reconnecting", timeout=30)
    assert any(l.endswith("done") for l in job_lines(screen.text()))
    service.start()
    screen.wait_for(lambda t: "connected" in t.splitlines()[0] and "reconnecting" not in t,
                    "connected again", timeout=60)
    screen.keys("Enter")  # the editor still holds the prompt and its settings
    screen.wait_for(lambda t: sum(l.endswith("done") for l in job_lines(t)) == 2,
                    "a job submitted after the restart is done too")


def test_tui_over_the_v1_api(service, screens):
    screen = screens(["--server", service.base_url, "--images", "blocks"],
                     {"TERM": "xterm-256color", "LANG": "C.UTF-8"})
    screen.wait_for(lambda t: service.base_url in t and "< tiny >" in t,
                    "the tui talks to the /v1 API with the models listed")
    submit_small_job(screen, "a quiet harbour", 4)
    screen.wait_for(lambda t: any(l.endswith("done") and "100%" in l for l in job_lines(t)),
                    "the job is done in the queue")
    assert "\u2588" in screen.text()  # UTF-8 bars
    screen.keys("Escape", "g")
    screen.wait_for(lambda t: "GALLERY  1 image(s)" in t, "the gallery lists the image")
    assert service.base_url in screen.joined()  # a signed artifact URL
