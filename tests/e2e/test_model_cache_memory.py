"""The runner's model cache over many jobs: alternating a tiny SD 1.5 and a tiny SDXL checkpoint
stays warm (no reload) and flat in memory, a budget that fits one model evicts and stays bounded,
and the service hands its budgets to its runners."""
import pathlib

import pytest

from runner_support import Runner, txt2img_graph
from service_support import Service, generate_body, install_tiny_model

CHECKPOINTS = ("tiny-sd1", "tiny-sdxl")
JOBS = 60
WARM_UP = 4  # both models loaded, each run once more


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, dreamforge):
    root = tmp_path_factory.mktemp("models")
    dreamforge("model", "create-tiny", root / "tiny-sd1", "--family", "sd1")
    dreamforge("model", "create-tiny", root / "tiny-sdxl", "--family", "sdxl")
    return root


def alternate(models_dir, tmp_path, *runner_args):
    """Runs JOBS one-step jobs alternating the checkpoints; returns each run_finished memory report."""
    runner = Runner(models_dir, tmp_path, *runner_args)
    try:
        reports = []
        for job in range(JOBS):
            graph = txt2img_graph(CHECKPOINTS[job % 2], seed=job, steps=1)
            events = runner.run({"type": "run", "id": f"j{job}", "graph": graph,
                                 "output_dir": str(tmp_path / "out")})
            assert events[-1]["status"] == "succeeded", events
            reports.append(events[-1]["memory"])
        return reports
    finally:
        runner.close()


def rss_mb(report):
    return report["process_rss_bytes"] / 2**20


def test_alternating_checkpoints_stay_loaded_and_memory_stays_flat(models_dir, tmp_path):
    reports = alternate(models_dir, tmp_path)
    assert [r["models"]["loads"] for r in reports[:2]] == [1, 2]
    assert {r["models"]["loads"] for r in reports[WARM_UP:]} == {2}, "a model was loaded again"
    assert {m["name"] for m in reports[-1]["models"]["loaded"]} == set(CHECKPOINTS)
    # Each model holds 10 to 13 MB, so a leak of one model per job would pass 16 MB within two
    # jobs. Measured (bench/soak_memory.py): resident memory after warm-up stays within 0.1 MiB
    # over 200 jobs; 16 MB leaves a wide margin for allocator noise.
    steady = [rss_mb(r) for r in reports[WARM_UP:]]
    assert max(steady) - min(steady) < 16, steady


def test_a_budget_of_one_model_evicts_and_memory_stays_bounded(models_dir, tmp_path):
    # 1 MiB is smaller than either model: each is admitted alone, evicting the other.
    reports = alternate(models_dir, tmp_path, "--ram-budget-mb", "1")
    assert [r["models"]["loads"] for r in reports] == list(range(1, JOBS + 1)), "each job reloads"
    for job, report in enumerate(reports):
        assert [m["name"] for m in report["models"]["loaded"]] == [CHECKPOINTS[job % 2]]
    # Measured: within 2.6 MiB over 56 jobs that each load a model (the heap's free pages vary
    # with what the last load left); a model that was never freed would add 10 MB or more per job.
    steady = [rss_mb(r) for r in reports[WARM_UP:]]
    assert max(steady) - min(steady) < 16, steady


def runner_argvs(parent):
    """The command lines of `parent`'s dreamforge-runner children."""
    argvs = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:  # a process may be gone by now
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            argv = [a.decode() for a in (stat.parent / "cmdline").read_bytes().split(b"\0")]
        except (OSError, ValueError):
            continue
        if pathlib.Path(argv[0]).name == "dreamforge-runner":
            argvs.append(argv)
    return argvs


def test_the_service_hands_its_model_budgets_to_its_runners(tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_model(data_dir)
    service = Service(data_dir, "--model-vram-budget-mb", "2048",
                      env={"DREAMFORGE_MODEL_RAM_BUDGET_MB": "300"}).start()
    try:
        job = service.create_job(generate_body())
        assert service.wait_for_job(job["id"])["status"] == "succeeded"
        argvs = runner_argvs(service.process.pid)
    finally:
        service.stop()
    assert len(argvs) == 1, argvs
    argv = argvs[0]
    assert argv[argv.index("--ram-budget-mb") + 1] == "300"
    assert argv[argv.index("--vram-budget-mb") + 1] == "2048"
