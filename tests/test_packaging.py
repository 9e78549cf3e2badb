"""The project installs as a package: ``pip install .`` into a fresh venv gives a ``playground``
command equal to ``python -m playground``, and pyproject's dependencies are requirements.txt's runtime half."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def runtime_requirements() -> list[str]:
    """requirements.txt's lines above its ``# tests`` comment, without comments."""
    lines = ROOT.joinpath("requirements.txt").read_text().split("# tests")[0].splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_dependencies_equal_the_runtime_requirements() -> None:
    project = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["project"]
    assert sorted(project["dependencies"]) == sorted(runtime_requirements())
    assert project["scripts"]["playground"] == "playground.cli:main"


def test_pip_install_into_a_fresh_venv_gives_the_command(tmp_path: Path) -> None:
    """A copy of the source, installed with pip (no build isolation, no dependencies: they come from
    this venv's site-packages through a .pth file, as no download is possible here), then
    ``playground models`` run from another folder, where only the installed copy can be imported."""
    source = tmp_path / "source"
    for name in ("playground", "models"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    subprocess.run([*install, "--no-build-isolation", str(source)], check=True, cwd=tmp_path)
    assert Path(site, "playground", "cli.py").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [python, "-c", "import playground, models; print(playground.__file__, models.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=elsewhere,
    ).stdout
    assert all(path.startswith(site) for path in where.split()), where
    listing = subprocess.run(
        [venv / "bin" / "playground", "models"], capture_output=True, text=True, cwd=elsewhere, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    module = subprocess.run(
        [python, "-m", "playground", "models"], capture_output=True, text=True, cwd=elsewhere, timeout=120
    )
    assert listing.stdout == module.stdout
    assert all(key in listing.stdout for key in ("fcn", "sam2-video", "grounded-sam"))
