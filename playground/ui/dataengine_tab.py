"""The Data engine tab: label a zip or some images with the labeler that scores best on your own ground
truth, review and correct the labels in the browser, and export COCO, YOLO and report.json.

Every job has its own folder and store (`dataengine_jobs`); its link (``?tab=dataengine&job=TOKEN``,
put in the address bar as soon as the job exists) reopens it with its labels, its labeler table and
the image under review, so a reload loses nothing: each edit is in the store the moment it is made.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import gradio as gr

from playground.core.errors import PlaygroundError
from playground.core.registry import REGISTRY
from playground.dataengine.edits import accept_image, add_annotation, relabel_annotation, remove_annotation
from playground.dataengine.exports import FORMATS, job_classes
from playground.dataengine.job import Progress
from playground.dataengine.labelers import EVERYTHING, TEXT_ROUTES, make_labeler
from playground.runtime.service import Playground
from playground.ui.common import model_events, user_error
from playground.ui.dataengine_jobs import (
    Job,
    current_job,
    export_job,
    job_for,
    label,
    labeler_table,
    open_job,
    progress_line,
    save_settings,
    saved_settings,
    saved_table,
    stop_job,
    summary,
    table_rows,
    take_truth,
)
from playground.ui.dataengine_review import Opened, canvas, click, gallery, instance_choices, mask_at_size, open_image
from playground.ui.dataengine_truth import add_draw_panel, bundled_examples, wire_draw_panel

LINK_NAMES = ("job", "image")
"""The query names this tab's links use besides ``tab``."""
CLOSED_SET = ("instance", "panoptic", "detection")
DEFAULT_CANDIDATES = ("grounded-sam", "grounding-dino", "owlv2")
CLICK_KINDS = {"foreground point": "foreground", "background point": "background"}
TABLE_HEADERS = ["", "labeler", "box AP", "mask AP", "mask IoU", "PQ", "precision", "recall", "images", "note"]
GALLERY_EVERY_S = 3.0
"""While a job runs, the gallery is redrawn at most this often."""
LINK_JS = """(query) => {
    if (!query) return "";
    const link = window.location.origin + window.location.pathname + query;
    window.history.replaceState(null, "", link);
    return link;
}"""


def labeler_choices() -> list[tuple[str, str]]:
    """(label, key): the text routes, SAM's "everything", then every closed-set detection, instance or
    panoptic model."""
    closed = [k for k, s in REGISTRY.items() if set(s.tasks) & set(CLOSED_SET) and k not in (*TEXT_ROUTES, EVERYTHING)]
    kinds = {**dict.fromkeys(TEXT_ROUTES, "text"), EVERYTHING: "every object"} | dict.fromkeys(closed, "closed set")
    return [(f"{REGISTRY[key].title} · {kind}", key) for key, kind in kinds.items()]


def one_line(function: Callable) -> Callable:
    """``function`` with a `PlaygroundError` raised as one clear line (logged without a traceback)."""

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except PlaygroundError as error:
            raise user_error(str(error)) from None

    return wrapped


def create_dataengine_tab(playground: Playground, demo: gr.Blocks) -> None:
    """The tab; ``demo`` (the app being built) reopens a linked job on page load."""
    with gr.Tab("Data engine", id="dataengine"):
        gr.Markdown(
            "**Data engine:** label a zip or a set of images with the labeler that scores best on a few images "
            "you have ground truth for, review and correct the labels (least certain first), and export COCO, "
            "YOLO and a report. Every edit is saved at once; the link in the address bar reopens the job."
        )
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(
                    file_count="multiple", file_types=["image", ".zip"], label="Images or a zip",
                    elem_id="dataengine-files",
                )  # fmt: skip
                classes = gr.Textbox(label="Classes", placeholder="person, cat, cup", elem_id="dataengine-classes")
                labeler = gr.Dropdown(
                    labeler_choices(), value="grounded-sam", label="Labeler", elem_id="dataengine-labeler"
                )
                with gr.Row():
                    own = gr.Checkbox(value=True, label="each model's own score threshold", elem_id="dataengine-own")
                    threshold = gr.Slider(
                        0, 1, value=0.3, step=0.01, label="least score kept", elem_id="dataengine-threshold"
                    )
                examples = gr.Button("Try the bundled photos and their annotations", size="sm")
            with gr.Column(scale=1):
                truth = gr.File(
                    file_count="multiple", file_types=[".json", ".png"], elem_id="dataengine-truth",
                    label="Ground truth for some images (COCO JSON, PNG label maps)",
                )  # fmt: skip
                draw = add_draw_panel()
                candidates = gr.CheckboxGroup(
                    labeler_choices(), value=list(DEFAULT_CANDIDATES), label="Labelers to score",
                    elem_id="dataengine-candidates",
                )  # fmt: skip
                score = gr.Button("Score labelers", elem_id="dataengine-score")
        table = gr.Dataframe(
            value=[], headers=TABLE_HEADERS, label="Labelers on your ground truth, best first", interactive=False,
            wrap=True, elem_id="dataengine-table",
        )  # fmt: skip
        with gr.Row():
            run = gr.Button("Label", variant="primary", elem_id="dataengine-label")
            stop = gr.Button("Stop", variant="stop", elem_id="dataengine-stop")
        status = gr.Markdown(elem_id="dataengine-status")
        link = gr.Textbox(label="Link to this job", buttons=["copy"], interactive=False, elem_id="dataengine-link")
        review_note = gr.Markdown(elem_id="dataengine-review-note")
        pictures = gr.Gallery(
            columns=6, height=300, allow_preview=False, label="Labelled images", elem_id="dataengine-gallery"
        )
        with gr.Row():
            with gr.Column(scale=3):
                shown = gr.Image(
                    interactive=False, format="png", height=480, label="Click to add a missing object (SAM)",
                    elem_id="dataengine-canvas",
                )  # fmt: skip
            with gr.Column(scale=2):
                instances = gr.Radio([], label="Objects (class · score)", elem_id="dataengine-instances")
                with gr.Row():
                    remove = gr.Button("Remove", size="sm", elem_id="dataengine-remove")
                    relabel_to = gr.Dropdown(
                        [], label="New class", allow_custom_value=True, elem_id="dataengine-relabel-to"
                    )
                    relabel = gr.Button("Relabel", size="sm", elem_id="dataengine-relabel")
                click_kind = gr.Radio(list(CLICK_KINDS), value="foreground point", label="A click adds")
                with gr.Row():
                    add_as = gr.Dropdown(
                        [], label="Class of the new object", allow_custom_value=True, elem_id="dataengine-add-as"
                    )
                    add = gr.Button("Add", size="sm", elem_id="dataengine-add")
                    clear = gr.Button("Clear clicks", size="sm", elem_id="dataengine-clear")
                accept = gr.Button("Accept image", variant="primary", size="sm", elem_id="dataengine-accept")
                edit_status = gr.Markdown(elem_id="dataengine-edit-status")
        with gr.Row():
            formats = gr.CheckboxGroup(
                list(FORMATS), value=list(FORMATS), label="Formats", elem_id="dataengine-formats"
            )
            export = gr.Button("Export", elem_id="dataengine-export")
        downloads = gr.File(
            file_count="multiple", label="COCO JSON, YOLO zip, report.json", elem_id="dataengine-downloads"
        )
        token = gr.State("")
        sources = gr.State(())
        digests = gr.State([])
        opened = gr.State(None)
        query = gr.Textbox(visible="hidden", elem_id="dataengine-query")

    @one_line
    def on_score(job_token, used, uploads, truths, keys, names, own_threshold, least, progress=gr.Progress()):
        job, used = current_job(job_token, used, uploads)
        save_settings(job, own_threshold, least)
        take_truth(job, truths or [])
        chosen = labeler_table(
            playground, job, keys, names, None if own_threshold else least,
            on_labeler=lambda step: progress(None, desc=f"scoring: {step}"),
        )  # fmt: skip
        best = f"**{chosen.best}** scores best (box AP, then mask AP, then PQ) and is chosen." if chosen.best else ""
        line = f"Scored {len(chosen.rows)} labelers on {chosen.rows[0].images} images with ground truth. {best}"
        return job.token, used, table_rows(chosen.to_json()), chosen.best or gr.skip(), line, job.query

    @one_line
    def on_prepare(job_token, used, uploads, key, names, own_threshold, least, progress=gr.Progress()):
        """The job to label, its labeler's models loaded: a new job when the labeler differs from the one
        the job labelled with, so every job keeps one labeler."""
        job, used = current_job(job_token, used, uploads)
        progress(None, desc=f"loading {key}")
        job, fresh = job_for(job, make_labeler(playground, key, names, None if own_threshold else least))
        save_settings(job, own_threshold, least)
        line = "A new job: this one labels with another labeler (the previous job keeps its link). " if fresh else ""
        return job.token, used, line + "Labelling…", job.query

    def on_label(job_token, key, names, own_threshold, least, progress=gr.Progress()) -> Iterator[tuple]:
        """Label the job on a worker thread (it goes on if the page closes), streaming its progress and,
        every `GALLERY_EVERY_S`, the gallery."""
        job = open_job(job_token)
        if job is None:
            return
        try:
            labeler = make_labeler(playground, key, names, None if own_threshold else least)
        except PlaygroundError as error:
            raise user_error(str(error)) from None
        updates: queue.Queue[Progress] = queue.Queue()
        failures: list[Exception] = []

        def work() -> None:
            try:
                label(job, labeler, on_progress=updates.put)
            except Exception as error:  # raised below, in the event
                failures.append(error)

        worker = threading.Thread(target=work, name=f"label-{job.token[:8]}", daemon=True)
        worker.start()
        drawn = 0.0
        while worker.is_alive() or not updates.empty():
            try:
                step = updates.get(timeout=0.5)
            except queue.Empty:
                continue
            line = progress_line(step)
            progress((step.done, step.total), desc=line, unit="files")
            if time.monotonic() - drawn >= GALLERY_EVERY_S:
                drawn = time.monotonic()
                yield line, *review(job)
            else:
                yield line, gr.skip(), gr.skip(), gr.skip()
        worker.join()
        for error in failures:
            raise user_error(str(error)) if isinstance(error, PlaygroundError) else error
        yield summary(job), *review(job)

    def review(job: Job) -> tuple:
        with job.store() as store:
            items, order, note = gallery(job, store)
        return items, order, note

    @one_line
    def on_pick(job_token, order, evt: gr.SelectData):
        job = open_job(job_token)
        if job is None or not isinstance(evt.index, int) or evt.index >= len(order):
            return tuple(gr.skip() for _ in range(len(picked) + 1))
        return *show(job, order[evt.index], ""), f"{job.query}&image={order[evt.index]}"

    def show(job: Job, digest: str | Opened, note: str) -> tuple:
        """The opened image's outputs: state, canvas, its objects, the class choices, a line."""
        with job.store() as store:
            current = digest if isinstance(digest, Opened) else open_image(job, store, digest)
            names = job_classes(store)
            record = store.image(current.digest)
            drawn = canvas(store, current)
            objects = gr.Radio(choices=instance_choices(store, current.digest), value=None)
        line = note or f"**{record.name}** · {record.state}"
        first = names[0] if names else None
        return current, drawn, objects, gr.Dropdown(choices=names, value=first), gr.Dropdown(choices=names), line

    def edited(job_token: str, current: Opened | None, edit: Callable, note: str) -> tuple:
        """Make ``edit(store, digest)`` and show the image and the gallery as the store has them now."""
        job = open_job(job_token)
        if job is None or current is None:
            raise user_error("Pick an image in the gallery first.")
        with job.store() as store:
            edit(store, current.digest)
        return *show(job, replace(current, focus=None), note), *review(job)

    @one_line
    def on_remove(job_token, current, chosen):
        ident = chosen_id(chosen)
        return edited(job_token, current, lambda store, _: remove_annotation(store, ident), "Removed; saved.")

    @one_line
    def on_relabel(job_token, current, chosen, name):
        ident = chosen_id(chosen)
        relabelled = f"Relabelled as {name}; saved."
        return edited(job_token, current, lambda store, _: relabel_annotation(store, ident, name or ""), relabelled)

    @one_line
    def on_add(job_token, current: Opened | None, name):
        if current is None or current.mask is None:
            raise user_error("Click on the missing object first: SAM segments it, then Add saves it.")
        mask = current.mask

        def add_mask(store, digest):
            add_annotation(store, digest, name or "", mask_at_size(mask, store, digest))

        return edited(job_token, current.cleared(), add_mask, f"Added a {name}; saved.")

    @one_line
    def on_accept(job_token, current):
        return edited(job_token, current, accept_image, "Accepted; saved.")

    @one_line
    def on_click(job_token, current: Opened | None, kind, evt: gr.SelectData):
        job = open_job(job_token)
        if job is None or current is None:
            raise user_error("Pick an image in the gallery first.")
        x, y = evt.index
        current = click(playground, current, CLICK_KINDS[kind], float(x), float(y))
        found = "SAM's mask is shown in yellow: pick its class and press Add." if current.mask is not None else (
            "SAM found no mask at these clicks: click elsewhere."
        )  # fmt: skip
        with job.store() as store:
            return current, canvas(store, current), found

    def on_clear(job_token, current: Opened | None):
        job = open_job(job_token)
        if job is None or current is None:
            return gr.skip(), gr.skip()
        current = current.cleared()
        with job.store() as store:
            return current, canvas(store, current)

    def on_focus(job_token, current: Opened | None, chosen):
        job = open_job(job_token)
        if job is None or current is None:
            return gr.skip(), gr.skip()
        current = replace(current, focus=int(chosen) if chosen else None)
        with job.store() as store:
            return current, canvas(store, current)

    @one_line
    def on_export(job_token, chosen_formats):
        job = open_job(job_token)
        if job is None:
            raise user_error("Nothing to export yet: upload images and press Label.")
        return [str(path) for path in export_job(job, chosen_formats or [])]

    def on_load(request: gr.Request):
        """A link to a job: its settings, table, state, gallery and the image under review, from its store."""
        params = dict(request.query_params) if request else {}
        job = open_job(params.get("job")) if params.get("tab") == "dataengine" else None
        if job is None:
            return tuple(gr.skip() for _ in restored)
        with job.store() as store:
            config = store.config()
            known = params.get("image", "") in {record.digest for record in store.images()}
        settings = (config.model, ", ".join(config.classes)) if config else (gr.skip(), gr.skip())
        kept = saved_settings(job)
        thresholds = (kept["own"], kept["threshold"]) if kept else (gr.skip(), gr.skip())
        opened_outputs = show(job, params["image"], "") if known else tuple(gr.skip() for _ in picked)
        state = summary(job) if config else "Files uploaded; press Score labelers or Label."
        linked = job.query + (f"&image={params['image']}" if known else "")
        return (
            job.token, *settings, *thresholds, table_rows(saved_table(job)), state, *review(job), *opened_outputs,
            linked,
        )  # fmt: skip

    events = model_events(playground)
    private = {"api_visibility": "private"}
    set_link = {"fn": None, "inputs": query, "outputs": link, "js": LINK_JS, **private}
    picked = [opened, shown, instances, relabel_to, add_as, edit_status]
    reviewed = [pictures, digests, review_note]
    restored = [token, labeler, classes, own, threshold, table, status, *reviewed, *picked, query]
    starters = [score, run, draw.start]  # each may make the job: one at a time, so a session makes one job
    busy = {"fn": lambda: [gr.Button(interactive=False)] * 3, "outputs": starters, "queue": False, **private}
    idle = {**busy, "fn": lambda: [gr.Button(interactive=True)] * 3}

    examples.click(bundled_examples, outputs=[files, truth], **private)
    score.click(**busy).then(
        on_score, inputs=[token, sources, files, truth, candidates, classes, own, threshold],
        outputs=[token, sources, table, labeler, status, query], show_progress_on=table, **private, **events,
    ).then(**set_link).then(**idle)  # fmt: skip
    prepared = run.click(**busy).then(
        on_prepare, inputs=[token, sources, files, labeler, classes, own, threshold],
        outputs=[token, sources, status, query], show_progress_on=status, **private, **events,
    )  # fmt: skip
    prepared.failure(**idle)
    prepared.success(**set_link).then(
        on_label, inputs=[token, labeler, classes, own, threshold], outputs=[status, *reviewed],
        show_progress_on=status, **private, **events,
    ).then(**idle)  # fmt: skip
    wire_draw_panel(draw, token, sources, files, query, demo).then(**set_link)
    stop.click(on_stop, inputs=token, **private)
    pictures.select(on_pick, inputs=[token, digests], outputs=[*picked, query], **private).then(**set_link)
    edits = {"outputs": [*picked, *reviewed], "show_progress_on": edit_status, **private}
    remove.click(on_remove, inputs=[token, opened, instances], **edits)
    relabel.click(on_relabel, inputs=[token, opened, instances, relabel_to], **edits)
    add.click(on_add, inputs=[token, opened, add_as], **edits)
    accept.click(on_accept, inputs=[token, opened], **edits)
    shown.select(
        on_click, inputs=[token, opened, click_kind], outputs=[opened, shown, edit_status], **private, **events
    )
    add_as.change(lambda name: gr.Button(f"Add as {name}" if name else "Add"), inputs=add_as, outputs=add, **private)
    instances.input(on_focus, inputs=[token, opened, instances], outputs=[opened, shown], **private)
    clear.click(on_clear, inputs=[token, opened], outputs=[opened, shown], **private)
    export.click(on_export, inputs=[token, formats], outputs=downloads, **private)
    demo.load(on_load, outputs=restored, **private).then(**set_link)


def chosen_id(chosen: str | None) -> int:
    if not chosen:
        raise user_error("Pick an object in the list first.")
    return int(chosen)


def on_stop(job_token: str) -> None:
    if stop_job(job_token):
        gr.Info("Stopping after the current image; press Label to go on.")
