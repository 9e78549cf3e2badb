"""The Data engine tab in the browser: the labeler table on the bundled photos' ground truth with the
best preselected; review edits (remove, relabel, add by SAM click, accept) each saved, so a reload
of the job's link shows them; and an edit made here is in the downloaded COCO JSON and report.json.
Boxes drawn as ground truth score the labelers and, with the thresholds, outlive a reload; Label waits
for Score; Stop ends a run part way and Label goes on, labelling each image once."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile

import numpy as np
import pytest
from browser_helpers import click_image, open_tab
from conftest import EXAMPLES
from PIL import Image

pytestmark = pytest.mark.browser

PHOTOS = ("astronaut", "chelsea", "coffee")
CANDIDATES = {"Grounding DINO Tiny · text": "grounding-dino", "OWLv2 ViT-B/16 · text": "owlv2"}
RUN_MS = 180_000
EDIT_MS = 60_000
NEW_CLASS = "spoon"
VARIANTS = 6
"""Files of the job that is stopped: SAM's "every object" (a thousand point prompts an image) takes a
while on each, so Stop lands part way (tiny text routes label a small image faster than a click)."""
PROGRESS = rf"Labelling: (\d+) of {VARIANTS} files · \d+\.\d images/min · (\d+ s|—) left"


def wait_text(page, selector: str, pattern: str, timeout: int = EDIT_MS) -> None:
    """Wait until ``selector``'s text matches the regular expression ``pattern``."""
    page.wait_for_function(
        "([selector, pattern]) => new RegExp(pattern).test(document.querySelector(selector)?.innerText || '')",
        arg=[selector, pattern],
        timeout=timeout,
    )


def objects(page) -> list[str]:
    return [text.strip() for text in page.locator("#dataengine-instances label").all_inner_texts()]


def wait_objects(page, changed_from: list[str] | None = None) -> list[str]:
    """The opened image's object list, once it is shown (and differs from ``changed_from``)."""
    page.wait_for_function(
        "(before) => { const now = [...document.querySelectorAll('#dataengine-instances label')]"
        ".map((l) => l.innerText.trim()); return now.length > 0 && JSON.stringify(now) !== JSON.stringify(before); }",
        arg=changed_from,
        timeout=EDIT_MS,
    )
    return objects(page)


def pick_object(page, index: int) -> None:
    page.locator("#dataengine-instances label").nth(index).click()


def type_choice(page, selector: str, value: str) -> None:
    box = page.locator(f"{selector} input").first
    box.fill(value)
    box.press("Enter")


def new_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url, wait_until="load")
    return context, page, errors


@pytest.fixture(scope="module")
def job(browser, live_app) -> dict:
    """Three bundled photos and their annotations scored and labelled in the browser: the table, the
    labeler shown after scoring, and the job's link."""
    context, page, errors = new_page(browser, live_app.url)
    page.wait_for_selector("#semantic-run", timeout=30_000)
    open_tab(page, "Data engine")
    page.locator("#dataengine-files input[type=file]").set_input_files([str(EXAMPLES / f"{n}.jpg") for n in PHOTOS])
    page.locator("#dataengine-truth input[type=file]").set_input_files(
        [str(EXAMPLES / "annotations" / f"{n}.json") for n in PHOTOS]
    )
    page.locator("#dataengine-files .file-preview").wait_for(timeout=30_000)
    page.locator("#dataengine-classes textarea, #dataengine-classes input").first.fill("person, cat, cup")
    for box in page.locator("#dataengine-candidates label").all():
        checkbox = box.locator("input[type=checkbox]")
        if checkbox.is_checked() != (box.inner_text().strip() in CANDIDATES):
            checkbox.click()
    page.locator("#dataengine-score").click()
    wait_text(page, "#dataengine-table", "★ best", RUN_MS)
    table = [cell.strip() for cell in page.locator("#dataengine-table").inner_text().splitlines() if cell.strip()]
    chosen = page.locator("#dataengine-labeler input").first.input_value()
    page.locator("#dataengine-label").click()
    wait_text(page, "#dataengine-status", r"Done\.", RUN_MS)
    link = page.locator("#dataengine-link textarea, #dataengine-link input").first.input_value()
    context.close()
    assert not errors, errors
    return {"table": table, "chosen": chosen, "link": link}


def test_the_labeler_table_shows_and_the_best_is_preselected(job):
    cells = job["table"]
    rows = [i for i, cell in enumerate(cells) if cell in CANDIDATES.values()]
    assert sorted(cells[i] for i in rows) == sorted(CANDIDATES.values())  # one row per labeler scored
    assert all(cells[i + 7] == str(len(PHOTOS)) for i in rows)  # each on the three images with truth
    assert cells.count("★ best") == 1 and cells[rows[0] - 1] == "★ best"  # the best first, marked
    assert CANDIDATES[job["chosen"]] == cells[rows[0]]  # and chosen in the labeler box
    assert "?tab=dataengine&job=" in job["link"]


@pytest.fixture(scope="module")
def edited(browser, job) -> dict:
    """The review edits made on the least certain image: remove, relabel, add by a SAM click, accept;
    what the object list showed after them, and the page's link then."""
    context, page, errors = new_page(browser, job["link"])
    page.locator("#dataengine-gallery .thumbnail-item").first.wait_for(timeout=EDIT_MS)
    page.locator("#dataengine-gallery .thumbnail-item").first.click()
    before = wait_objects(page)
    pick_object(page, 0)
    page.locator("#dataengine-remove").click()
    removed = wait_objects(page, before)
    pick_object(page, 0)
    type_choice(page, "#dataengine-relabel-to", NEW_CLASS)
    page.locator("#dataengine-relabel").click()
    relabelled = wait_objects(page, removed)
    click_image(page, "#dataengine-canvas")
    wait_text(page, "#dataengine-edit-status", "SAM's mask is shown", timeout=RUN_MS)  # loads SAM first
    type_choice(page, "#dataengine-add-as", "cup")
    page.locator("#dataengine-add").click()
    added = wait_objects(page, relabelled)
    page.locator("#dataengine-accept").click()
    wait_text(page, "#dataengine-edit-status", "Accepted")
    url = page.url
    context.close()
    assert not errors, errors
    return {"before": before, "removed": removed, "relabelled": relabelled, "added": added, "url": url}


def test_each_review_edit_is_saved_and_a_reload_shows_it(browser, edited):
    assert len(edited["removed"]) == len(edited["before"]) - 1
    assert edited["relabelled"][0].startswith(f"{NEW_CLASS} ·")
    assert len(edited["added"]) == len(edited["removed"]) + 1 and edited["added"][-1].startswith("cup ·")
    assert edited["added"][-1].endswith("added")
    assert "&image=" in edited["url"]  # the link reopens the image under review
    context, page, errors = new_page(browser, edited["url"])
    reopened = wait_objects(page)
    wait_text(page, "#dataengine-edit-status", "accepted")
    context.close()
    assert not errors, errors
    assert reopened == edited["added"]


def test_an_edit_made_in_the_browser_is_in_the_coco_json_and_the_report(browser, edited, tmp_path):
    from pycocotools.coco import COCO

    context, page, errors = new_page(browser, edited["url"])
    wait_objects(page)
    page.locator("#dataengine-export").click()
    page.wait_for_function("() => document.querySelectorAll('#dataengine-downloads a').length >= 3", timeout=RUN_MS)
    files = {}
    for anchor in page.locator("#dataengine-downloads a").all():
        href = anchor.get_attribute("href")
        response = page.request.get(href)
        assert response.ok
        files[href.rsplit("/", 1)[-1]] = response.body()
    context.close()
    assert not errors, errors
    assert {"coco.json", "yolo.zip", "report.json"} <= set(files)
    (tmp_path / "coco.json").write_bytes(files["coco.json"])
    coco = COCO(str(tmp_path / "coco.json"))
    names = {category["id"]: category["name"] for category in coco.loadCats(coco.getCatIds())}
    accepted = [image for image in coco.dataset["images"] if image["state"] == "accepted"]
    assert len(accepted) == 1
    mine = coco.loadAnns(coco.getAnnIds(imgIds=[accepted[0]["id"]]))
    assert len(mine) == len(edited["added"])
    assert sum(names[a["category_id"]] == NEW_CLASS for a in mine) >= 1  # relabelled
    assert [a["origin"] for a in mine].count("edit") == 1  # the object added by a click
    report = json.loads(files["report.json"])
    assert report["counts"]["edits"] == {"remove": 1, "relabel": 1, "add": 1, "accept": 1}
    assert report["counts"]["states"]["accepted"] == 1


def test_bad_input_is_one_clear_line_and_the_tab_goes_on(page, tmp_path):
    climbing = tmp_path / "climb.zip"
    with zipfile.ZipFile(climbing, "w") as packed:
        packed.writestr("../outside.jpg", (EXAMPLES / "chelsea.jpg").read_bytes())
    open_tab(page, "Data engine")
    for upload, classes, line in (
        (climbing, "cat", "points outside the folder"),
        (EXAMPLES / "chelsea.jpg", "", "No classes given"),
    ):
        page.locator("#dataengine-files input[type=file]").set_input_files(str(upload))
        page.locator("#dataengine-classes textarea, #dataengine-classes input").first.fill(classes)
        page.locator("#dataengine-label").click()
        toast = page.locator(".toast-body", has_text=line).first
        toast.wait_for(timeout=EDIT_MS)
        [message] = toast.inner_text().splitlines()[2:]  # under "Error" and the close button: one line
        assert line in message
        page.locator(".toast-body .toast-close").first.click()
        page.locator("#dataengine-files button[aria-label='Clear']").click()  # an upload adds to the list


def test_another_visitor_sees_no_job_without_its_link(page, job):
    open_tab(page, "Data engine")
    page.wait_for_timeout(1000)  # the page's load events have run
    assert page.locator("#dataengine-gallery .thumbnail-item").count() == 0
    assert page.locator("#dataengine-link textarea, #dataengine-link input").first.input_value() == ""
    assert job["link"].split("job=")[1] not in page.content()


def job_store(link: str):
    """The job store of the job ``link`` names (the app runs on this machine, with this Gradio cache)."""
    from playground.ui.dataengine_jobs import JOBS_DIR

    return JOBS_DIR / link.split("job=")[1].split("&")[0] / "job.sqlite"


def link_of(page) -> str:
    return page.locator("#dataengine-link textarea, #dataengine-link input").first.input_value()


def test_drawn_boxes_score_the_labelers_label_waits_for_score_and_a_reload_keeps_the_settings(browser, live_app):
    context, page, errors = new_page(browser, live_app.url)
    page.wait_for_selector("#semantic-run", timeout=30_000)
    open_tab(page, "Data engine")
    page.locator("#dataengine-files input[type=file]").set_input_files(
        [str(EXAMPLES / "chelsea.jpg"), str(EXAMPLES / "coffee.jpg")]
    )
    page.locator("#dataengine-files .file-preview").wait_for(timeout=30_000)
    page.locator("#dataengine-classes textarea, #dataengine-classes input").first.fill("person, cat")
    page.locator("#dataengine-own input").uncheck()
    threshold = page.locator("#dataengine-threshold input[type=number]")
    threshold.fill("0.42")
    threshold.press("Enter")
    page.get_by_text("…or draw boxes").click()
    page.locator("#dataengine-draw-start").click()
    wait_text(page, "#dataengine-draw-status", "Boxes on chelsea.jpg: none yet")
    page.locator("#dataengine-draw-class textarea, #dataengine-draw-class input").first.fill("cat")
    for fx, fy in ((0.1, 0.1), (0.9, 0.9)):
        click_image(page, "#dataengine-draw-canvas", fx, fy)
        wait_text(page, "#dataengine-draw-status", "second corner" if fx < 0.5 else r"chelsea.jpg: cat\.")
    for box in page.locator("#dataengine-candidates label").all():
        checkbox = box.locator("input[type=checkbox]")
        if checkbox.is_checked() != (box.inner_text().strip() == "Grounding DINO Tiny · text"):
            checkbox.click()
    page.locator("#dataengine-score").click()
    page.wait_for_function("() => document.querySelector('#dataengine-label').disabled", timeout=EDIT_MS)
    page.locator("#dataengine-label").click()  # waits until Score is done: it cannot start a second job
    wait_text(page, "#dataengine-table", "★ best", RUN_MS)
    scored = link_of(page)
    wait_text(page, "#dataengine-status", r"Done\.", RUN_MS)
    cells = [cell.strip() for cell in page.locator("#dataengine-table").inner_text().splitlines() if cell.strip()]
    assert cells[cells.index("grounding-dino") + 7] == "1"  # scored on the one of two with drawn boxes
    assert link_of(page) == scored  # the job scored is the job labelled
    context.close()
    context, page, more = new_page(browser, scored)
    wait_text(page, "#dataengine-draw-status", r"chelsea.jpg: cat\.")
    assert not page.locator("#dataengine-own input").is_checked()
    assert page.locator("#dataengine-threshold input[type=number]").input_value() == "0.42"
    context.close()
    assert not errors + more, errors + more


def variants_zip(path) -> str:
    """`VARIANTS` small distinct images cut from the bundled photos, zipped."""
    with zipfile.ZipFile(path, "w") as packed:
        for index in range(VARIANTS):
            photo = Image.open(EXAMPLES / f"{PHOTOS[index % len(PHOTOS)]}.jpg").convert("RGB")
            crop = photo.crop((4 * index, 2 * index, photo.width - 4 * index, photo.height - 2 * index))
            data = io.BytesIO()
            crop.resize((160, 120)).save(data, "PNG")
            packed.writestr(f"variant-{index:02d}.png", data.getvalue())
    return str(path)


def labelled_at(store) -> dict[str, float]:
    """Image digest -> when it was labelled, for every labelled image."""
    with sqlite3.connect(store) as db:
        return dict(db.execute("SELECT digest, labelled_at FROM images WHERE state = 'labelled'").fetchall())


def test_stop_ends_a_run_part_way_and_label_goes_on_labelling_each_image_once(browser, live_app, tmp_path):
    context, page, errors = new_page(browser, live_app.url)
    page.wait_for_selector("#semantic-run", timeout=30_000)
    open_tab(page, "Data engine")
    page.locator("#dataengine-files input[type=file]").set_input_files(variants_zip(tmp_path / "variants.zip"))
    page.locator("#dataengine-files .file-preview").wait_for(timeout=30_000)
    type_choice(page, "#dataengine-labeler", "Segment Anything ViT-B · every object")
    page.locator("#dataengine-label").click()
    wait_text(page, "#dataengine-status", PROGRESS, RUN_MS)
    running = page.locator("#dataengine-status").inner_text()
    page.locator("#dataengine-stop").click()
    wait_text(page, "#dataengine-status", "Not finished", RUN_MS)
    store = job_store(link_of(page))
    first = labelled_at(store)
    assert 0 < len(first) < VARIANTS  # some images, not all
    page.locator("#dataengine-label").click()
    wait_text(page, "#dataengine-status", r"Done\.", RUN_MS)
    context.close()
    assert not errors, errors
    assert re.search(PROGRESS, running)
    after = labelled_at(store)
    assert len(after) == VARIANTS  # every image labelled
    assert {digest: after[digest] for digest in first} == first  # those labelled before Stop were not again
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM files").fetchone() == (VARIANTS,)


def test_a_label_map_is_taken_as_truth_and_one_of_another_size_is_one_line(page, tmp_path):
    Image.fromarray(np.ones((10, 12), np.uint8)).save(tmp_path / "chelsea.png")
    open_tab(page, "Data engine")
    page.locator("#dataengine-files input[type=file]").set_input_files(str(EXAMPLES / "chelsea.jpg"))
    page.locator("#dataengine-truth input[type=file]").set_input_files(str(tmp_path / "chelsea.png"))
    page.locator("#dataengine-truth .file-preview").wait_for(timeout=30_000)
    page.locator("#dataengine-classes textarea, #dataengine-classes input").first.fill("cat")
    page.locator("#dataengine-score").click()
    line = "The truth for chelsea.jpg (chelsea.png) is for a 12x10 image; this image is 451x300."
    toast = page.locator(".toast-body", has_text=line).first
    toast.wait_for(timeout=RUN_MS)
    assert toast.inner_text().splitlines()[2:] == [line]
