"""The layers: imports run one way (core <- models <- the rest), with no cycle, one folder per
concern, and files stay small.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: the graph is
read from the source with `ast`, not from what happens to be imported at run time.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("playground", "models")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` imports anywhere in its source (a package import counts as it)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in modules:
                found.add(name)
    found.discard(module_name(path))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def test_core_imports_only_core(graph) -> None:
    for name, targets in graph.items():
        if name.startswith("playground.core"):
            assert all(t.startswith("playground.core") for t in targets), (name, targets)


def test_models_import_only_core_and_models(graph) -> None:
    for name, targets in graph.items():
        if name.startswith("models"):
            allowed = ("playground.core", "models")
            assert all(t.startswith(allowed) for t in targets), (name, targets)


def test_nothing_above_models_imports_an_adapter(graph) -> None:
    """The rest of playground names adapters only by the spec table's "module:Class" strings."""
    for name, targets in graph.items():
        if name.startswith("playground") and not name.startswith("playground.core"):
            assert not any(t.startswith("models") for t in targets), (name, targets)


def test_no_import_cycle(graph) -> None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, f"import cycle: {' -> '.join([*visiting[visiting.index(name) :], name])}"
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_the_check_finds_a_cycle() -> None:
    """The cycle check itself can fail: a two-module cycle is reported."""
    with pytest.raises(AssertionError, match="import cycle: a -> b -> a"):
        test_no_import_cycle({"a": {"b"}, "b": {"a"}})


def test_files_stay_small() -> None:
    for path in (ROOT / "models").rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 250, path
    for path in (ROOT / "playground").rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path


FOLDERS = {
    "playground": {"__init__", "__main__", "cli"},
    "playground/core": None,
    "playground/runtime": {"__init__", "manager", "service", "composites", "heap", "zerogpu", "example_cache"},
    "playground/render": {"__init__", "overlay", "legend", "views", "compare", "export"},
    "playground/explain": {"__init__", "views", "drawing"},
    "playground/scoring": {"__init__", "truth", "metrics", "views", "cli"},
    "playground/video": None,
    "playground/dataengine": None,
    "playground/ui": None,
    "playground/backends": None,
    "playground/bench": None,
    "models": None,
    "models/layers": None,
    "models/video": {"__init__", "session", "sam2", "sam3"},
    "models/parts": None,
    "models/explain": None,
}
"""The concern folders and, where the set is closed, the only modules each may hold."""


def test_one_folder_per_concern() -> None:
    folders = {str(p.parent.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert folders == set(FOLDERS), folders ^ set(FOLDERS)
    for folder, allowed in FOLDERS.items():
        if allowed is not None:
            held = {p.stem for p in (ROOT / folder).glob("*.py")}
            assert held <= allowed, (folder, held - allowed)


def test_models_top_level_holds_adapters_only() -> None:
    """Each module directly in ``models/`` (but the contract, ``base``) defines an adapter class:
    helpers live in ``layers/`` (faster layers), ``parts/`` (what a family shares) or ``video/``."""
    for path in (ROOT / "models").glob("*.py"):
        if path.stem in ("__init__", "base"):
            continue
        tree = ast.parse(path.read_text())
        bases = {
            getattr(base, "id", getattr(base, "attr", ""))
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            for base in node.bases
        }
        assert any(name.endswith("Adapter") for name in bases), f"{path.name} holds no adapter"


def test_faster_layers_record_their_patch() -> None:
    """Each faster layer declares the `Patch` an adapter records when it applies it."""
    for path in (ROOT / "models/layers").glob("*.py"):
        if path.stem in ("__init__", "forward_swap", "image_masks"):
            continue  # the binding helper itself; and the mask paste, a function adapters call
        assert "Patch(" in path.read_text(), f"{path.name} declares no Patch"


MEASURED = re.compile(
    r"\bthis (?:AMX|AVX[\w-]*|2-core|sandbox|host)\b"  # one machine named as if it were every machine
    r"|\d(?:\.\d+)?\s?(?:ms|s|GB|MB)\s?(?:->|→)\s?\d"  # "30 -> 5 ms": a measured before and after
    r"|\d(?:\.\d+)?x faster|\bmeasured\b[^.]*\d\s?(?:ms|s)\b"
)
"""How a measured timing reads in prose; measured figures live in docs/performance.md with their host."""


def docstrings_and_comments(path: Path) -> list[str]:
    source = path.read_text()
    found = [
        ast.get_docstring(node) or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    found += [
        token.string
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    return found


def test_no_docstring_or_comment_quotes_a_measured_timing() -> None:
    assert MEASURED.search("a global block took 30 -> 5 ms on this AMX CPU")  # the check can fail
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)!r}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for text in docstrings_and_comments(path)
        for match in MEASURED.finditer(text)
    ]
    assert not offenders, "\n".join(offenders)
