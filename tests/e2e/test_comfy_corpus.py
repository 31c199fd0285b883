"""Every SD 1.x/2.x/SDXL workflow, and every FLUX.1 and SD3 workflow, of the public ComfyUI corpus
(../shared/comfy-workflows, API format) posted to one `dreamforge serve`, with the substitutions a
user makes (tiny models of the workflow's family, an uploaded test image, 64-pixel sizes, 2 steps,
batches of 1; see corpus_support.py), a few posts at a time, followed over /ws. Each workflow is
classified as ran, refused at validation or failed at run time; a summary goes to stdout and to
corpus_report.json in the test's tmp dir.

Each test fails when a workflow listed in its baseline (tests/e2e/data/corpus_baseline.json for SD,
corpus_baseline_flux_sd3.json for FLUX and SD3) no longer runs; when more run it passes with a
note. To refresh the baselines after adding nodes, run

    DREAMFORGE_UPDATE_CORPUS_BASELINE=1 .venv/bin/python -m pytest tests/e2e/test_comfy_corpus.py -s

and commit the rewritten baselines (and the counts in README.md)."""
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import corpus_support as corpus
from comfy_client import ComfyClient

DEADLINE_S = 1200  # for all prompts to finish; a quick run takes a few minutes


@pytest.fixture(scope="module")
def service(bin_dir, tmp_path_factory):
    started = corpus.start_service_with_tiny_files(tmp_path_factory, "--workers", "2")
    yield started
    started.stop()


def post_all(client, prepared, object_info):
    """Posts every prepared graph (a few at a time); returns {file: /prompt's answer (prompt_id and
    the node_errors of the outputs left out) or refusal record}."""
    def post(item):
        name, graph = item
        response = client.queue(graph)
        assert response.status_code in (200, 400), f"{name}: /prompt answered {response.status_code}: {response.text}"
        if response.status_code == 200:
            return name, response.json()
        return name, corpus.refusal(response, graph, object_info)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(post, prepared.items()))


def classify(client, posted, prepared):
    """{file: record} once every accepted prompt finished (or the deadline passed)."""
    accepted = {name: answer for name, answer in posted.items() if "prompt_id" in answer}
    finished = corpus.wait_for_prompts(client, [answer["prompt_id"] for answer in accepted.values()],
                                       time.monotonic() + DEADLINE_S)
    records = {name: answer for name, answer in posted.items() if name not in accepted}
    for name, answer in accepted.items():
        entry = finished.get(answer["prompt_id"])
        records[name] = (corpus.outcome(entry, prepared[name], answer.get("node_errors"))
                         if entry else {"class": "failed", "message": "timed out"})
    return records


def run_corpus(service, workflows, tmp_path, label):
    """Posts the workflows ([(file, manifest family)]) prepared as a user would; prints and writes
    the summary; returns ({file: record}, {file: prepared graph}, object_info)."""
    started = time.monotonic()
    object_info = service.get("/object_info").json()
    image_name = corpus.upload_test_image(service)
    # Grouped by family, so each worker's runner keeps one tiny model loaded for long runs.
    workflows = sorted(workflows, key=lambda item: (item[1], item[0]))
    families = dict(workflows)
    originals = {name: json.loads((corpus.CORPUS / name).read_text()) for name, _ in workflows}
    prepared = {name: corpus.prepare(originals[name], families[name], object_info, image_name)
                for name in originals}
    client = ComfyClient(service)
    records = classify(client, post_all(client, prepared, object_info), prepared)
    client.close()

    report = {**corpus.summary(records, families), "seconds": time.monotonic() - started,
              "workflows": dict(sorted(records.items()))}
    (tmp_path / "corpus_report.json").write_text(json.dumps(report, indent=1))
    print("\n" + corpus.format_summary(report, label) + f"\n  report: {tmp_path / 'corpus_report.json'}")
    return records, prepared, object_info


def check_placeholders_refused(records, prepared, object_info):
    """Workflows with template placeholders where a value is chosen are refused; returns them."""
    templated = [name for name, graph in prepared.items() if corpus.placeholder_inputs(graph, object_info)]
    for name in templated:
        assert records[name]["class"] == "refused", f"{name} holds placeholders: {records[name]}"
    return templated


def check_against_baseline(records, group):
    """Fails when a workflow of the group's baseline no longer runs (or rewrites the baseline when
    DREAMFORGE_UPDATE_CORPUS_BASELINE=1)."""
    ran = {name for name, record in records.items() if record["class"] == "ran"}
    if os.environ.get("DREAMFORGE_UPDATE_CORPUS_BASELINE") == "1":
        corpus.write_baseline(group, ran, len(records))
        print(f"  baseline rewritten: {len(ran)} of {len(records)} run ({corpus.BASELINES[group]})")
        return
    baseline = set(corpus.read_baseline(group)["ran"])
    lost = {name: records.get(name, {"class": "missing from the corpus"}) for name in sorted(baseline - ran)}
    assert not lost, f"workflows of the baseline no longer run: {json.dumps(lost, indent=1)}"
    if ran - baseline:
        print(f"  note: {len(ran - baseline)} workflows run beyond the baseline ({len(baseline)}): "
              "refresh it with DREAMFORGE_UPDATE_CORPUS_BASELINE=1")


def test_the_sd_workflows_of_the_public_corpus(service, tmp_path):
    records, prepared, object_info = run_corpus(service, corpus.sd_workflows(), tmp_path, "SD")
    assert check_placeholders_refused(records, prepared, object_info), \
        "the corpus has workflows with template placeholders"
    check_against_baseline(records, "sd")


def test_the_flux_and_sd3_workflows_of_the_public_corpus(service, tmp_path):
    workflows = corpus.corpus_workflows(corpus.DIT_CORPUS_FAMILIES)
    records, prepared, object_info = run_corpus(service, workflows, tmp_path, "FLUX and SD3")
    check_placeholders_refused(records, prepared, object_info)
    check_against_baseline(records, "flux_sd3")
