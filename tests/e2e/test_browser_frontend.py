"""The ComfyUI web frontend from `dreamforge serve` in headless Chromium: with a failed prompt in
the history it loads without console errors, opens Dream Forge's SD 1.x workflow from the workflow
library, runs it on the tiny model and shows the generated image
(tests/browser/run_library_workflow.mjs drives the page); a new user opens a Dream Forge template
from the template browser (tests/browser/open_template.mjs)."""
import json
import pathlib
import shutil
import subprocess
import urllib.parse

import pytest

from e2e_support import ROOT

BROWSER_TESTS = ROOT / "tests" / "browser"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "e2e" / ".artifacts" / "browser_frontend"


def node_with_browser_tools():
    """The node executable, after checking that Chromium and the browser tests' node modules are
    there too; fails (never skips) naming what is missing, since scripts/setup installs them all."""
    node = shutil.which("node")
    missing = []
    if node is None:
        missing.append("node (Debian package nodejs)")
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    if not (BROWSER_TESTS / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/browser/node_modules (npm ci in tests/browser)")
    if missing:
        pytest.fail("the browser test needs " + ", ".join(missing) + "; run scripts/setup")
    return node


def run_library_workflow(service, workflow, checkpoint, image_size):
    """Runs the browser script against the service; returns its JSON summary."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    command = [node_with_browser_tools(), "run_library_workflow.mjs", "--url", service.url("/"),
               "--workflow", workflow, "--checkpoint", checkpoint,
               "--image-size", str(image_size), "--artifacts", str(ARTIFACTS),
               "--chromium", str(CHROMIUM)]
    proc = subprocess.run(command, cwd=BROWSER_TESTS, capture_output=True, text=True,
                          timeout=300)
    lines = proc.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"the browser script printed no summary (exit {proc.returncode}):\n"
                    + proc.stderr)
    return json.loads(lines[-1])


def describe(console_errors):
    """One line per console error: the script or resource it names, and its first line."""
    return "\n".join(f"  {error['url']}: {error['text'].splitlines()[0]}"
                     for error in console_errors)


def fail_a_prompt(service):
    """Queues a prompt that fails while it runs (a corrupt input image) and waits for it: the
    frontend's queue and assets panels must still load their jobs without a schema error."""
    from service_support import failing_graph
    graph = failing_graph(service.data_dir)
    prompt_id = service.post("/prompt", {"prompt": graph}).json()["prompt_id"]
    assert service.wait_for_job(prompt_id)["status"] == "failed"


def test_the_frontend_runs_the_sd1_workflow_from_the_library_and_shows_the_image(start_service):
    service = start_service()
    fail_a_prompt(service)
    # 128 px instead of the workflow's 512 keeps the run short on a busy CPU-only machine.
    summary = run_library_workflow(service, "dreamforge_sd1_txt2img", "tiny", image_size=128)
    print(f"screenshot: {summary['screenshot']}\nseconds per step: {summary['seconds']}")
    assert "error" not in summary, summary["error"] + "\nservice log:\n" + "".join(service.output)

    # The frontend marks missing model files on the canvas and in its error panel, not on the
    # console, so no console error is expected at all.
    console_errors = summary["console_errors"]
    assert console_errors == [], "console errors:\n" + describe(console_errors)
    assert summary["page_errors"] == []

    image = summary["image"]
    src = urllib.parse.urlsplit(image["src"])
    assert service.url("") == f"{src.scheme}://{src.netloc}" and src.path in ("/view", "/api/view")
    assert (image["width"], image["height"]) == (128, 128)
    assert image["response"] == {"status": 200, "content_type": "image/png"}
    query = dict(urllib.parse.parse_qsl(src.query, keep_blank_values=True))
    assert query["type"] == "output"
    assert (service.data_dir / "output" / query["subfolder"] / query["filename"]).is_file()

    prompt_id = summary["prompt_id"]
    outputs = service.get(f"/history/{prompt_id}").json()[prompt_id]["outputs"]
    saved = [saved["filename"] for output in outputs.values() for saved in output["images"]]
    assert query["filename"] in saved


def test_a_new_user_opens_a_dream_forge_template_from_the_template_browser(start_service):
    from template_runs import template_graph
    service = start_service()
    artifacts = ARTIFACTS.parent / "template_browser"
    command = [node_with_browser_tools(), "open_template.mjs", "--url", service.url("/"),
               "--title", "Hires Fix", "--artifacts", str(artifacts), "--chromium", str(CHROMIUM)]
    proc = subprocess.run(command, cwd=BROWSER_TESTS, capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the browser script printed no summary (exit {proc.returncode}):\n{proc.stderr}"
    summary = json.loads(lines[-1])
    assert "error" not in summary, summary["error"] + f"\nscreenshot: {summary['screenshot']}"
    assert summary["console_errors"] == [], "console errors:\n" + describe(summary["console_errors"])
    expected = template_graph("dreamforge_sd15_hires_fix")
    assert sorted(node["type"] for node in summary["nodes"]) == \
        sorted(node["class_type"] for node in expected.values())
