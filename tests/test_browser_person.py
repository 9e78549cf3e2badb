"""Every tab as a person meets it (issue 33).

An offline start: pretrained weights, empty caches, and a hub that cannot be reached (``HF_ENDPOINT``
at a closed port on 127.0.0.1, ``HF_HUB_OFFLINE`` unset, as a user starts the README's first command
on a machine without internet). The hub is asked once, in about a second; every tab then answers at
once with a message that names ``download`` and ``--weights tiny``, and the page says which models
are ready. The other tests run on the session's tiny-weights app.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import checked_page, click_image, open_tab, pick_example

ROOT = Path(__file__).resolve().parents[1]

ANSWER_S = 5.0
"""The issue's bound for every tab's answer offline; the tests allow `SLOW_MACHINE` times it on a
busy CI machine (two cores shared with other tests), and print what they measured."""
SLOW_MACHINE = 3.0
VIDEO_TAB = "Video (track through a clip)"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    for name in ("HF_HOME", "TORCH_HOME"):
        (tmp_path / name).mkdir()
        env[name] = str(tmp_path / name)
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    return env


# ---- the hub check, without a browser -------------------------------------------------------


def test_an_unreachable_hub_counts_as_offline_and_a_listening_one_does_not(monkeypatch, tmp_path):
    from playground.core import hub_reach
    from playground.core.errors import MissingWeightsError
    from playground.core.registry import get_spec
    from playground.core.weights import ensure_available, hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(hub_reach, "_library_offline", lambda: None)  # this process's hub library stays as it was
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        hub_reach.forget()
        assert hub_reach.hub_reachable() and not hub_offline()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    hub_reach.forget()
    start = time.perf_counter()
    assert hub_offline()
    with pytest.raises(MissingWeightsError) as caught:
        ensure_available(get_spec("detr"))
    assert time.perf_counter() - start < 3
    message = str(caught.value)
    assert "cannot be reached" in message and "python -m playground download detr" in message
    assert "--weights tiny" in message and "HF_HUB_OFFLINE" not in message
    hub_reach.forget()


def test_captions_speak_a_users_words_and_never_round_into_a_contradiction():
    import numpy as np

    from playground.core.registry import REGISTRY
    from playground.core.types import Prediction
    from playground.core.weights import published_score
    from playground.render.views import ViewOptions, empty_hint, published_words

    for spec in REGISTRY.values():
        words = published_words(published_score(spec))
        for phrase in ("weights meta", "unconfirmed", "none:", "parts' scores", "not confirmed", "_map"):
            assert phrase not in words, (spec.key, words)
    assert published_words(published_score(REGISTRY["faster-rcnn"])) == "box AP 46.7 on COCO val2017"
    almost = Prediction(
        "detr", "detection", "tiny", (8, 8), {1: "cat"}, np.array([[0, 0, 4, 4]], np.float32), [0.0199], [1]
    )
    hint = empty_hint(almost, almost[[]], ViewOptions(score_threshold=0.02))
    assert hint.startswith("nothing ≥ 0.0200 (best 0.0199)"), hint


# ---- the offline app in the browser ---------------------------------------------------------


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory) -> Iterator[str]:
    """app.py with pretrained weights, empty caches and no hub; yields its URL."""
    from playground.bench.startup import free_port, stop

    folder = tmp_path_factory.mktemp("offline")
    port, log = free_port(), folder / "app.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--weights", "pretrained", "--port", str(port)],
            cwd=ROOT,
            env=offline_env(folder),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        stop(process)
        pytest.fail(f"the offline app did not start:\n{log.read_text(errors='replace')}")
    yield url
    stop(process)


@pytest.fixture
def offline_page(browser, offline_app):
    with checked_page(browser, offline_app, ready_ms=60_000) as page:
        yield page


def answered(page, selector: str, started: float, what: str) -> str:
    """Wait for ``selector``'s text to name `download` and `--weights tiny`; the time it took is
    checked against a generous bound and printed."""
    page.wait_for_function(
        "(selector) => [...document.querySelectorAll(selector)].some((node) => "
        "node.innerText.includes('playground download') && node.innerText.includes('--weights tiny'))",
        arg=selector,
        timeout=60_000,
    )
    seconds = time.perf_counter() - started
    print(f"{what}: answered in {seconds:.1f} s")
    assert seconds < ANSWER_S * SLOW_MACHINE, f"{what} took {seconds:.1f} s"
    return " ".join(page.locator(selector).all_inner_texts())


def assert_no_library_text(text: str) -> None:
    """No pasted library advice ("make sure you don't have a local directory"), no retry noise."""
    assert "local directory" not in text and "Can't load" not in text, text


@pytest.mark.browser
def test_an_offline_start_says_what_is_missing_and_every_tab_answers_at_once(offline_page):
    page = offline_page
    banner = page.locator("#weights-banner").inner_text()
    assert "No checkpoint is downloaded yet" in banner
    assert "python -m playground download" in banner and "--weights tiny" in banner

    for task, title in (("semantic", "Semantic"), ("detection", "Detection"), ("instance", "Instance")):
        open_tab(page, title)
        labels = page.locator(f"#{task}-models label").all_inner_texts()
        assert labels and all(label.endswith("(weights not downloaded)") for label in labels), labels
        pick_example(page, task)
        started = time.perf_counter()
        page.locator(f"#{task}-run").click()
        assert_no_library_text(answered(page, f"[id^='{task}-caption-']", started, title))

    open_tab(page, "Prompt")
    assert "Weights not downloaded: Segment Anything" in page.locator("#prompt-weights").inner_text()
    pick_example(page, "prompt")
    page.locator("#prompt-canvas img").first.wait_for(timeout=30_000)
    started = time.perf_counter()
    click_image(page, "#prompt-canvas")
    status = answered(page, "#prompt-status", started, "Prompt")
    assert "Segment Anything" in status and "SAM 2.1" in status  # both models say why, and stay said
    assert_no_library_text(status)

    open_tab(page, "Text")
    assert "Weights not downloaded: Grounded-SAM" in page.locator("#text-weights").inner_text()
    pick_example(page, "text")
    page.locator("#text-prompt textarea").fill("cat")
    started = time.perf_counter()
    page.locator("#text-run").click()
    assert_no_library_text(answered(page, "[id^='text-caption-']", started, "Text"))

    open_tab(page, "Compare")
    pick_example(page, "compare")
    started = time.perf_counter()
    page.locator("#compare-run").click()
    assert_no_library_text(answered(page, "[id^='compare-caption-']", started, "Compare"))

    tab = page.get_by_role("tab", name=VIDEO_TAB)
    if tab.is_visible():
        tab.click()
    else:
        page.locator(".overflow-menu button").first.click()
        page.locator(".overflow-dropdown button", has_text=VIDEO_TAB).click()
    assert "Weights not downloaded" in page.locator("#video-weights").inner_text()
    page.locator("#video-fps input").fill("2")
    page.locator("#video-fps input").press("Enter")
    page.locator("#video-example").click()
    page.get_by_text("every panoptic segment (MaskFormer + SAM 2 video)").click()  # needs no click
    page.locator("#video-canvas img").first.wait_for(timeout=60_000)
    started = time.perf_counter()
    page.locator("#video-track").click()
    assert_no_library_text(answered(page, "#video-status", started, "Video"))


# ---- the tiny-weights app: refused inputs, the Prompt and Text tabs --------------------------


def upload(page, task: str, path: Path) -> None:
    page.locator(f"#{task}-image input[type=file]").set_input_files(str(path))


@pytest.mark.browser
def test_a_refused_file_keeps_the_results_and_says_why_until_the_next_run(page, tmp_path):
    from browser_helpers import run_and_wait, select_models
    from PIL import Image

    open_tab(page, "Semantic")
    pick_example(page, "semantic")
    select_models(page, "semantic", ["FCN ResNet-50"])
    shown = run_and_wait(page, "semantic", 1)
    caption = page.locator("#semantic-caption-0").inner_text()
    assert caption.startswith("FCN ResNet-50 (2015; mIoU 60.5") and "weights meta" not in caption, caption

    not_an_image = tmp_path / "holiday.jpg"
    not_an_image.write_text("this is a text file, not a photo\n")
    huge = tmp_path / "huge.png"
    Image.new("L", (8001, 5000)).save(huge)  # 40.005 megapixels: over the limit, a small file
    for path, why in ((not_an_image, "is not an image format we can read"), (huge, "over the limit of 40 megapixels")):
        upload(page, "semantic", path)
        page.wait_for_function(
            "(why) => document.querySelector('#semantic-stale')?.innerText.includes(why)", arg=why, timeout=30_000
        )
        page.locator("#semantic-run").click()
        # The line as it reads once Run's elapsed-time counter (Gradio's progress on that line) is gone.
        line = page.wait_for_function(
            "(why) => { const line = document.querySelector('#semantic-stale')?.innerText.trim() || '';"
            " return /^Not run:/.test(line) && line.includes(why) ? line : null; }",
            arg=why,
            timeout=30_000,
        ).json_value()
        assert line.startswith("Not run:") and why in line and "previous image" in line, line
        assert "Press Run" not in line and "\n" not in line.strip()
        assert page.locator("#semantic-panel-0 img").first.get_attribute("src") == shown[0]
        assert page.locator(".toast-body").count() == 0  # no toast that vanishes: the line stays
    pick_example(page, "semantic", index=1)
    page.wait_for_function("() => !document.querySelector('#semantic-stale')?.innerText.includes('Not run')")


@pytest.mark.browser
def test_sam2s_panel_takes_clicks_and_segment_everything_starts_afresh(page):
    open_tab(page, "Prompt")
    pick_example(page, "prompt", index=1)
    page.locator("#prompt-panel-sam2 img").first.wait_for(timeout=30_000)
    before = page.locator("#prompt-canvas img").first.get_attribute("src")
    click_image(page, "#prompt-panel-sam2", 0.4, 0.5)  # SAM 2's panel, not SAM's canvas
    page.wait_for_function("() => /SAM 2.1/.test(document.querySelector('#prompt-status')?.innerText)", timeout=180_000)
    assert page.locator("#prompt-canvas img").first.get_attribute("src") != before
    assert len(page.locator("#prompt-candidate label").all_inner_texts()) == 3

    page.get_by_text("box corner", exact=True).click()
    click_image(page, "#prompt-canvas", 0.2, 0.2)
    page.get_by_text("Box: now click the opposite corner.").first.wait_for(timeout=60_000)
    page.get_by_text("Segment everything (SAM)").click()
    sliders = page.locator("input[aria-label='number input for points per side']")
    sliders.fill("4")
    sliders.press("Enter")
    page.locator("#prompt-everything").click()
    page.wait_for_function(
        "() => /\\d+ masks? ·/.test(document.querySelector('#prompt-status')?.innerText)", timeout=180_000
    )
    status = page.locator("#prompt-status").inner_text()
    assert "opposite corner" not in status and "1 masks" not in status, status
    assert "'Segment everything' is Segment Anything ViT-B's alone" in status
    assert "every mask found is shown" in page.locator("#prompt-candidate").inner_text()


@pytest.mark.browser
def test_text_thresholds_answer_enter_and_never_rerun_on_blur(page):
    open_tab(page, "Text")
    pick_example(page, "text", index=2)
    page.locator("#text-prompt textarea").fill("cat")
    page.locator("#text-run").click()
    page.wait_for_function(  # the last panel's caption, with its timings: the run is over
        "() => /OWLv2 \\+ SAM[\\s\\S]* ms/.test(document.querySelector('#text-caption-2')?.innerText)",
        timeout=240_000,
    )
    caption = page.locator("#text-caption-0")
    first = caption.inner_text()
    assert first.startswith("Grounded-SAM (2023)\n"), first  # no "none: its parts' scores only"
    captions = " ".join(page.locator(f"#text-caption-{i}").inner_text() for i in range(3))
    assert "unconfirmed" not in captions and "none:" not in captions, captions
    box = page.locator("#text-box-threshold input[type=number]")
    box.focus()
    page.locator("#text-prompt textarea").focus()  # the box loses focus, unchanged
    page.wait_for_timeout(3000)
    assert caption.inner_text() == first  # a second run would say "cached" where the first said "cold"
    box.fill("0.3")
    box.press("Enter")
    page.wait_for_function(  # the run the Enter started, over: no progress text, and new timings
        "(first) => { const t = document.querySelector('#text-caption-0')?.innerText || '';"
        " return t !== first && / ms$/.test(t.trim()) && !/steps|queue/.test(t); }",
        arg=first,
        timeout=120_000,
    )
    # (a re-run always shows new timings, so the unchanged caption after the blur above was no re-run)


SEVEN = ["FCN ResNet-50", "U-Net (Carvana)", "Faster R-CNN ResNet-50 FPN v2", "RetinaNet ResNet-50 FPN v2"]
SEVEN += ["Mask R-CNN ResNet-50 FPN v2", "SSDLite320 MobileNetV3-Large", "DETR ResNet-50"]


@pytest.mark.browser
def test_compare_panels_stay_even_and_the_ab_view_follows_a_and_b(page):
    from browser_helpers import run_and_wait, select_models

    page.get_by_text("Models in memory").click()  # filled when the page opened, no Refresh needed
    page.get_by_text("budget").first.wait_for(timeout=30_000)
    assert "Device" in page.locator("#memory-report").inner_text()

    open_tab(page, "Compare")
    pick_example(page, "compare", index=4)
    select_models(page, "compare", SEVEN)
    run_and_wait(page, "compare", 7)
    first, seventh = (page.locator(f"#compare-panel-{i}").bounding_box()["width"] for i in (0, 6))
    assert seventh < first * 1.2, f"the 7th panel is {seventh:.0f} px wide, the first {first:.0f} px"
    counts = page.locator("#compare-diff-counts")
    page.wait_for_function(  # the A/B view came with the results, without "Show difference"
        "() => /Objects/.test(document.querySelector('#compare-diff-counts')?.innerText)", timeout=60_000
    )
    before = counts.inner_text()
    page.locator("#compare-b input").click()
    options = page.locator("[role=option]")
    options.first.wait_for(timeout=10_000)
    titles = options.all_inner_texts()
    new_b = next(title.strip() for title in titles if "✓" not in title and title.strip() not in before)
    options.filter(has_text=new_b).first.click()
    page.wait_for_function(
        "(title) => document.querySelector('#compare-diff-counts')?.innerText.includes(title)",
        arg=new_b,
        timeout=60_000,
    )


@pytest.mark.browser
def test_video_labels_clear_the_drawing_the_result_frame_fills_and_tracks_json_has_every_route(page):
    import numpy as np
    from browser_helpers import fetch_image
    from test_browser_video import click_until_drawn, open_video_tab

    open_video_tab(page)
    fps = page.locator("#video-fps input")
    fps.fill("2")
    fps.press("Enter")
    page.locator("#video-example").click()
    canvas = page.locator("#video-canvas img").first
    canvas.wait_for(timeout=60_000)
    for name in ("refine", "cancel"):  # nothing to refine or cancel before a run
        assert page.locator(f"#video-{name}").is_disabled(), name
    bare = fetch_image(page, canvas.get_attribute("src"))
    click_until_drawn(page, canvas)
    drawn = canvas.get_attribute("src")
    page.get_by_text("text", exact=True).click()  # a click is no prompt in text mode: not drawn
    page.wait_for_function("(drawn) => document.querySelector('#video-canvas img')?.src !== drawn", arg=drawn)
    assert np.array_equal(fetch_image(page, canvas.get_attribute("src")), bare)
    page.locator("#video-text textarea").fill("cat")
    page.locator("#video-track").click()
    page.wait_for_function("() => /Tracked:/.test(document.querySelector('#video-status')?.innerText)", timeout=300_000)
    assert not page.locator("#video-cancel").is_disabled()
    page.locator("#video-scrubbed img").first.wait_for(timeout=30_000)  # filled without scrubbing
    for n in range(2):  # each route's title in a line above its video, no label over the drawn ones
        note = page.locator(f"#video-note-{n}")
        assert note.is_visible() and note.inner_text().strip(), n
        label = page.locator(f"#video-overlay-{n} [data-testid=block-label]")
        assert label.count() == 0 or not label.first.is_visible()
    page.get_by_text("tracks.json (same as the CLI)").click()
    shown = page.locator("#video-json").inner_text()
    assert shown.count("model") >= 2, shown[:500]  # both text routes' tracks, not only the first


@pytest.mark.browser
def test_the_score_panel_has_no_placeholder_agrees_with_captions_fits_and_names_its_truth(page):
    from browser_helpers import run_and_wait, select_models

    open_tab(page, "Detection")
    pick_example(page, "detection", index=2)  # chelsea, with a bundled annotation
    select_models(page, "detection", ["RetinaNet ResNet-50 FPN v2", "DETR ResNet-50"])
    run_and_wait(page, "detection", 2)
    page.locator("#detection-score-panel").get_by_text("Score against ground truth").first.click()
    page.locator("#detection-score-table thead th").first.wait_for(timeout=30_000)
    before = [h.strip() for h in page.locator("#detection-score-table thead th").all_inner_texts()]
    assert before and not any(h in ("1", "2", "3") for h in before), before  # named columns before scoring
    page.locator("#detection-use-example").click()
    page.locator("#detection-truth a, #detection-truth .file-name").first.wait_for(timeout=30_000)
    page.get_by_text("…or draw boxes: two clicks and a label each").click()
    for x, y in ((0.2, 0.2), (0.7, 0.8)):
        click_image(page, "#detection-truth-canvas", x, y)
        page.wait_for_timeout(800)
    page.get_by_text("Boxes: person").first.wait_for(timeout=30_000)
    page.locator("#detection-score-button").click()
    table = page.locator("#detection-score-table")
    page.wait_for_function(
        "() => document.querySelector('#detection-scored-from')?.innerText.includes('Scored against')", timeout=60_000
    )
    line = page.locator("#detection-scored-from").inner_text()
    assert "ground-truth file" in line and "1 drawn box" in line, line
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert headers[-1] == "published" and "SQ" not in headers, headers
    cells = [c.strip() for c in table.locator("tbody td").all_text_contents() if c.strip()]
    assert cells and not any(c in ("1", "2", "3") for c in headers), (headers, cells)
    shown = table.inner_text()  # the virtual table's rows are not <tr>s: read its text
    assert "RetinaNet ResNet-50 FPN v2" in shown and "DETR ResNet-50" in shown, shown
    assert "box AP 41.5 on COCO val2017" in shown and "box AP 42.0" in shown, shown  # each model's own words
    last = table.locator("thead th").last.bounding_box()
    panel = page.locator("#detection-score-panel").bounding_box()
    assert last["x"] + last["width"] <= panel["x"] + panel["width"] + 1, (last, panel)


def test_the_score_tables_published_column_words_it_as_the_captions_do_and_sq_rq_have_columns():
    from playground.core.registry import get_spec
    from playground.core.weights import published_score
    from playground.render.views import published_words
    from playground.scoring.metrics import Matches, Score
    from playground.ui.score_panel import score_table

    counts = {"ap": 0.1, "ap50": 0.2, "ap75": 0.0, "precision": 0.5, "recall": 0.5, "tp": 1, "fp": 1, "fn": 1}
    scores = [Score(key, "detection", counts, Matches()) for key in ("retinanet", "detr", "grounding-dino", "d-fine")]
    scores.append(Score("maskformer", "panoptic", {"pq": 0.3, "sq": 0.8, "rq": 0.4}, Matches()))
    headers, rows = score_table(scores)
    assert headers[-3:] == ["SQ", "RQ", "published"], headers
    for row, score in zip(rows, sorted(scores, key=lambda s: -s.headline)):
        words = published_words(published_score(get_spec(score.model)))  # what the caption says
        assert row[-1] == (words or "—"), (row, words)
    panoptic = next(row for row in rows if row[1] == "panoptic")
    assert panoptic[headers.index("SQ")] == "0.800" and panoptic[headers.index("tp/fp/fn")] == ""


@pytest.mark.browser
def test_downloads_come_as_one_zip_too_and_an_empty_model_gives_no_empty_json(page):
    import io
    import zipfile

    from browser_helpers import run_and_wait, select_models

    open_tab(page, "Detection")
    pick_example(page, "detection", index=2)
    select_models(page, "detection", ["RetinaNet ResNet-50 FPN v2"])
    run_and_wait(page, "detection", 1)
    page.get_by_text("nothing ≥").first.wait_for(timeout=30_000)  # tiny weights: nothing above 0.5
    page.locator("#detection-download").get_by_text("Download (overlays, masks, COCO results)").click()
    page.locator("#detection-prepare").click()
    files = page.locator("#detection-downloads a")
    files.nth(1).wait_for(timeout=30_000)
    listing = page.locator("#detection-downloads").inner_text().replace("\n", "")
    assert "all_files.zip" in listing and "retinanet_overlay.png" in listing, listing
    assert "retinanet_coco.json" not in listing, listing  # no 2-byte "[]" file
    bundle = next(a.get_attribute("href") for a in files.all() if "all_files.zip" in (a.get_attribute("href") or ""))
    names = zipfile.ZipFile(io.BytesIO(page.request.get(bundle).body())).namelist()
    assert names == ["retinanet_overlay.png"], names


@pytest.mark.browser
def test_the_text_tab_runs_the_models_ticked_and_sam3_asks_for_text_not_a_box(page):
    from browser_helpers import select_models

    open_tab(page, "Text")
    pick_example(page, "text", index=2)
    labels = [label.strip() for label in page.locator("#text-models label").all_inner_texts()]
    assert len(labels) == 3 and all(page.locator("#text-models input").nth(i).is_checked() for i in range(3))
    select_models(page, "text", [labels[1]])  # SAM 3 alone
    page.locator("#text-prompt textarea").fill(",")  # no class name in it
    page.locator("#text-run").click()
    page.wait_for_function(
        "() => /not run/.test(document.querySelector('#text-caption-2')?.innerText)"
        " && (document.querySelector('#text-caption-1')?.innerText || '').length > 10",
        timeout=120_000,
    )
    sam3 = page.locator("#text-caption-1").inner_text()
    assert "type it" in sam3 and "draw a box" not in sam3, sam3
    assert "not run" in page.locator("#text-caption-0").inner_text()


@pytest.mark.browser
def test_explain_views_are_large_wrap_their_caption_leave_the_wheel_and_heat_maps_have_a_scale(page):
    from browser_helpers import fetch_image, run_and_wait, select_models

    open_tab(page, "Semantic")
    pick_example(page, "semantic")
    select_models(page, "semantic", ["FCN ResNet-50"])
    run_and_wait(page, "semantic", 1)
    page.locator("#semantic-explain input[type=checkbox]").check()
    gallery = page.locator("#semantic-explain-views")
    gallery.locator("img").first.wait_for(timeout=60_000)
    page.get_by_text("Score heatmap").first.wait_for(timeout=60_000)
    thumb = gallery.locator(".thumbnail-item").first.bounding_box()
    assert thumb["height"] >= 250 and thumb["width"] >= 300, thumb  # not tiny at 1400 px
    overflow = gallery.locator(".grid-wrap").evaluate("(e) => getComputedStyle(e).overflowY")
    assert overflow == "visible", overflow  # no scroll of its own: the wheel scrolls the page
    heat = next(
        gallery.locator("img").nth(i).get_attribute("src")
        for i in range(gallery.locator("img").count())
        if "Score heatmap" in (gallery.locator(".thumbnail-item").nth(i).inner_text() or "")
    )
    pixels = fetch_image(page, heat)
    strip = pixels[-10:, pixels.shape[1] // 3 : pixels.shape[1] // 2]
    assert (strip[..., 0] < 100).any() and (strip[..., 1] > 150).any(), "no viridis colour scale at the bottom"
    gallery.locator(".thumbnail-item").first.click()
    caption = gallery.locator(".caption").first
    caption.wait_for(timeout=10_000)
    assert caption.evaluate("(e) => getComputedStyle(e).whiteSpace") == "normal"
