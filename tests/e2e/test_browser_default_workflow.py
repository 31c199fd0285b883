"""The web frontend's default graph, Z-Image Turbo, opened by a new user in headless Chromium and
run as shipped (its file names, 1024x1024, 8 steps of res_multistep) with the Run button on the
tiny Z-Image model create-tiny writes under those names; the image shows on the canvas
(tests/browser/run_default_workflow.mjs drives the page)."""
import json
import subprocess
import urllib.parse

from test_browser_frontend import ARTIFACTS, BROWSER_TESTS, CHROMIUM, describe, node_with_browser_tools
from e2e_support import install_tiny_split_files


def run_default_workflow(service):
    artifacts = ARTIFACTS.parent / "default_workflow"
    command = [node_with_browser_tools(), "run_default_workflow.mjs", "--url", service.url("/"),
               "--artifacts", str(artifacts), "--chromium", str(CHROMIUM)]
    proc = subprocess.run(command, cwd=BROWSER_TESTS, capture_output=True, text=True, timeout=400)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the browser script printed no summary (exit {proc.returncode}):\n{proc.stderr}"
    return json.loads(lines[-1])


def test_a_new_user_runs_the_default_zimage_workflow(start_service, tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_split_files(data_dir, "zimage")
    service = start_service(data_dir=data_dir, model=False)
    summary = run_default_workflow(service)
    print(f"screenshot: {summary['screenshot']}\nseconds per step: {summary['seconds']}")
    assert "error" not in summary, summary["error"] + "\nservice log:\n" + "".join(service.output)

    graph = summary["graph"]
    assert {"UNETLoader", "CLIPLoader", "VAELoader", "EmptySD3LatentImage",
            "ModelSamplingAuraFlow", "KSampler", "SaveImage"} <= set(graph["node_types"])
    assert graph["files"]["UNETLoader.unet_name"] == "z_image_turbo_bf16.safetensors"
    assert graph["files"]["CLIPLoader.clip_name"] == "qwen_3_4b.safetensors"
    assert graph["files"]["VAELoader.vae_name"] == "ae.safetensors"
    assert summary["console_errors"] == [], "console errors:\n" + describe(summary["console_errors"])
    assert summary["page_errors"] == []

    image = summary["image"]
    assert (image["width"], image["height"]) == (1024, 1024)
    assert image["response"] == {"status": 200, "content_type": "image/png"}
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(image["src"]).query))
    assert (service.data_dir / "output" / query.get("subfolder", "") / query["filename"]).is_file()
