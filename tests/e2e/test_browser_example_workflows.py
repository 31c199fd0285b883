"""ComfyUI's own example workflows for inpainting, outpainting, ControlNet, hires fix with an
ESRGAN upscaler and unCLIP, from the public corpus (../shared/comfy-workflows), opened in the web
frontend that `dreamforge serve` serves the way a user opens a downloaded workflow file, run with
the Run button, their image shown on the canvas (tests/browser/run_api_workflow.mjs drives the
page). The workflows get the substitutions a user makes (tiny models of their family, the
uploaded test image, small sizes, 2 steps; see corpus_support.py). Skips without the corpus."""
import json
import pathlib
import subprocess
import time
import urllib.parse

import pytest

import corpus_support as corpus
from test_browser_frontend import ARTIFACTS, BROWSER_TESTS, CHROMIUM, describe, node_with_browser_tools

EXAMPLES = {
    "inpainting": "api/065_inpain_model_cat.json",
    "outpainting": "api/067_inpain_model_outpainting.json",
    "controlnet": "api/028_controlnet_example.json",
    "hires fix with ESRGAN": "api/001_hiresfix_esrgan_workflow.json",
    "unCLIP": "api/120_unclip_example.json",
}


@pytest.fixture(scope="module")
def example_service(bin_dir, tmp_path_factory):
    started = corpus.start_service_with_tiny_files(tmp_path_factory)
    started.image_name = corpus.upload_test_image(started)
    yield started
    started.stop()


def prepared_example(service, file, tmp_path):
    """The example as a user would open it here, written to a .json file; returns its path."""
    families = dict(corpus.sd_workflows())
    graph = json.loads((corpus.CORPUS / file).read_text())
    object_info = service.get("/object_info").json()
    prepared = corpus.prepare(graph, families[file], object_info, service.image_name)
    untouched = [value for value in corpus.model_file_values(prepared)
                 if not pathlib.PurePath(value).stem.startswith("tiny-")]
    assert untouched == [], f"{file}: no tiny model of the kind of {untouched}"
    path = tmp_path / pathlib.PurePath(file).name
    path.write_text(json.dumps(prepared))
    return path


def run_in_browser(service, workflow_file):
    artifacts = ARTIFACTS.parent / "example_workflows"
    command = [node_with_browser_tools(), "run_api_workflow.mjs", "--url", service.url("/"),
               "--file", str(workflow_file), "--artifacts", str(artifacts),
               "--chromium", str(CHROMIUM)]
    proc = subprocess.run(command, cwd=BROWSER_TESTS, capture_output=True, text=True, timeout=400)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the browser script printed no summary (exit {proc.returncode}):\n{proc.stderr}"
    return json.loads(lines[-1])


def finished_outputs(service, prompt_id, timeout=120):
    """The prompt's outputs from /history once it has finished: a workflow with several SaveImage
    nodes shows its first image before the prompt ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = service.get(f"/history/{prompt_id}").json()
        if prompt_id in history:
            return history[prompt_id]["outputs"]
        time.sleep(0.2)
    raise AssertionError(f"prompt {prompt_id} not in /history after {timeout} s")


def service_console_errors(service, console_errors):
    """The console errors about the service's own pages and resources. The frontend's default
    graph (Z-Image Turbo) names model download URLs on huggingface.co that the frontend probes
    in the background; on a machine without internet access those probes fail with console errors
    that say nothing about Dream Forge."""
    origin = urllib.parse.urlsplit(service.url("/")).netloc
    return [error for error in console_errors
            if urllib.parse.urlsplit(error["url"]).netloc in ("", origin)]


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_a_comfyui_example_workflow_runs_in_the_frontend(example_service, example, tmp_path):
    service = example_service
    file = EXAMPLES[example]
    summary = run_in_browser(service, prepared_example(service, file, tmp_path))
    print(f"screenshot: {summary.get('screenshot')}\nseconds per step: {summary.get('seconds')}")
    assert "error" not in summary, summary["error"] + "\nservice log:\n" + "".join(service.output[-40:])
    own_errors = service_console_errors(service, summary["console_errors"])
    assert own_errors == [], "console errors:\n" + describe(own_errors)
    assert summary["page_errors"] == []

    graph = json.loads((corpus.CORPUS / file).read_text())
    assert sorted(summary["nodes"]) == sorted(node["class_type"] for node in graph.values())

    image = summary["image"]
    assert image["response"] == {"status": 200, "content_type": "image/png"}
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(image["src"]).query))
    prompt_id = summary["prompt_id"]
    outputs = finished_outputs(service, prompt_id)
    saved = [saved["filename"] for output in outputs.values() for saved in output.get("images", [])]
    assert query["filename"] in saved
    assert (service.data_dir / "output" / query.get("subfolder", "") / query["filename"]).is_file()
