"""Scoring in the live app: the /score endpoint and the Score panel in the browser."""

from __future__ import annotations

import re

import pytest
from browser_helpers import open_tab, pick_example, run_and_wait, select_models
from conftest import EXAMPLES
from gradio_client import Client, handle_file

ASTRONAUT = str(EXAMPLES / "astronaut.jpg")
ASTRONAUT_TRUTH = str(EXAMPLES / "annotations" / "astronaut.json")
DETECTORS = ["DETR ResNet-50", "RetinaNet ResNet-50 FPN v2", "Faster R-CNN ResNet-50 FPN v2"]


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app.url, verbose=False)


def test_score_endpoint_scores_each_model_against_the_truth(client):
    overlay, scores = client.predict(
        handle_file(ASTRONAUT), ["detr", "fcn"], handle_file(ASTRONAUT_TRUTH), "", 0.5, api_name="/score"
    )
    assert sorted(s["model"] for s in scores) == ["detr", "fcn"]
    by_model = {s["model"]: s for s in scores}
    assert set(by_model["detr"]["metrics"]) >= {"ap", "ap50", "ap75", "precision", "recall", "tp", "fp", "fn"}
    assert by_model["detr"]["metrics"]["fn"] + by_model["detr"]["metrics"]["tp"] == 1  # one person in the truth
    assert "miou" in by_model["fcn"]["metrics"] and by_model["fcn"]["published"]["metric"] == "mIoU"
    assert overlay.endswith(".png")


def test_score_endpoint_refuses_truth_for_another_image(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="512x512 image; this image is 451x300"):
        client.predict(
            handle_file(str(EXAMPLES / "chelsea.jpg")), ["detr"], handle_file(ASTRONAUT_TRUTH), api_name="/score"
        )


@pytest.mark.browser
def test_score_panel_ranks_three_detectors_on_the_astronaut(page, screenshot_dir):
    open_tab(page, "Detection")
    pick_example(page, "detection", index=0)  # astronaut
    select_models(page, "detection", DETECTORS)
    run_and_wait(page, "detection", 3)
    page.locator("#detection-score-panel").get_by_text("Score against ground truth").first.click()
    page.locator("#detection-use-example").click()
    page.locator("#detection-truth [aria-label='astronaut.json']").wait_for(timeout=30_000)
    page.locator("#detection-score-button").click()
    page.wait_for_function(
        "() => document.querySelector('#detection-score-table [role=grid]')?.getAttribute('aria-rowcount') === '4'",
        timeout=60_000,
    )  # the header and three rows
    text = page.locator("#detection-score-table").inner_text()
    for title in DETECTORS:
        assert title in text
    assert re.search(r"box AP \d+(\.\d+)? on COCO", text), text  # the published number, worded as the captions
    page.locator("#detection-score-gallery img").first.wait_for(timeout=30_000)
    page.screenshot(path=str(screenshot_dir / "score.png"), full_page=True)
