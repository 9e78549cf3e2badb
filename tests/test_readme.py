"""The README stays true: its first block gives the two commands, and it lists every model."""

from __future__ import annotations

import re

from conftest import ROOT

from playground.core.registry import REGISTRY

README = (ROOT / "README.md").read_text()


def test_first_block_after_the_front_matter_holds_the_install_and_test_commands():
    body = README.split("---", 2)[2]
    first_block = re.search(r"```bash\n(.*?)```", body, re.S).group(1).strip().splitlines()
    assert len(first_block) == 2
    assert "pip install -r requirements.txt" in first_block[0] and "app.py" in first_block[0]
    assert first_block[1].startswith(".venv/bin/python -m pytest")


def test_every_registry_model_is_in_the_model_table():
    models_section = README.split("## Models", 1)[1].split("\n## ", 1)[0]
    table_keys = set(re.findall(r"^\| `([a-z0-9-]+)` \|", models_section, re.M))
    assert table_keys == set(REGISTRY)


def test_space_front_matter_names_the_app_and_gradio_version():
    import gradio

    front = README.split("---", 2)[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front
    assert f"sdk_version: {gradio.__version__}" in front
