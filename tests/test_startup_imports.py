"""The page is served before the heavy libraries load: building the whole UI imports none of them.

torch, transformers and supervision take seconds to import; app.py imports them in a background
thread once a page has loaded (`app.Preload`). A module-level import of any of them on the
UI's import path shows up here, not only as a slower start-up in the bench.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

HEAVY = ("torch", "transformers", "supervision", "torchvision", "av")
"""PyAV (``av``) takes 40 ms, not seconds, but only the Video tab's requests need it."""

BUILD = """
import json, sys
import app
from playground.runtime.service import Playground
from playground.ui.app import build_demo
build_demo(Playground(app.manager_from_args(app.parse_args(["--weights", "tiny"]))))
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {heavy})))
"""


def test_building_the_ui_imports_no_heavy_library():
    code = BUILD.format(heavy=set(HEAVY))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
