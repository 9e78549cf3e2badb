"""The pretrained path, end to end, on model caches in the real file layouts (tests/hub_layout.py),
offline: every Hugging Face checkpoint (tiny builds written by save_pretrained into the hub cache at
its revision) and every torch hub checkpoint (full-size random state dicts under torch hub's file
names), through the CLI, the app and its API, with HF_HUB_OFFLINE=1.

The layouts cover a revision branch (DETR's no_timm), a .bin-only snapshot (DETR-panoptic), a
sharded snapshot (MaskFormer), a float16 config (D-FINE), a gated repo (SAM 3), a repo two model
classes share (SAM 2.1, SAM 3), a hub id in --checkpoint, a half-finished download, and checkpoints
that do not fit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import EXAMPLES, ROOT, start_app
from gradio_client import Client, handle_file
from hub_layout import hub_snapshot, snapshot_dir, torch_hub_file

from playground.core.hub_cache import files_to_fetch
from playground.core.registry import REGISTRY

HF_KEYS = sorted({spec.checkpoint: key for key, spec in REGISTRY.items() if spec.source == "huggingface"}.values())
TORCH_KEYS = sorted(key for key, spec in REGISTRY.items() if spec.source in ("torchvision", "torchhub"))
LAYOUT_OPTIONS = {
    "detr-panoptic": {"safetensors": False},
    "maskformer": {"shard_size": "200KB"},
    "d-fine": {"dtype": torch.float16},
}
IMAGE = str(EXAMPLES / "chelsea.jpg")


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[str, str]:
    """HF_HOME and TORCH_HOME holding every checkpoint, and the environment that reads them offline."""
    root = tmp_path_factory.mktemp("caches")
    hf_home, torch_home = root / "hf", root / "torch"
    for key in HF_KEYS:
        hub_snapshot(hf_home, key, **LAYOUT_OPTIONS.get(key, {}))
    hub_snapshot(hf_home, "sam2", repo="facebook/sam2.1-hiera-small")  # for --checkpoint sam2=<hub id>
    for key in TORCH_KEYS:
        torch_hub_file(torch_home, key)
    return {**os.environ, "HF_HOME": str(hf_home), "TORCH_HOME": str(torch_home), "HF_HUB_OFFLINE": "1"}


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "playground", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


PREDICT_ALL = """
import json, sys
from playground.cli import main
from playground.core.registry import REGISTRY
out = sys.argv[1]
flags = {"prompt": ["--points", "200,150,1"], "text": ["--text", "cat"]}
codes = {}
for key, spec in REGISTRY.items():
    if "video" in spec.tasks:
        continue
    task = spec.tasks[0]
    codes[key] = main(["predict", key, sys.argv[2], "--weights", "pretrained", "--precision", "fp32",
                       "--json", f"{out}/{key}.json", *flags.get(task, [])])
print(json.dumps(codes))
"""


def test_every_checkpoint_loads_through_the_cli(caches, tmp_path) -> None:
    """`predict` on every image model and `track` on the video models, with the weights cached in
    their real layouts and no network: each writes its JSON, labelled pretrained."""
    result = subprocess.run(
        [sys.executable, "-c", PREDICT_ALL, str(tmp_path), IMAGE],
        cwd=ROOT,
        env=caches,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    assert codes and all(code == 0 for code in codes.values()), (codes, result.stderr[-3000:])
    for key in codes:
        written = json.loads((tmp_path / f"{key}.json").read_text())
        assert written["weights"] == "pretrained" and written["precision"] == "fp32", written
    assert json.loads((tmp_path / "detr.json").read_text())["checkpoint"].startswith("facebook/detr-resnet-50")
    for key in ("sam2-video", "sam3-video"):
        text = ["--text", "cat"] if key == "sam3-video" else ["--points", "150,120,1"]
        model = "sam3" if key == "sam3-video" else "sam2"
        out = tmp_path / f"{key}.mp4"
        tracked = cli(caches, "track", str(EXAMPLES / "chelsea_pan.mp4"), "--model", model, "--fps", "1", *text,
                      "--out", str(out))  # fmt: skip
        assert tracked.returncode == 0, tracked.stderr[-2000:]
        assert (tmp_path / "tracks.json").is_file() and out.is_file()


def test_models_lists_every_checkpoint_as_cached(caches) -> None:
    listing = cli(caches, "models")
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:] if line.strip()}
    not_cached = [key for key in REGISTRY if key in rows and " yes " not in rows[key]]
    assert not not_cached, listing.stdout


def start_cached_app(caches: dict[str, str], tmp_path: Path, monkeypatch, *args: str):
    """The app with ``--weights pretrained --precision fp32 *args``, reading the cached layouts offline."""
    for name in ("HF_HOME", "TORCH_HOME", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(name, caches[name])  # start_app passes this process's environment on
    return start_app(tmp_path, "--weights", "pretrained", "--precision", "fp32", *args)


def test_the_app_and_api_run_on_the_cached_checkpoints(caches, tmp_path, monkeypatch) -> None:
    app = start_cached_app(caches, tmp_path, monkeypatch)
    try:
        client = Client(app.url, verbose=False, httpx_kwargs={"timeout": 300})
        image = handle_file(IMAGE)
        calls = [
            ((image, ["fcn", "unet"], 0.5, 0.5), "/semantic"),
            ((image, ["detr", "d-fine", "retinanet", "ssdlite"], 0.5, 0.5), "/detection"),
            ((image, ["mask-rcnn", "maskformer"], 0.5, 0.5), "/instance"),
            ((image, ["detr-panoptic", "mask2former", "eomt"], 0.5, 0.5), "/panoptic"),
            ((image, [[200, 150, 1]], None), "/prompt"),
            ((image, "cat", 0.35, 0.25, ["grounded-sam", "owlv2-sam", "sam3"]), "/text"),
        ]
        for args, api_name in calls:
            _, results = client.predict(*args, api_name=api_name)
            errors = [f"{r.get('model')}: {r['error']}" for r in results if "error" in r]
            assert not errors, (api_name, errors)
            assert all(r["weights"] == "pretrained" for r in results), api_name
    finally:
        app.process.terminate()
        app.process.wait(timeout=30)


def test_a_hub_id_in_checkpoint_loads_that_repo_and_names_it(caches, tmp_path) -> None:
    out = tmp_path / "sam2.json"
    asked = cli(caches, "predict", "sam2", IMAGE, "--points", "200,150,1", "--checkpoint",
                "sam2=facebook/sam2.1-hiera-small", "--json", str(out))  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    assert json.loads(out.read_text())["checkpoint"] == "facebook/sam2.1-hiera-small"
    unknown = cli(caches, "predict", "sam2", IMAGE, "--points", "200,150,1", "--checkpoint", "sam2=facebook/nope@v2")
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
    assert "facebook/nope@v2" in unknown.stderr and "not in the Hugging Face cache" in unknown.stderr


def test_a_half_finished_download_is_not_cached_and_says_what_is_missing(caches, tmp_path) -> None:
    hf_home = tmp_path / "hf"
    snapshot = hub_snapshot(hf_home, "eomt")
    (snapshot / "model.safetensors").unlink()
    sharded = hub_snapshot(hf_home, "maskformer", shard_size="200KB")
    next(sharded.glob("model-00002-of-*.safetensors")).unlink()
    env = {**caches, "HF_HOME": str(hf_home)}
    for key, missing in (("eomt", "the weights"), ("maskformer", "weight shards")):
        result = cli(env, "predict", key, IMAGE)
        assert result.returncode == 2, result.stderr
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1 and "unfinished download" in line and missing in line, line
        assert f"download {key}" in line and "--weights tiny" in line
    listing = cli(env, "models")
    assert all(" no " in row for row in listing.stdout.splitlines() if row.split()[:1] in (["eomt"], ["maskformer"]))


def test_a_gated_repo_says_how_to_get_access_and_loads_once_cached(caches, tmp_path) -> None:
    empty = {**caches, "HF_HOME": str(tmp_path / "empty")}
    result = cli(empty, "predict", "sam3", IMAGE, "--text", "cat")
    assert result.returncode == 2 and "gated: ask for access on https://huggingface.co/facebook/sam3" in result.stderr


def test_a_checkpoint_that_does_not_fit_is_one_line_naming_it_and_its_keys(caches, tmp_path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"backbone.conv1.weight": torch.zeros(3), "head.extra": torch.zeros(1)}, wrong)
    result = cli(caches, "predict", "fcn", IMAGE, "--checkpoint", f"fcn={wrong}")
    line = result.stderr.strip()
    assert result.returncode == 2 and len(line.splitlines()) == 1, line
    assert str(wrong) in line and "does not fit" in line and "head.extra" in line, line
    # a Hugging Face folder with a weight removed: missing keys, named
    folder = snapshot_dir(tmp_path / "hf", "me/detr-broken", None)
    hub_snapshot(tmp_path / "hf", "detr", repo="me/detr-broken")
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    dropped = sorted(state)[0]
    save_file({k: v for k, v in state.items() if k != dropped}, folder / "model.safetensors", metadata={"format": "pt"})
    result = cli(caches, "predict", "detr", IMAGE, "--checkpoint", f"detr={folder}")
    assert result.returncode == 2 and dropped in result.stderr and "does not fit" in result.stderr, result.stderr


def test_download_fetches_only_what_the_loader_reads() -> None:
    repo = ["config.json", "preprocessor_config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5",
            "flax_model.msgpack", "onnx/model.onnx", "sam2.1_hiera_tiny.pt", "README.md", ".gitattributes"]  # fmt: skip
    assert files_to_fetch(repo, tokenizer=False) == ["config.json", "preprocessor_config.json", "model.safetensors"]
    bin_only = ["config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
                "pytorch_model.bin.index.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json"]  # fmt: skip
    fetched = files_to_fetch(bin_only, tokenizer=True)
    assert set(fetched) == set(bin_only)
    assert "tokenizer.json" not in files_to_fetch(bin_only, tokenizer=False)


FLOAT32_CHECK = """
from playground.runtime.manager import ModelManager
for precision in ("fp32", "bf16"):
    with ModelManager(weights="pretrained", device="cpu", precision=precision).use("d-fine") as (adapter, _):
        print(precision, sorted({str(p.dtype) for p in adapter.model.parameters()}))
"""


def test_a_float16_config_loads_in_the_precision_the_app_chose(caches) -> None:
    snapshot = next((Path(caches["HF_HOME"]) / "hub" / "models--ustc-community--dfine-small-coco").glob("snapshots/*"))
    assert json.loads((snapshot / "config.json").read_text())["dtype"] == "float16"
    result = subprocess.run([sys.executable, "-c", FLOAT32_CHECK], cwd=ROOT, env=caches, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["fp32"] == "['torch.float32']"
    assert lines["bf16"] == "['torch.bfloat16', 'torch.float32']"  # the backbone in bf16, heads in float32


def test_bad_checkpoints_fail_alone_in_the_api(caches, tmp_path, monkeypatch) -> None:
    """An unknown hub id, a checkpoint that does not fit and a half-finished download each answer one
    line in their model's result; the other models in the same request still run."""
    hf_home = Path(caches["HF_HOME"])
    partial = hub_snapshot(hf_home, "eomt", repo="me/eomt-partial")
    (partial / "model.safetensors").unlink()
    wrong = tmp_path / "wrong.pth"
    torch.save({"head.extra": torch.zeros(1)}, wrong)
    bad = ["detr=facebook/nope", f"fcn={wrong}", "eomt=me/eomt-partial"]
    app = start_cached_app(caches, tmp_path, monkeypatch, *[arg for value in bad for arg in ("--checkpoint", value)])
    try:
        client = Client(app.url, verbose=False, httpx_kwargs={"timeout": 300})
        image = handle_file(IMAGE)
        expected = {
            "/detection": (["detr", "d-fine"], "facebook/nope", "not in the Hugging Face cache"),
            "/semantic": (["fcn", "unet"], str(wrong), "does not fit"),
            "/panoptic": (["eomt", "mask2former"], "me/eomt-partial", "unfinished download"),
        }
        for api_name, (models, named, why) in expected.items():
            _, (failed, fine) = client.predict(image, models, 0.5, 0.5, api_name=api_name)
            line = failed["error"]
            assert named in line and why in line and "\n" not in line, line
            assert "error" not in fine and fine["model"] == models[1], fine
    finally:
        app.process.terminate()
        app.process.wait(timeout=30)


def test_download_asks_the_hub_for_the_loader_files_only(monkeypatch) -> None:
    import huggingface_hub

    from playground.core import weights
    from playground.core.registry import get_spec

    listed = ["config.json", "preprocessor_config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5"]
    asked = {}
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo, revision=None: listed)
    monkeypatch.setattr(
        huggingface_hub, "snapshot_download", lambda repo, revision, allow_patterns: asked.update(locals()) or "/x"
    )
    assert weights.download(get_spec("detr")) == "/x"
    assert asked["repo"] == "facebook/detr-resnet-50" and asked["revision"] == "no_timm"
    assert asked["allow_patterns"] == ["config.json", "preprocessor_config.json", "model.safetensors"]


@pytest.mark.browser
def test_bad_checkpoints_fail_alone_in_the_ui(caches, tmp_path, monkeypatch, browser) -> None:
    """The same three bad checkpoints in the Detection, Semantic and Panoptic tabs: the failing model's
    panel says one line naming its checkpoint, the other model's panel shows its overlay."""
    from browser_helpers import open_tab, pick_example, run_and_wait, select_models

    partial = hub_snapshot(Path(caches["HF_HOME"]), "eomt", repo="me/eomt-partial-ui")
    (partial / "model.safetensors").unlink()
    wrong = tmp_path / "wrong.pth"
    torch.save({"head.extra": torch.zeros(1)}, wrong)
    bad = ["detr=facebook/nope", f"fcn={wrong}", "eomt=me/eomt-partial-ui"]
    app = start_cached_app(caches, tmp_path, monkeypatch, *[arg for value in bad for arg in ("--checkpoint", value)])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(app.url, wait_until="load")
        page.wait_for_selector("#semantic-run", timeout=30_000)
        tabs = {
            "detection": ("Detection", ["DETR ResNet-50", "D-FINE S"], "facebook/nope"),
            "semantic": ("Semantic", ["FCN ResNet-50", "U-Net (Carvana)"], "does not fit"),
            "panoptic": ("Panoptic", ["EoMT ViT-B (COCO panoptic)", "Mask2Former Swin-T"], "unfinished download"),
        }
        for task, (title, models, why) in tabs.items():
            open_tab(page, title)
            pick_example(page, task)
            select_models(page, task, [*models, *(f"{title} (weights not downloaded)" for title in models)])
            run_and_wait(page, task, 1)
            page.wait_for_function(  # both panels are done: one says why, the other has its caption too
                "([task, why]) => { const done = [...document.querySelectorAll(`[id^='${task}-caption-']`)]"
                ".filter(caption => caption.innerText.trim()); return done.length === 2 &&"
                " done.some(caption => caption.innerText.includes(why)); }",
                arg=[task, why],
                timeout=180_000,
            )
            captions = [c.inner_text() for c in page.locator(f"[id^='{task}-caption-']").all()]
            failed = [c for c in captions if why in c]
            assert len(failed) == 1 and len(captions) == 2, captions  # the other model's panel is a result
            assert page.locator(f"[id^='{task}-panel-'] img").count() >= 1
    finally:
        context.close()
        app.process.terminate()
        app.process.wait(timeout=30)
