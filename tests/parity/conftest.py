"""Fixtures of the parity suite: probe calls, tokenizer folders, tiny diffusers pipelines."""
import pytest
import torch

from parity_support import (PARITY_DEVICE, PARITY_DTYPE, parity_tolerance, run_probe,
                            write_clip_tokenizer)


@pytest.fixture
def probe(tmp_path):
    def call(command, args=None, inputs=None, expect_ok=True):
        return run_probe(command, tmp_path, args, inputs, expect_ok)
    return call


@pytest.fixture(scope="session")
def parity_target():
    """(device, dtype name, relative tolerance) of the device-aware parity tests."""
    return PARITY_DEVICE, PARITY_DTYPE, parity_tolerance(PARITY_DEVICE, PARITY_DTYPE)


@pytest.fixture(scope="session")
def clip_tokenizer_dir(tmp_path_factory):
    return write_clip_tokenizer(tmp_path_factory.mktemp("clip_tokenizer"))


@pytest.fixture(scope="session")
def clip_tokenizer_2_dir(tmp_path_factory):
    return write_clip_tokenizer(tmp_path_factory.mktemp("clip_tokenizer_2"), pad_token="!")


@pytest.fixture(scope="session", params=["sd1", "sd2", "sdxl"])
def tiny_pipeline(request, tmp_path_factory):
    """(family, diffusers pipeline, saved folder) for each tiny family."""
    import tiny_models
    family = request.param
    pipe, path = tiny_models.build(family, tmp_path_factory.mktemp(f"tiny_{family}"))
    return family, pipe, path


torch.set_grad_enabled(False)
