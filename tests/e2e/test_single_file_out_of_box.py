"""A single-file checkpoint dropped into <data>/models/checkpoints generates out of the box: with no
tokenizer setting, the runner tokenizes with the standard CLIP vocabulary that scripts/setup
installs beside the binaries (build/share/dreamforge/clip for build/bin)."""
import io
import pathlib
import sys

import pytest
from PIL import Image

from comfy_client import ComfyClient
from e2e_support import BIN
from service_support import Service, comfy_graph

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parity"))

INSTALLED_VOCABULARY = BIN.parent / "share" / "dreamforge" / "clip"


def write_single_file_checkpoint(family, path, work_dir):
    """A tiny random-weight checkpoint of `family` in the original single-file layout, its text
    encoders embedding the real 49408-token CLIP vocabulary (32 wide)."""
    import single_file
    import tiny_models
    pipe, _ = tiny_models.build(family, work_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    single_file.pipeline_to_single_file(pipe, family, path)


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_a_dropped_in_single_file_checkpoint_generates_without_a_vocabulary_setting(bin_dir, tmp_path, family):
    if not (INSTALLED_VOCABULARY / "vocab.json").is_file():
        pytest.fail(f"no CLIP vocabulary in {INSTALLED_VOCABULARY}: run scripts/setup")
    data_dir = tmp_path / "data"
    name = f"tiny-{family}.safetensors"
    write_single_file_checkpoint(family, data_dir / "models" / "checkpoints" / name, tmp_path / "pipe")
    service = Service(data_dir)
    service.env.pop("DREAMFORGE_CLIP_VOCAB_DIR", None)
    service.start()
    try:
        info = service.get("/object_info/CheckpointLoaderSimple").json()
        assert name in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
        client = ComfyClient(service)
        answer = client.queue(comfy_graph(ckpt=name, steps=2, prefix="single"))
        assert answer.status_code == 200, answer.text
        prompt_id = answer.json()["prompt_id"]
        kinds = [m["type"] for m in client.wait(prompt_id)]
        client.close()
        assert "execution_success" in kinds, client.history(prompt_id)["status"]
        images = client.images(prompt_id)
        assert len(images) == 1 and Image.open(io.BytesIO(images[0])).size == (64, 64)
    finally:
        service.stop()
