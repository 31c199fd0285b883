"""Gives a fresh service something to fuzz: real jobs (generate jobs, a ComfyUI prompt, a
canceled job), an uploaded image and its outputs; writes their ids and names as JSON for the
fuzzers.

Usage: prepare.py BASE_URL STATE_JSON"""
import json
import sys
import time
import urllib.parse

import requests

from fuzz_common import make_png, text_to_image_graph

TIMEOUT = 30


def fail(message):
    print(f"prepare: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def checked(response, *ok):
    if response.status_code not in ok:
        fail(f"{response.request.method} {response.request.path_url} answered {response.status_code}: "
             f"{response.text[:500]}")
    return response


def checkpoint_names(http, base):
    info = checked(http.get(f"{base}/object_info/CheckpointLoaderSimple", timeout=TIMEOUT), 200).json()
    spec = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
    names = spec[0] if isinstance(spec[0], list) else spec[1].get("options", [])
    if not names:
        fail("the service lists no checkpoint")
    return names


def main():
    base, state_path = sys.argv[1].rstrip("/"), sys.argv[2]
    http = requests.Session()
    deadline = time.time() + 60
    while True:
        try:
            if http.get(f"{base}/healthz", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.time() > deadline:
            fail("GET /healthz did not answer 200")
        time.sleep(0.5)

    ckpts = checkpoint_names(http, base)
    models = [m["id"] for m in checked(http.get(f"{base}/v1/models", timeout=TIMEOUT), 200).json()["models"]]

    png = make_png(16, 16)
    boundary = "fuzzprepare"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"fuzz-input.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    uploaded = checked(http.post(f"{base}/upload/image", data=form, timeout=TIMEOUT,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}), 200).json()

    jobs = []
    for number, count in enumerate((1, 2)):
        body = {"model_id": models[0] if models else "tiny", "prompt": f"a lighthouse {number}",
                "width": 64, "height": 64, "steps": 2, "seed": number, "count": count}
        job = checked(http.post(f"{base}/v1/jobs", json=body, timeout=TIMEOUT,
                                headers={"Idempotency-Key": f"fuzz-prepare-{number}"}), 200, 202).json()
        jobs.append(job["id"])
    prompt = checked(http.post(f"{base}/prompt", json={"prompt": text_to_image_graph(ckpts[0]), "client_id": "fuzz"},
                               timeout=TIMEOUT), 200).json()["prompt_id"]
    canceled = checked(http.post(f"{base}/v1/jobs", json={"model_id": models[0] if models else "tiny",
                                                         "prompt": "canceled", "width": 64, "height": 64,
                                                         "steps": 2}, timeout=TIMEOUT), 200, 202).json()["id"]
    checked(http.post(f"{base}/v1/jobs/{canceled}/cancel", timeout=TIMEOUT), 200, 202)

    deadline = time.time() + 300
    pending = set(jobs + [prompt, canceled])
    while pending and time.time() < deadline:
        for job_id in list(pending):
            status = checked(http.get(f"{base}/v1/jobs/{job_id}", timeout=TIMEOUT), 200).json()["status"]
            if status in ("succeeded", "failed", "canceled"):
                pending.discard(job_id)
        time.sleep(0.3)
    if pending:
        fail(f"jobs {sorted(pending)} did not finish within 300 s")

    artifacts = []
    for job_id in jobs:
        listing = checked(http.get(f"{base}/v1/jobs/{job_id}/artifacts", timeout=TIMEOUT), 200).json()
        for artifact in listing["artifacts"]:
            url = urllib.parse.urlsplit(artifact["url"])
            query = dict(urllib.parse.parse_qsl(url.query))
            artifacts.append({"path": url.path, "expires": query.get("expires", ""), "sig": query.get("sig", "")})
    outputs = []
    history = checked(http.get(f"{base}/history/{prompt}", timeout=TIMEOUT), 200).json()
    for entry in history.values():
        for node in entry.get("outputs", {}).values():
            outputs.extend(node.get("images", []))
    workflows = checked(http.get(f"{base}/userdata", params={"dir": "workflows"}, timeout=TIMEOUT), 200).json()

    state = {"base_url": base, "ckpt_names": ckpts, "model_ids": models or ["tiny"],
             "job_ids": jobs + [canceled], "prompt_ids": [prompt], "artifacts": artifacts,
             "outputs": outputs, "uploaded": uploaded, "workflows": workflows}
    with open(state_path, "w", encoding="utf-8") as out:
        json.dump(state, out, indent=1)
    print(f"prepare: {len(jobs) + 2} jobs ({', '.join(jobs + [prompt, canceled])}), "
          f"{len(artifacts)} artifacts, checkpoint {ckpts[0]!r}", flush=True)


if __name__ == "__main__":
    main()
