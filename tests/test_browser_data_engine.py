"""The Data engine tab in the browser: the labeler table on the bundled photos' ground truth with the
best preselected; review edits (remove, relabel, add by SAM click, accept) each saved, so a reload
of the job's link shows them; and an edit made here is in the downloaded COCO JSON and report.json."""

from __future__ import annotations

import json
import zipfile

import pytest
from browser_helpers import open_tab
from conftest import EXAMPLES

pytestmark = pytest.mark.browser

PHOTOS = ("astronaut", "chelsea", "coffee")
CANDIDATES = {"Grounding DINO Tiny · text": "grounding-dino", "OWLv2 ViT-B/16 · text": "owlv2"}
RUN_MS = 180_000
EDIT_MS = 60_000
NEW_CLASS = "spoon"


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
    shown = page.locator("#dataengine-canvas img").first.bounding_box()
    page.mouse.click(shown["x"] + shown["width"] * 0.5, shown["y"] + shown["height"] * 0.5)
    wait_text(page, "#dataengine-edit-status", "SAM's mask is shown")
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
