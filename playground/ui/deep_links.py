"""Deep links: a URL's query string restores a tab's image, models, thresholds, prompts and results.

``?tab=detection&example=astronaut&models=detr,retinanet&score=0.4&own=false&hide=person;dog`` selects the tab,
loads the example, sets the controls, and shows the results: at once when they are cached, else
computed then, with progress. Query strings outlive server restarts and read like what they do, which
`gr.DeepLinkButton`'s session-bound links do not. An upload is linked by an opaque id, the name
of the folder Gradio's upload cache gave it (a hash of its bytes), never by a server path, and is
restored only from there. A parameter the page cannot use becomes one notice above the tabs.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from playground.ui.common import EXAMPLES_DIR

UPLOAD_ID = re.compile(r"[0-9a-f]{16,128}")


@dataclass
class TabControls:
    """The components of one tab that a link restores, by query-parameter name.

    ``restore`` is an optional ``(function, inputs, outputs)`` that shows the tab's cached results;
    it runs after the controls are set and gets the values of ``inputs``. ``checkboxes`` are linked
    as ``true`` or ``false`` (e.g. ``own``: each model's own score threshold).
    """

    task: str
    image: gr.Image
    models: gr.CheckboxGroup | gr.Dropdown | None = None
    sliders: dict[str, gr.Slider] = field(default_factory=dict)
    texts: dict[str, gr.Textbox] = field(default_factory=dict)
    restore: tuple[Callable, list, list] | None = None
    checkboxes: dict[str, gr.Checkbox] = field(default_factory=dict)
    events: dict[str, object] = field(default_factory=dict)
    """Settings of the restore event (the tab's model queue, as `model_events` gives them)."""

    @property
    def components(self) -> list[gr.components.Component]:
        return [
            self.image,
            *([self.models] if self.models is not None else []),
            *self.sliders.values(),
            *self.texts.values(),
            *self.checkboxes.values(),
        ]

    @property
    def names(self) -> list[str]:
        models = ["models"] if self.models is not None else []
        return ["image", *models, *self.sliders, *self.texts, *self.checkboxes]

    def link_js(self) -> str:
        """A browser-side function of `components`' values that puts the link to this view in the
        link box and on the clipboard."""
        return f"""(...values) => {{
            const names = {self.names!r};
            const params = new URLSearchParams({{tab: {self.task!r}}});
            names.forEach((name, i) => {{
                const value = values[i];
                if (value === null || value === undefined || value === "") return;
                if (name === "image") {{
                    const file = value.orig_name || "";
                    const stem = file.replace(/\\.[^.]+$/, "");
                    const folder = (value.path || "").split(/[\\\\/]/).slice(-2, -1)[0] || "";
                    if ({example_names()!r}.includes(stem) && file.endsWith(".jpg")) params.set("example", stem);
                    else if (/^[0-9a-f]{{16,128}}$/.test(folder)) params.set("upload", folder);
                }} else if (Array.isArray(value)) {{
                    params.set(name, value.join(","));
                }} else {{
                    params.set(name, String(value));
                }}
            }});
            const link = window.location.origin + window.location.pathname + "?" + params.toString();
            navigator.clipboard?.writeText(link).catch(() => {{}});
            return link;
        }}"""


def example_names() -> list[str]:
    return sorted(path.stem for path in EXAMPLES_DIR.glob("*.jpg"))


def uploaded_file(upload_id: str) -> str | None:
    """A file in Gradio's upload cache folder ``upload_id``, or None. The folder is named by a hash
    of the bytes, so every file in it (the same bytes under the names they were sent as) will do."""
    if not UPLOAD_ID.fullmatch(upload_id):
        return None
    folder = Path(get_upload_folder()) / upload_id
    files = sorted(path for path in folder.iterdir() if path.is_file()) if folder.is_dir() else []
    return str(files[0]) if files else None


def restore(query: dict[str, str], controls: TabControls, problems: list[str]) -> list:
    """Updates for ``controls`` from a link's ``query`` (gr.skip() for what it does not name);
    what cannot be used is skipped and described in ``problems``."""
    updates: list = [linked_image(query, problems)]
    if controls.models is not None:
        keys = [key for key in query.get("models", "").split(",") if key]
        known = [value for _, value in controls.models.choices]
        unknown = [key for key in keys if key not in known]
        if unknown:
            problems.append(f"no model {', '.join(unknown)} on this tab (it has {', '.join(known)})")
        keys = [key for key in keys if key in known]
        updates.append(keys if keys else gr.skip())
    for name, slider in controls.sliders.items():
        updates.append(slider_value(query, name, slider, problems))
    updates += [query.get(name, gr.skip()) for name in controls.texts]
    updates += [checkbox_value(query, name, problems) for name in controls.checkboxes]
    return updates


def linked_image(query: dict[str, str], problems: list[str]) -> str | object:
    """The image a link names: a bundled example, or a file in Gradio's upload cache."""
    if "example" in query:
        if query["example"] in example_names():
            return str(EXAMPLES_DIR / f"{query['example']}.jpg")
        problems.append(f"no example '{query['example']}' (there are {', '.join(example_names())})")
    if "upload" in query:
        path = uploaded_file(query["upload"])
        if path:
            return path
        problems.append("the linked upload is no longer on this server: upload the image again")
    return gr.skip()


def slider_value(query: dict[str, str], name: str, slider: gr.Slider, problems: list[str]) -> float | object:
    if name not in query:
        return gr.skip()
    try:
        value = float(query[name])
    except ValueError:
        value = float("nan")
    if not slider.minimum <= value <= slider.maximum:  # also false for nan
        problems.append(f"{name}={query[name]} is not a number from {slider.minimum:g} to {slider.maximum:g}")
        return gr.skip()
    return value


def checkbox_value(query: dict[str, str], name: str, problems: list[str]) -> bool | object:
    if name not in query:
        return gr.skip()
    value = query[name].strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    problems.append(f"{name}={query[name]} is not true or false")
    return gr.skip()


def notice(problems: list[str]) -> str:
    return "**This link could not be restored in full:** " + "; ".join(problems) + ". The rest is restored."


def wire_deep_links(
    demo: gr.Blocks,
    tabs: gr.Tabs,
    all_controls: list[TabControls],
    link_notice: gr.Markdown,
    own_links: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """On page load, select the linked tab, restore its controls and show its cached results;
    other tabs are untouched. ``own_links``: tabs that restore their own links (the Data engine's
    job), each with the query names it reads; they are only selected here."""
    outputs = [tabs, link_notice] + [component for controls in all_controls for component in controls.components]
    own_links = own_links or {}
    tasks = [controls.task for controls in all_controls] + list(own_links)

    def on_load(request: gr.Request) -> list:
        query = dict(request.query_params) if request else {}
        task = query.pop("tab", None)
        problems: list[str] = []
        if task is not None and task not in tasks:
            problems.append(f"no tab '{task}' (there are {', '.join(tasks)})")
        updates: list = [gr.Tabs(selected=task) if task in tasks else gr.skip()]
        restored: list = []
        for controls in all_controls:
            if controls.task == task:
                restored += restore(query, controls, problems)
                extra = sorted(set(query) - set(controls.names) - {"example", "upload"} | ({"image"} & set(query)))
                if extra:
                    problems.append(f"{', '.join(extra)}: not a setting of this tab")
            else:
                restored += [gr.skip()] * len(controls.components)
        if task in own_links and (extra := sorted(set(query) - set(own_links[task]))):
            problems.append(f"{', '.join(extra)}: not a setting of this tab")
        shown = gr.Markdown(value=notice(problems), visible=True) if problems else gr.skip()
        return [*updates, shown, *restored]

    loaded = demo.load(on_load, inputs=None, outputs=outputs, api_visibility="private")
    for controls in all_controls:
        if controls.restore is not None:
            function, inputs, restore_outputs = controls.restore
            loaded.then(
                linked_results(controls.task, function, len(restore_outputs)),
                inputs=inputs,
                outputs=restore_outputs,
                api_visibility="private",
                **controls.events,
            )


def linked_results(task: str, function: Callable, outputs: int) -> Callable:
    """``function(*values, progress=...)`` on a page opened by a link to ``task`` (the results from the
    cache, or computed then with progress; a generator's updates each as it yields them); skips its
    ``outputs`` otherwise."""

    def on_linked(request: gr.Request, *values, progress=gr.Progress(track_tqdm=True)):
        query = dict(request.query_params) if request else {}
        if query.get("tab") != task:
            yield tuple(gr.skip() for _ in range(outputs))
            return
        shown = function(*values, progress=progress)
        if inspect.isgenerator(shown):
            yield from shown
        else:
            yield shown

    return on_linked


def add_link_button(controls: TabControls) -> None:
    """A "Copy link to this view" button and the box that shows the link."""
    with gr.Row():
        button = gr.Button(
            "Copy link to this view", size="sm", scale=0, min_width=200, elem_id=f"{controls.task}-link-button"
        )
        link = gr.Textbox(
            show_label=False,
            placeholder="a link that restores this tab's image, models, settings and results",
            buttons=["copy"],
            elem_id=f"{controls.task}-link",
            scale=4,
        )
    button.click(None, inputs=controls.components, outputs=link, js=controls.link_js(), api_visibility="private")
