"""The data engine end to end: `python -m playground label` on a folder of the bundled photos, a corrupt
JPEG, a text file and a duplicate, with tiny random-weight models; exports loaded back; a killed job
resumed; edits in the exports; bad input refused with one line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES
from job_helpers import PHOTOS, kill_part_way, make_folder

from playground.cli import main
from playground.dataengine import edits
from playground.dataengine.exports import FIRST_OTHER_ID, export
from playground.dataengine.records import JobConfig
from playground.dataengine.store import STORE_NAME, JobStore

ROOT = Path(__file__).resolve().parents[1]
LABEL = ["--model", "grounded-sam", "--classes", "person, cat", "--weights", "tiny", "--device", "cpu"]


def annotation_set(out: Path) -> list[tuple]:
    """Every annotation of a job as comparable tuples (image name, class, score, box, RLE), sorted."""
    with JobStore(out / STORE_NAME) as store:
        names = {image.digest: image.name for image in store.images()}
        return sorted(
            (names[a.digest], a.class_name, a.score, a.box, json.dumps(a.rle, sort_keys=True))
            for a in store.annotations()
        )


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> tuple[Path, Path]:
    """(folder, out) of one uninterrupted `label` run."""
    root = tmp_path_factory.mktemp("job")
    folder = make_folder(root / "photos")
    out = root / "out"
    assert main(["label", str(folder), *LABEL, "--out", str(out), "--format", "coco,yolo"]) == 0
    return folder, out


def test_coco_export_loads_with_pycocotools(job) -> None:
    from pycocotools.coco import COCO

    _, out = job
    coco = COCO(str(out / "coco.json"))
    assert sorted(image["file_name"] for image in coco.dataset["images"]) == PHOTOS  # the duplicate once
    assert {c["name"]: c["id"] for c in coco.dataset["categories"]} == {"person": 1, "cat": 17}  # COCO's ids
    annotations = coco.loadAnns(coco.getAnnIds())
    assert annotations, "tiny grounded-sam finds boxes at its own threshold"
    image = coco.loadImgs(annotations[0]["image_id"])[0]
    assert coco.annToMask(annotations[0]).shape == (image["height"], image["width"])
    assert "random-weight" in coco.dataset["info"]["description"]


def test_yolo_exports_load_back_with_supervision(job) -> None:
    import supervision as sv

    _, out = job
    with JobStore(out / STORE_NAME) as store:
        count = len(store.annotations())
    for kind in ("detect", "segment"):
        root = out / "yolo" / kind
        dataset = sv.DetectionDataset.from_yolo(
            str(root / "images"), str(root / "labels"), str(root / "data.yaml"), force_masks=kind == "segment"
        )
        assert dataset.classes == ["person", "cat"]
        assert len(dataset) == len(PHOTOS)
        loaded = sum(len(detections) for _, _, detections in dataset)
        # A detection line per annotation; a segmentation line per piece of each mask (supervision's writer).
        assert loaded == count if kind == "detect" else loaded >= count


def test_report_names_skipped_files_and_the_duplicate(job) -> None:
    _, out = job
    report = json.loads((out / "report.json").read_text())
    skipped = {entry["name"]: entry["reason"] for entry in report["skipped"]}
    assert set(skipped) == {"broken.jpg", "notes.txt"}
    assert "truncated" in skipped["broken.jpg"] and "not an image" in skipped["notes.txt"]
    assert report["duplicates"] == [{"name": "zz_chelsea_again.jpg", "duplicate_of": "chelsea.jpg"}]
    states = {entry["name"]: entry["state"] for entry in report["files"]}
    assert [states[name] for name in PHOTOS] == ["labelled"] * len(PHOTOS)
    assert report["counts"]["states"]["labelled"] == len(PHOTOS)
    assert report["timings"]["images_labelled"] == len(PHOTOS)
    assert report["job"]["weights"] == "tiny" and "noise" in report["job"]["note"]


def test_a_second_run_labels_nothing_again(job, capsys) -> None:
    folder, out = job
    before = annotation_set(out)
    assert main(["label", str(folder), *LABEL, "--out", str(out), "--format", "coco"]) == 0
    assert "(0 this run" in capsys.readouterr().out
    assert annotation_set(out) == before


def test_a_killed_job_resumes_to_the_same_annotations(job, tmp_path) -> None:
    """A process killed (SIGKILL) after two images, then run again, ends as the uninterrupted run."""
    folder, uninterrupted = job
    out = tmp_path / "out"
    command = [sys.executable, "-m", "playground", "label", str(folder), *LABEL, "--out", str(out), "--format", "coco"]
    assert 2 <= kill_part_way(command, ROOT, out, 2, patience=120) < len(PHOTOS), "the job should be killed part-way"
    assert main(["label", str(folder), *LABEL, "--out", str(out), "--format", "coco"]) == 0
    assert annotation_set(out) == annotation_set(uninterrupted)


def test_a_failure_mid_image_leaves_the_image_pending(job, tmp_path, monkeypatch) -> None:
    """An error after some of an image's rows are written rolls the whole image back."""
    import playground.dataengine.store as store_module

    folder, uninterrupted = job
    out = tmp_path / "out"
    insert, calls = store_module._insert, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 10:  # inside the second image
            raise KeyboardInterrupt
        return insert(*args)

    monkeypatch.setattr(store_module, "_insert", failing)
    assert main(["label", str(folder), *LABEL, "--out", str(out), "--format", "coco"]) == 130
    with JobStore(out / STORE_NAME) as store:
        counts = store.counts()
        assert counts["labelled"] == 1 and counts["pending"] == 1
        pending = [image.digest for image in store.images() if image.state == "pending"]
        assert store.annotations(pending[0]) == []
    monkeypatch.setattr(store_module, "_insert", insert)
    assert main(["label", str(folder), *LABEL, "--out", str(out), "--format", "coco"]) == 0
    assert annotation_set(out) == annotation_set(uninterrupted)


def test_edits_appear_in_the_exports(job, tmp_path) -> None:
    from pycocotools.coco import COCO

    folder, source = job
    out = tmp_path / "out"
    out.mkdir()
    shutil.copyfile(source / STORE_NAME, out / STORE_NAME)
    with JobStore(out / STORE_NAME) as store:
        images = {image.name: image for image in store.images()}
        astronaut = images["astronaut.jpg"]
        first, second = store.annotations(astronaut.digest)[:2]
        edits.remove_annotation(store, first.id)
        edits.relabel_annotation(store, second.id, "teapot")
        mask = np.zeros((astronaut.height, astronaut.width), bool)
        mask[100:200, 150:260] = True
        added = edits.add_annotation(store, astronaut.digest, "dog", mask)
        edits.accept_image(store, images["camera.jpg"].digest)
        export(store, folder, out, ("coco", "yolo"))
    coco = COCO(str(out / "coco.json"))
    ids = {c["name"]: c["id"] for c in coco.dataset["categories"]}
    assert ids == {"person": 1, "cat": 17, "teapot": FIRST_OTHER_ID, "dog": 18}
    by_id = {a["id"]: a for a in coco.dataset["annotations"]}
    assert first.id not in by_id
    assert by_id[second.id]["category_id"] == FIRST_OTHER_ID
    assert by_id[added]["bbox"] == [150.0, 100.0, 109.0, 99.0] and by_id[added]["area"] == 100 * 110
    assert coco.annToMask(by_id[added]).astype(bool).tolist() == mask.tolist()
    states = {image["file_name"]: image["state"] for image in coco.dataset["images"]}
    assert states["astronaut.jpg"] == "edited" and states["camera.jpg"] == "accepted"
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["edits"] == {"remove": 1, "relabel": 1, "add": 1, "accept": 1}
    assert {e["name"]: e["state"] for e in report["files"]}["camera.jpg"] == "accepted"
    labels = (out / "yolo" / "detect" / "labels" / "astronaut.txt").read_text().splitlines()
    assert sum(line.startswith("3 ") for line in labels) == 1  # dog: the fourth class, from 0
    with pytest.raises(Exception, match="removed already"), JobStore(out / STORE_NAME) as store:
        edits.remove_annotation(store, first.id)


def test_a_store_refuses_another_job(tmp_path) -> None:
    with JobStore(tmp_path / STORE_NAME) as store:
        store.start(JobConfig("detr", ("person",), "tiny", {}))
        with pytest.raises(Exception, match="holds another job"):
            store.start(JobConfig("detr", ("cat",), "tiny", {}))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "grounded-sam", "--classes", " , "], "No classes given"),
        (["--model", "no-such-model", "--classes", "cat"], "Unknown model 'no-such-model'"),
        (["--model", "detr", "--classes", "unicorn"], "None of unicorn is a label of detr"),
        (["--model", "fcn", "--classes", "cat"], "fcn gives semantic maps"),
        (["--model", "detr,owlv2", "--classes", "cat"], "give --truth"),
        (["--model", "detr", "--classes", "cat", "--format", "voc"], "--format voc"),
    ],
)
def test_bad_input_gets_one_line(args, message, tmp_path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    code = main(["label", str(folder), *args, "--out", str(tmp_path / "out"), "--weights", "tiny", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_truth_picks_the_best_candidate_and_prints_the_table(tmp_path, capsys) -> None:
    folder = make_folder(tmp_path / "photos")
    out = tmp_path / "out"
    args = ["--model", "grounding-dino,owlv2-sam", "--classes", "person, cat", "--weights", "tiny", "--device", "cpu"]
    truth = str(EXAMPLES / "annotations")
    assert main(["label", str(folder), *args, "--truth", truth, "--out", str(out), "--format", "coco"]) == 0
    printed = capsys.readouterr().out
    table = json.loads((out / "labelers.json").read_text())
    best = next(row["labeler"] for row in table if row["best"])
    assert [row["images"] for row in table] == [4, 4]  # astronaut, chelsea, coffee, motorcycle have truth
    assert f"labelling with {best}:" in printed and "box_ap" in printed and "random-weight" in printed
    assert json.loads((out / "report.json").read_text())["job"]["model"] == best
