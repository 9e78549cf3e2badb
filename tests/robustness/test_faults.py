"""A corrupt checkpoint in the cache: a clear error for that model, and the others keep working.

(Out-of-memory retry and a free lock after a raising model are tested in tests/test_manager.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import EXAMPLES, ROOT

from models.parts.unet_network import CARVANA_WIDTHS, UNet
from playground.core.registry import get_spec
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground

FCN_FILE = "fcn_resnet50_coco-1167a1af.pth"
"""Where torch hub keeps the FCN checkpoint: ``$TORCH_HOME/hub/checkpoints/<this>``."""


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A temporary torch hub cache holding a corrupt FCN checkpoint and a valid (random) U-Net one."""
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / FCN_FILE).write_bytes(b"PK\x03\x04 these are not the weights you are looking for" * 100)
    unet_file = os.path.basename(get_spec("unet").checkpoint)
    torch.save(UNet(3, 2, CARVANA_WIDTHS).state_dict(), checkpoints / unet_file)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_corrupt_checkpoint_fails_alone(torch_home):
    playground = Playground(ModelManager(weights="pretrained", device="cpu"))
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)
    fcn, unet = playground.predict_many(["fcn", "unet"], image, task="semantic")
    assert fcn.prediction is None
    assert FCN_FILE in fcn.error and "corrupt" in fcn.error and "\n" not in fcn.error
    assert unet.error is None and unet.prediction.semantic_map.shape == (64, 96)
    # Asking again gives the same clear error (nothing half-loaded stays behind), and U-Net still runs.
    assert playground.predict_many(["fcn"], image[:48], task="semantic")[0].error == fcn.error
    assert [m.key for m in playground.manager.loaded] == ["unet"]
    assert playground.predict("unet", image[:48]).semantic_map.shape == (48, 96)


def test_corrupt_checkpoint_through_the_cli(torch_home):
    """Exit status 2 and one line naming the file (a working model through the CLI: test_bad_images)."""
    command = [sys.executable, "-m", "playground", "predict", "fcn", str(EXAMPLES / "astronaut.jpg")]
    env = {**os.environ, "TORCH_HOME": str(torch_home), "HF_HUB_OFFLINE": "1"}
    failed = subprocess.run(
        [*command, "--weights", "pretrained"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert failed.returncode == 2 and failed.stdout == ""
    (line,) = failed.stderr.strip().splitlines()
    assert line.startswith("error: ") and FCN_FILE in line and "corrupt" in line
