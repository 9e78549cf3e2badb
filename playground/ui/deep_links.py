"""Deep links: a URL's query string restores a tab's image, models, thresholds and prompts.

``?tab=detection&example=astronaut&models=detr,retinanet&score=0.4`` selects the tab, loads the
example and sets the controls. Query strings outlive server restarts and read like what they do,
which `gr.DeepLinkButton`'s session-bound links do not. Uploaded images are linked by their path in
Gradio's upload cache and restored only from there, so a link cannot name any other file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder, is_in_or_equal

from playground.ui.common import EXAMPLES_DIR


@dataclass
class TabControls:
    """The components of one tab that a link restores, by query-parameter name."""

    task: str
    image: gr.Image
    models: gr.CheckboxGroup | gr.Dropdown | None = None
    sliders: dict[str, gr.Slider] = field(default_factory=dict)
    texts: dict[str, gr.Textbox] = field(default_factory=dict)

    @property
    def components(self) -> list[gr.components.Component]:
        return [
            self.image,
            *([self.models] if self.models is not None else []),
            *self.sliders.values(),
            *self.texts.values(),
        ]

    def link_js(self) -> str:
        """A browser-side function of `components`' values that returns the link to this view."""
        names = ["image", *(["models"] if self.models is not None else []), *self.sliders, *self.texts]
        return f"""(...values) => {{
            const names = {names!r};
            const params = new URLSearchParams({{tab: {self.task!r}}});
            names.forEach((name, i) => {{
                const value = values[i];
                if (value === null || value === undefined || value === "") return;
                if (name === "image") {{
                    const file = value.orig_name || "";
                    const stem = file.replace(/\\.[^.]+$/, "");
                    if ({example_names()!r}.includes(stem) && file.endsWith(".jpg")) params.set("example", stem);
                    else if (value.path) params.set("image", value.path);
                }} else if (Array.isArray(value)) {{
                    params.set(name, value.join(","));
                }} else {{
                    params.set(name, String(value));
                }}
            }});
            return window.location.origin + window.location.pathname + "?" + params.toString();
        }}"""


def example_names() -> list[str]:
    return sorted(path.stem for path in EXAMPLES_DIR.glob("*.jpg"))


def linked_image(query: dict[str, str]) -> str | None:
    """The image a link names: a bundled example, or a file inside Gradio's upload cache."""
    if query.get("example") in example_names():
        return str(EXAMPLES_DIR / f"{query['example']}.jpg")
    path = query.get("image")
    if path and is_in_or_equal(path, get_upload_folder()) and Path(path).is_file():
        return path
    return None


def restore(query: dict[str, str], controls: TabControls) -> list:
    """Updates for ``controls`` from a link's ``query`` (gr.skip() for what it does not name)."""
    updates: list = [linked_image(query) or gr.skip()]
    if controls.models is not None:
        keys = [key for key in query.get("models", "").split(",") if key]
        updates.append(keys if keys else gr.skip())
    for name in controls.sliders:
        try:
            updates.append(float(query[name]))
        except (KeyError, ValueError):
            updates.append(gr.skip())
    updates += [query.get(name, gr.skip()) for name in controls.texts]
    return updates


def wire_deep_links(demo: gr.Blocks, tabs: gr.Tabs, all_controls: list[TabControls]) -> None:
    """On page load, select the linked tab and restore its controls; other tabs are untouched."""
    outputs = [tabs] + [component for controls in all_controls for component in controls.components]

    def on_load(request: gr.Request) -> list:
        query = dict(request.query_params) if request else {}
        task = query.get("tab")
        updates: list = [gr.Tabs(selected=task) if task in {c.task for c in all_controls} else gr.skip()]
        for controls in all_controls:
            if controls.task == task:
                updates += restore(query, controls)
            else:
                updates += [gr.skip()] * len(controls.components)
        return updates

    demo.load(on_load, inputs=None, outputs=outputs, api_visibility="private")


def add_link_button(controls: TabControls) -> None:
    """A "Link to this view" button and the box that shows the link to copy."""
    with gr.Row():
        button = gr.Button("🔗 Link to this view", size="sm", scale=0, elem_id=f"{controls.task}-link-button")
        link = gr.Textbox(
            show_label=False,
            placeholder="a link that restores this tab's image, models and settings",
            buttons=["copy"],
            elem_id=f"{controls.task}-link",
            scale=4,
        )
    button.click(None, inputs=controls.components, outputs=link, js=controls.link_js(), api_visibility="private")
