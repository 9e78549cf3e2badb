"""The data engine's job on Ray Data (`playground.backends.ray_label`) against the local job, on one
two-CPU cluster on 127.0.0.1 for the module, with tiny grounded-sam.

One Ray job, two actors, labels a folder of the bundled photos, a truncated JPEG, a text file, a
duplicate and two images of their own: the first image any actor takes kills that actor once (a flag
file), `DOOMED` kills its actor on every try, and the labeler raises on `RAISES`. The tests read that
one job. A second job, ``python -m playground label --backend ray``, is killed (SIGKILL) part-way and
run again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import job_helpers as helpers
import numpy as np
import pytest
from conftest import EXAMPLES
from job_helpers import PHOTOS, kill_part_way
from PIL import Image

from playground.core.images import image_digest
from playground.dataengine import job as local_job
from playground.dataengine.exports import write_report
from playground.dataengine.intake import decode, list_folder
from playground.dataengine.labelers import Labeler, Labelled, make_labeler
from playground.dataengine.store import STORE_NAME, JobStore

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs pip install -r requirements-ray.txt"),
]

ROOT = Path(__file__).resolve().parents[1]
MODEL, CLASSES = "grounded-sam", "person, cat"
TRIES = 2
DOOMED = "doomed.png"
RAISES = "raises.png"


def make_folder(folder: Path) -> Path:
    """`job_helpers.make_folder`'s files, with `DOOMED` and `RAISES` (the astronaut mirrored and upside
    down: pictures of their own)."""
    helpers.make_folder(folder)
    with Image.open(EXAMPLES / "astronaut.jpg") as image:
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / DOOMED)
        image.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(folder / RAISES)
    return folder


class Crashing:
    """A labeler whose process dies (``os._exit``) on the first image any actor gives it while the
    file ``flag`` exists (it removes the flag first), and on every try at the image ``doomed`` (a
    digest): a worker killed mid-image, as by the kernel's OOM killer. It raises on the image
    ``raises``. Each one built (an actor started or restarted) adds a line to the file ``starts``."""

    def __init__(self, build: Callable[[], Labeler], flag: str, doomed: str, raises: str, starts: str) -> None:
        self.labeler = build()
        self.flag, self.doomed, self.raises = flag, doomed, raises
        with open(starts, "a") as log:
            log.write(f"{os.getpid()}\n")

    def label(self, pixels: np.ndarray, size: tuple[int, int] | None = None) -> Labelled:
        digest = image_digest(pixels)
        if digest == self.doomed:
            os._exit(1)
        if digest == self.raises:
            raise RuntimeError("no labels for this one")
        try:
            os.remove(self.flag)
        except FileNotFoundError:
            pass
        else:
            os._exit(1)
        return self.labeler.label(pixels, size)


class WaitsForTheRest:
    """A labeler that holds the image ``slow`` (a digest) until ``others`` other images were labelled
    (lines in the file ``done``, one per image), up to ``patience`` seconds, then writes whether they
    all were to ``done`` + ``.slow``."""

    def __init__(self, build: Callable[[], Labeler], slow: str, others: int, done: str, patience: float) -> None:
        self.labeler = build()
        self.slow, self.others, self.done, self.patience = slow, others, done, patience

    def label(self, pixels: np.ndarray, size: tuple[int, int] | None = None) -> Labelled:
        if image_digest(pixels) != self.slow:
            labelled = self.labeler.label(pixels, size)
            with open(self.done, "a") as log:
                log.write("labelled\n")
            return labelled
        deadline = time.monotonic() + self.patience
        while self.finished() < self.others and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(self.done + ".slow", "w") as log:
            log.write(f"{self.finished()} labelled meanwhile")
        return self.labeler.label(pixels, size)

    def finished(self) -> int:
        return len(open(self.done).read().split()) if os.path.exists(self.done) else 0


def annotations_by_image(store: JobStore) -> dict[str, list[tuple]]:
    """Image digest -> its annotations as comparable tuples (class, score, box, RLE), sorted."""
    found: dict[str, list[tuple]] = {}
    for a in store.annotations():
        found.setdefault(a.digest, []).append((a.class_name, a.score, a.box, json.dumps(a.rle, sort_keys=True)))
    return {digest: sorted(rows) for digest, rows in found.items()}


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """The local job with one torch thread, as each actor runs (a reduction split over threads may
    round differently)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("ray-job") / "photos")


@pytest.fixture(scope="module")
def labeler(one_thread) -> Labeler:
    from playground.runtime.manager import ModelManager
    from playground.runtime.service import Playground

    return make_labeler(Playground(ModelManager(weights="tiny", device="cpu")), MODEL, CLASSES)


@pytest.fixture(scope="module")
def local(folder: Path, labeler: Labeler, tmp_path_factory) -> Iterator[JobStore]:
    """The folder labelled by the local job (`playground.dataengine.job.run_job`)."""
    store = JobStore(tmp_path_factory.mktemp("local") / STORE_NAME)
    local_job.run_job(folder, list_folder(folder), labeler, store)
    yield store
    store.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A two-CPU Ray cluster on 127.0.0.1, joined by this process; yields its address."""
    from playground.backends import before_ray

    before_ray(None)
    import ray
    import ray.cloudpickle

    from playground.backends.ray_serve import start_cluster

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test labelers: workers cannot import us
    address = start_cluster(None, num_cpus=2)
    try:
        yield address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_job(cluster: str, folder: Path, labeler: Labeler, tmp_path_factory):
    """The folder labelled on Ray by two actors with `Crashing` labelers, `TRIES` tries per file;
    yields (store, report.json as a dict, the job's folder, the job's `JobResult`)."""
    from playground.backends import ray_label
    from playground.runtime.manager import ModelManager

    root = tmp_path_factory.mktemp("ray")
    flag = root / "kill-once"
    flag.touch()
    doomed, raises = (image_digest(decode(folder, name).pixels) for name in (DOOMED, RAISES))
    remote = ray_label.remote_labeler(labeler, partial(ModelManager, weights="tiny", device="cpu"))
    build = partial(Crashing, remote, str(flag), doomed, raises, str(root / "starts"))
    options = ray_label.RayOptions(workers=2, cpus=0.5, tries=TRIES)
    store = JobStore(root / STORE_NAME)
    result = ray_label.run_job(folder, list_folder(folder), labeler, store, build=build, options=options)
    report = json.loads(write_report(store, root / "report.json").read_text())
    yield store, report, root, result
    store.close()


def test_ray_labels_as_the_local_job(ray_job, local: JobStore) -> None:
    """Every image but the two made to fail has the local job's annotations, each labelled once."""
    store, _, _, result = ray_job
    expected = annotations_by_image(local)
    for name in (DOOMED, RAISES):
        expected.pop(local.file(name).digest)
    assert annotations_by_image(store) == expected
    assert any(expected.values()), "tiny grounded-sam finds boxes at its own threshold"
    assert result.labelled == len(PHOTOS)
    assert store.counts() == local.counts() | {"labelled": len(PHOTOS), "skipped": 4}


def test_a_killed_actor_is_replaced_and_its_image_labelled(ray_job) -> None:
    """The first image's actor died (the flag is gone) and was restarted, and the image was tried again
    there: two actors started, then at least one restart for that image and one for each try at the
    doomed image after its first."""
    store, _, root, _ = ray_job
    assert not (root / "kill-once").exists()
    assert [image.state for image in store.images()] == ["labelled"] * len(PHOTOS)
    assert len((root / "starts").read_text().split()) >= 2 + 1 + (TRIES - 1)


def test_an_image_that_kills_its_worker_on_every_try_is_reported(ray_job) -> None:
    store, report, _, _ = ray_job
    reason = f"{DOOMED}: failed after {TRIES} tries (its Ray worker died each time)"
    assert store.file(DOOMED).reason == reason
    assert {"name": DOOMED, "reason": reason} in report["skipped"]


def test_an_error_labelling_one_image_skips_that_image(ray_job) -> None:
    store, report, _, _ = ray_job
    reason = f"{RAISES}: labelling failed (RuntimeError: no labels for this one)"
    assert (store.file(RAISES).state, store.file(RAISES).reason) == ("skipped", reason)
    assert {"name": RAISES, "reason": reason} in report["skipped"]


def test_corrupt_files_are_skipped_with_their_reasons(ray_job, local: JobStore) -> None:
    store, report, _, _ = ray_job
    for name in ("broken.jpg", "notes.txt"):
        assert store.file(name).state == "skipped"
        assert store.file(name).reason == local.file(name).reason
    assert "truncated" in store.file("broken.jpg").reason
    assert {entry["name"] for entry in report["skipped"]} == {"broken.jpg", "notes.txt", DOOMED, RAISES}
    assert [entry["name"] for entry in report["duplicates"]] in (["zz_chelsea_again.jpg"], ["chelsea.jpg"])


def test_a_killed_job_resumes_to_the_local_annotations(cluster: str, folder: Path, local: JobStore, tmp_path) -> None:
    """``label --backend ray`` on the module's cluster, killed (SIGKILL) after two images, then run again:
    it labels only what was left, and ends with the local job's annotations."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "playground", "label", str(folder), "--model", MODEL, "--classes", CLASSES]
    command += ["--weights", "tiny", "--device", "cpu", "--out", str(out), "--format", "coco"]
    command += ["--backend", "ray", "--address", cluster, "--workers", "1"]
    first = kill_part_way(command, ROOT, out, 2, patience=240)
    distinct = len(PHOTOS) + 2
    assert 2 <= first < distinct, "the job should be killed part-way"
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"({distinct - first} this run" in again.stdout
    with JobStore(out / STORE_NAME) as store:
        assert annotations_by_image(store) == annotations_by_image(local)
        assert store.counts() == local.counts()


def test_a_slow_image_holds_up_nothing_else(cluster: str, labeler: Labeler, tmp_path) -> None:
    """Two actors, the first file held until every other file is labelled: the other actor takes them
    all, one after another, none queued behind the held one."""
    from playground.backends import ray_label
    from playground.runtime.manager import ModelManager

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copyfile(EXAMPLES / name, folder / name)
    slow = image_digest(decode(folder, PHOTOS[0]).pixels)
    done = tmp_path / "done"
    remote = ray_label.remote_labeler(labeler, partial(ModelManager, weights="tiny", device="cpu"))
    build = partial(WaitsForTheRest, remote, slow, len(PHOTOS) - 1, str(done), 120.0)
    options = ray_label.RayOptions(workers=2, cpus=0.5)
    with JobStore(tmp_path / STORE_NAME) as store:
        result = ray_label.run_job(folder, PHOTOS, labeler, store, build=build, options=options)
    assert result.labelled == len(PHOTOS)
    assert (tmp_path / "done.slow").read_text() == f"{len(PHOTOS) - 1} labelled meanwhile"
