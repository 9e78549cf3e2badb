"""Odd and hostile uploads through the Python API, the CLI and the live app: each gets a correct
result at its upright size or one clear error line, and the server still answers afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from corpus import Case, assert_one_clear_line, make_cases, upright_top_red
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from playground.core.errors import BadImageError
from playground.core.images import load_image
from playground.render.overlay import render
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground

CASES = make_cases()
CLI_CASES = [case for case in CASES if case.upright is None or case.name == "rotated.jpg"]
"""Every refusal, and the EXIF-rotated image: a CLI run that gets as far as a model costs ~10 s of
imports, and the Python API and the live app cover the other results."""


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for case in CASES:
        case.write(folder)
    return folder


@pytest.fixture(scope="module")
def playground() -> Playground:
    return Playground(ModelManager(weights="tiny", device="cpu"))


# ---- Python API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_python_api(case: Case, corpus_dir, playground):
    path = corpus_dir / case.name
    if case.upright is None:
        with pytest.raises(BadImageError) as info:
            load_image(path)
        assert_one_clear_line(str(info.value), case.error)
        return
    loaded = load_image(path)
    width, height = case.upright
    assert loaded.pixels.shape == (height, width, 3) and loaded.pixels.dtype == np.uint8
    assert (case.notice in loaded.notice) if case.notice else loaded.notice == ""
    semantic = playground.predict("fcn", loaded.pixels)
    assert semantic.image_size == (height, width)
    assert semantic.semantic_map.shape == (height, width)  # the mask lies on the upright image
    assert render(loaded.pixels, semantic).shape[1] == width


def test_exif_rotation_stands_the_picture_up(corpus_dir):
    pixels = load_image(corpus_dir / "rotated.jpg").pixels.astype(int)
    expected = upright_top_red().astype(int)
    assert np.abs(pixels - expected).mean() < 10  # red on top, blue below: not merely the right shape


# ---- CLI ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_runs(corpus_dir) -> dict[str, subprocess.CompletedProcess]:
    """``python -m playground predict detr FILE --weights tiny`` for each CLI case, run concurrently."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    processes = {
        case.name: subprocess.Popen(
            [sys.executable, "-m", "playground", "predict", "detr", str(corpus_dir / case.name), "--weights", "tiny"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for case in CLI_CASES
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=180)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.name for case in CLI_CASES])
def test_cli(case: Case, cli_runs):
    run = cli_runs[case.name]
    if case.upright is None:
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.startswith("error: ")
        assert_one_clear_line(run.stderr, case.error)
        return
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["image_size"] == list(case.upright)
    assert case.notice in result.get("notice", "")


# ---- the live app ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app.url, verbose=False)


def detect(client: Client, path: Path) -> list[dict]:
    """The /detection endpoint's per-model JSON for ``path`` (DETR, tiny weights)."""
    _, results = client.predict(handle_file(str(path)), ["detr"], 0.5, 0.5, api_name="/detection")
    return results


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_live_app(case: Case, corpus_dir, client):
    if case.upright is None:
        with pytest.raises(AppError) as info:
            detect(client, corpus_dir / case.name)
        assert_one_clear_line(str(info.value), case.error)
        return
    (result,) = detect(client, corpus_dir / case.name)
    assert "error" not in result, result
    assert result["image_size"] == list(case.upright)
    assert case.notice in result.get("notice", "")


def test_live_app_still_answers_a_good_request(client):
    (result,) = detect(client, EXAMPLES / "astronaut.jpg")
    assert result["model"] == "detr" and result["image_size"] == [512, 512]
