"""The ``/label`` endpoint: the Data engine's job in one call, as ``python -m playground label`` runs it."""

from __future__ import annotations

from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal

from playground.core.errors import BadPromptError, PlaygroundError
from playground.dataengine.choose import LabelerTable
from playground.dataengine.exports import FORMATS, weights_note
from playground.dataengine.job import JobResult
from playground.dataengine.labelers import make_labeler
from playground.runtime.service import Playground
from playground.ui.common import EXAMPLES_DIR, user_error
from playground.ui.dataengine_jobs import Job, export_job, label, labeler_table, new_job, take_truth, take_uploads


def label_endpoint(playground: Playground):
    """The ``/label`` endpoint on ``playground``'s models."""

    def label_files(
        files: list[FileData],
        model: str,
        classes: str = "",
        truth: FileData | None = None,
        formats: list[str] | None = None,
        threshold: float | None = None,
    ) -> tuple[list[FileData], dict]:
        """Label: `files` (a zip, or images) labelled with `model` (a text route such as "grounded-sam",
        a detection, instance or panoptic model narrowed to `classes`, or "sam" for every object) and
        `classes` ("cat, dog"). With `truth` (COCO instances JSON, or a PNG label map, for some images) `model` may list
        several keys ("grounded-sam, owlv2"): each is scored there and the best labels the rest.
        `formats`: any of "coco", "yolo" (default both); `threshold`: the least score kept (None: each
        model's own). Returns coco.json, yolo.zip and report.json (those asked for) and a summary:
        {job, labeler, labelers (the table, with truth), counts, images_per_minute, note}."""
        paths = [uploaded_path(file, "file") for file in files or []]
        job = new_job()
        try:
            take_uploads(job, paths)
            keys = [key.strip() for key in model.split(",") if key.strip()]
            if not keys:
                raise BadPromptError('Name a model, e.g. "grounded-sam".')
            table = None
            if truth is not None:
                take_truth(job, [uploaded_path(truth, "ground truth")])
                table = labeler_table(playground, job, keys, classes, threshold)
                if table.best is None:
                    raise BadPromptError("Every labeler failed on the images with truth: " + table.text())
            elif len(keys) > 1:
                raise BadPromptError("Several models given: send truth to score them and label with the best.")
            chosen = make_labeler(playground, table.best if table else keys[0], classes, threshold)
            result = label(job, chosen)
            written = export_job(job, list(FORMATS if formats is None else formats))
        except PlaygroundError as error:
            raise user_error(str(error)) from None
        return [FileData(path=str(path)) for path in written], job_summary(job, chosen.key, table, result)

    return label_files


def uploaded_path(file: FileData | dict | str, what: str) -> str:
    """The path of an uploaded file, refusing paths outside Gradio's upload cache and our examples."""
    path = file.get("path") if isinstance(file, dict) else getattr(file, "path", file)
    if not path:
        raise user_error(f"No {what} was sent.")
    if not (is_in_or_equal(path, get_upload_folder()) or is_in_or_equal(path, EXAMPLES_DIR)):
        raise user_error(f"The {what} is not an upload; send it with gradio_client.handle_file().")
    return str(path)


def job_summary(job: Job, key: str, table: LabelerTable | None, result: JobResult) -> dict:
    """What `label_files` reports beside its files."""
    with job.store() as store:
        config = store.config()
        note = weights_note(store)
    return {
        "job": job.token,
        "labeler": key,
        "labelers": table.to_json() if table is not None else None,
        "counts": result.counts,
        "images_per_minute": round(result.images_per_minute, 2),
        "weights": config.weights if config else None,
        "note": note,
    }
