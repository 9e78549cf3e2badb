"""The data engine's parts: zip intake and its limits, labelers (closed-set narrowing, SAM's embedding
reused, segment everything), and the labeler table against ground truth (COCO JSON, PNG label maps)."""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from playground.core.errors import BadPromptError
from playground.dataengine import intake
from playground.dataengine.choose import choose_labeler, label_map_objects, load_truths, truth_for
from playground.dataengine.intake import IntakeError, decode, extract_zip
from playground.dataengine.labelers import decode_mask, make_labeler
from playground.scoring.truth import BadTruthError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def zipped(path: Path, entries: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as packed:
        for name, data in entries.items():
            packed.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            packed.writestr(info, "/etc/passwd")
    return path


def test_a_zip_extracts_into_its_folder(tmp_path) -> None:
    photo = (EXAMPLES / "chelsea.jpg").read_bytes()
    archive = zipped(
        tmp_path / "photos.zip", {"a/chelsea.jpg": photo, "notes.txt": b"hi", "__MACOSX/._x": b"", ".hidden": b""}
    )
    assert extract_zip(archive, tmp_path / "job") == ["a/chelsea.jpg", "notes.txt"]
    assert (tmp_path / "job" / "a" / "chelsea.jpg").read_bytes() == photo
    assert decode(tmp_path / "job", "a/chelsea.jpg").pixels is not None


@pytest.mark.parametrize(
    ("entries", "links", "message"),
    [
        ({"../evil.jpg": b"x"}, (), "'../evil.jpg' points outside the folder"),
        ({"ok/../../evil.jpg": b"x"}, (), "points outside the folder"),
        ({"/etc/evil.jpg": b"x"}, (), "'/etc/evil.jpg' points outside the folder"),
        ({}, ("link.jpg",), "'link.jpg' is a symbolic link"),
        ({"bomb.jpg": bytes(4 * 1024 * 1024)}, (), "the limit is 100x"),
    ],
)
def test_unsafe_zips_are_refused_whole(tmp_path, entries, links, message) -> None:
    archive = zipped(tmp_path / "bad.zip", {"fine.jpg": b"x", **entries}, links)
    with pytest.raises(IntakeError, match=message.replace(".", r"\.").replace("(", r"\(")) as refused:
        extract_zip(archive, tmp_path / "job")
    assert len(str(refused.value).splitlines()) == 1
    assert not (tmp_path / "job").exists() and not (tmp_path / "evil.jpg").exists()


def test_too_many_files_or_bytes_state_the_limit(tmp_path, monkeypatch) -> None:
    archive = zipped(tmp_path / "many.zip", {f"{i}.jpg": bytes(1000) for i in range(4)})
    monkeypatch.setattr(intake, "MAX_FILES", 3)
    with pytest.raises(IntakeError, match="holds 4 files; the limit is 3 per job"):
        extract_zip(archive, tmp_path / "job")
    monkeypatch.setattr(intake, "MAX_FILES", 10)
    monkeypatch.setattr(intake, "MAX_TOTAL_BYTES", 3000)
    with pytest.raises(IntakeError, match="the limit is"):
        extract_zip(archive, tmp_path / "job")


def test_an_image_over_the_pixel_limit_is_skipped_with_the_limit(tmp_path, monkeypatch) -> None:
    import playground.core.images as images

    shutil.copyfile(EXAMPLES / "astronaut.jpg", tmp_path / "big.jpg")
    monkeypatch.setattr(images, "MAX_PIXELS", 100_000)
    decoded = decode(tmp_path, "big.jpg")
    assert decoded.pixels is None and "over the limit of" in decoded.reason


def test_closed_set_labels_are_narrowed_to_the_classes(tiny_playground, astronaut) -> None:
    every = tiny_playground.predict("detr", astronaut, task="detection")
    labeler = make_labeler(tiny_playground, "detr", "Person, unicorn", threshold=0.0)
    assert labeler.names == {"person": "Person"} and "unicorn" in labeler.note
    narrowed = labeler.predict(astronaut)
    assert narrowed.labels == ["Person"] * every.labels.count("person")
    labelled = labeler.label(astronaut)
    assert [row.class_name for row in labelled.rows] == narrowed.labels
    with pytest.raises(BadPromptError, match="None of unicorn is a label of detr"):
        make_labeler(tiny_playground, "detr", "unicorn")


def test_rows_scale_to_the_images_own_size(tiny_playground, astronaut) -> None:
    labeler = make_labeler(tiny_playground, "grounded-sam", "person", threshold=0.0)
    small = labeler.label(astronaut)
    big = labeler.label(astronaut, size=(1024, 1024))
    assert len(big.rows) == len(small.rows) > 0
    assert np.allclose([r.box for r in big.rows], 2 * np.array([r.box for r in small.rows]), atol=0.02)
    assert decode_mask(big.rows[0].rle).shape == (1024, 1024)
    assert decode_mask(big.rows[0].rle).sum() == 4 * decode_mask(small.rows[0].rle).sum()


def test_sam_labelers_encode_each_image_once(tiny_playground, astronaut) -> None:
    """Every class of an image is one call, so one SAM embedding; a second SAM-based labeler on the
    same image finds that embedding cached (SAM's adapter says which in ``reuse``)."""
    grounded = make_labeler(tiny_playground, "grounded-sam", "person, flag, cat", threshold=0.0)
    owl = make_labeler(tiny_playground, "owlv2-sam", "person, flag", threshold=0.0)
    first = grounded.label(astronaut)
    assert first.rows and {row.class_name for row in first.rows} <= {"person", "flag", "cat"}
    assert first.prediction.reuse.startswith("image encoded in")
    assert owl.label(astronaut).prediction.reuse == "cached"


def test_segment_everything_labels_objects(tiny_playground, astronaut) -> None:
    labeler = make_labeler(
        tiny_playground, "sam", "", params={"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    )
    labelled = labeler.label(astronaut)
    assert labelled.rows and {row.class_name for row in labelled.rows} == {"object"}
    assert all(row.rle is not None for row in labelled.rows)


def test_the_labeler_table_scores_candidates_on_the_truth(tiny_playground) -> None:
    truths = load_truths(EXAMPLES / "annotations")
    assert sorted(truths) == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "motorcycle.jpg"]
    images = [decode(EXAMPLES, name) for name in ("astronaut.jpg", "chelsea.jpg", "rocket.jpg")]
    candidates = [
        make_labeler(tiny_playground, key, "person, cat", threshold=0.0) for key in ("grounding-dino", "owlv2-sam")
    ]
    table = choose_labeler(candidates, images, truths)
    assert [row.images for row in table.rows] == [2, 2]
    assert table.best == table.rows[0].labeler and table.rows[0].rank() >= table.rows[1].rank()
    boxes_only = next(row for row in table.rows if row.labeler == "grounding-dino")
    assert boxes_only.metrics["mask_ap"] is None and boxes_only.metrics["box_ap"] is not None
    masks = next(row for row in table.rows if row.labeler == "owlv2-sam")
    assert masks.metrics["mask_ap"] is not None and masks.metrics["pq"] is not None
    assert "grounding-dino" in table.text() and "*" in table.text()


def test_a_stopped_job_goes_on_where_it_stopped(tiny_playground, tmp_path) -> None:
    import threading

    from playground.dataengine.job import run_job
    from playground.dataengine.store import JobStore

    labeler = make_labeler(tiny_playground, "grounding-dino", "person, cat")
    names = sorted(p.name for p in EXAMPLES.glob("*.jpg"))
    stop, seen = threading.Event(), []

    def on_progress(progress) -> None:
        seen.append((progress.done, progress.total, progress.name))
        stop.set()

    with JobStore(tmp_path / "job.sqlite") as store:
        first = run_job(EXAMPLES, names, labeler, store, on_progress=on_progress, stop=stop)
        assert first.labelled == 1 and seen == [(1, len(names), names[0])]
        second = run_job(EXAMPLES, names, labeler, store)
        assert (second.resumed, second.labelled) == (1, len(names) - 1)
        assert second.counts["labelled"] == len(names)


def label_map(path: Path, size: tuple[int, int], regions: dict[tuple[int, int, int, int], int]) -> Path:
    """A PNG label map of ``size`` (height, width): each XYXY box of ``regions`` filled with its id."""
    ids = np.zeros(size, np.uint8)
    for (x1, y1, x2, y2), ident in regions.items():
        ids[y1:y2, x1:x2] = ident
    Image.fromarray(ids).save(path)
    return path


def test_a_label_map_names_its_ids_by_the_classes(tmp_path) -> None:
    """Id 1 is the first class, 2 the second; each connected region is one object; 0 is background."""
    shutil.copyfile(EXAMPLES / "annotations" / "astronaut.json", tmp_path / "astronaut.json")
    regions = {(10, 10, 50, 40): 2, (100, 100, 120, 150): 2, (200, 20, 260, 90): 1}
    label_map(tmp_path / "chelsea.png", (300, 451), regions)
    truths = load_truths(tmp_path)
    assert sorted(truths) == ["astronaut.jpg", "chelsea.png"]  # a folder mixing COCO JSON and label maps
    assert truth_for("chelsea.jpg", truths) is truths["chelsea.png"]  # matched by stem
    named = label_map_objects(truths["chelsea.png"], ("person", "cat"))
    found = sorted((obj.label, obj.box, int(obj.mask.sum())) for obj in named.objects)
    assert found == sorted(
        (["person", "cat"][ident - 1], tuple(map(float, box)), (box[2] - box[0]) * (box[3] - box[1]))
        for box, ident in regions.items()
    )
    with pytest.raises(BadTruthError, match="has class id 2; the 1 classes give ids 1 to 1") as refused:
        label_map_objects(truths["chelsea.png"], ("person",))
    assert len(str(refused.value).splitlines()) == 1
    with pytest.raises(BadTruthError, match="labels no object"):
        label_map_objects(load_truths(label_map(tmp_path / "blank.png", (8, 8), {}))["blank.png"], ("cat",))


def test_label_maps_score_labelers_and_another_size_is_one_line(tiny_playground, tmp_path) -> None:
    cat = load_truths(EXAMPLES / "annotations" / "chelsea.json")["chelsea.jpg"].objects[0].mask
    Image.fromarray(cat.astype(np.uint8) * 2).save(tmp_path / "chelsea.png")
    labeler = make_labeler(tiny_playground, "owlv2-sam", "person, cat", threshold=0.0)
    images = [decode(EXAMPLES, "chelsea.jpg")]
    [row] = choose_labeler([labeler], images, load_truths(tmp_path)).rows
    assert (row.images, row.error) == (1, "") and row.metrics["mask_ap"] is not None  # label maps give masks
    label_map(tmp_path / "chelsea.png", (10, 12), {(0, 0, 4, 4): 1})
    with pytest.raises(BadTruthError) as refused:
        choose_labeler([labeler], images, load_truths(tmp_path))
    assert str(refused.value) == "The truth for chelsea.jpg (chelsea.png) is for a 12x10 image; this image is 451x300."


def test_drawn_truth_is_kept_in_the_store_and_goes_to_a_new_labelers_job(tiny_playground, tmp_path, monkeypatch):
    from playground.dataengine.job import job_config
    from playground.ui import dataengine_jobs as jobs

    monkeypatch.setattr(jobs, "JOBS_DIR", tmp_path)
    job = jobs.new_job()
    shutil.copyfile(EXAMPLES / "chelsea.jpg", job.files / "chelsea.jpg")
    with job.store() as store:
        store.draw_truth("chelsea.jpg", (300, 451), [("cat", 0.0, 0.0, 450.0, 299.0)])
        store.start(job_config(make_labeler(tiny_playground, "grounding-dino", "cat", threshold=0.2)))
    fresh, new = jobs.job_for(job, make_labeler(tiny_playground, "grounding-dino", "cat", threshold=0.5))
    assert new and fresh.token != job.token
    [(name, truth)] = jobs.drawn_truths(fresh).items()
    assert (name, truth.image_size) == ("chelsea.jpg", (300, 451))
    assert [(obj.label, obj.box) for obj in truth.objects] == [("cat", (0.0, 0.0, 450.0, 299.0))]
    with job.store() as store:
        store.draw_truth("chelsea.jpg", (300, 451), [])
    assert jobs.drawn_truths(job) == {}  # no boxes: no drawn truth
