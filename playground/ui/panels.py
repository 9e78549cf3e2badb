"""Result panel slots: an image with, below it, the model's title, legend, hint and timings.

The legend and captions are page text rather than pixels baked into the overlay, so they wrap
instead of being cut off, never cover the picture, and follow the light or dark theme.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

import gradio as gr

from playground.render.views import Panel


@dataclass
class PanelSlots:
    """``count`` hidden slots, each a column holding an image (``{tab}-panel-{i}``) and its
    caption (``{tab}-caption-{i}``); results fill the first ones."""

    columns: list[gr.Column]
    images: list[gr.Image]
    captions: list[gr.HTML]

    @property
    def outputs(self) -> list[gr.components.Component]:
        return [*self.columns, *self.images, *self.captions]

    def __len__(self) -> int:
        return len(self.images)


def panel_slots(tab: str, count: int, height: int, per_row: int | None = None) -> PanelSlots:
    """Lay out the slots inside the current `gr.Blocks`, ``per_row`` to a row (all in one if None)."""
    slots = PanelSlots([], [], [])
    per_row = per_row or count
    for start in range(0, count, per_row):
        with gr.Row(equal_height=False, elem_classes=["panel-row", f"{tab}-panel-row"]):
            for index in range(start, min(start + per_row, count)):
                with gr.Column(visible=False, min_width=260, elem_classes=["panel"]) as column:
                    image = gr.Image(
                        show_label=False,
                        interactive=False,
                        format="png",
                        height=height,
                        elem_id=f"{tab}-panel-{index}",
                    )
                    caption = gr.HTML(elem_id=f"{tab}-caption-{index}", elem_classes=["panel-caption"])
                slots.columns.append(column)
                slots.images.append(image)
                slots.captions.append(caption)
    return slots


def panel_updates(panels: list[Panel], slots: PanelSlots, rest: Literal["hide", "skip"] = "hide") -> list:
    """Updates for `PanelSlots.outputs`: each panel in its slot; the slots left over hidden, or
    (``rest`` "skip") left as they are: a re-draw while a run streams leaves the panels it adds alone."""
    left = len(slots) - len(panels)
    hide = rest == "hide"
    columns = [gr.Column(visible=True) for _ in panels] + [gr.Column(visible=False) if hide else gr.skip()] * left
    images = [gr.Image(value=panel.overlay) for panel in panels] + [gr.Image(value=None) if hide else gr.skip()] * left
    captions = [panel_html(panel) for panel in panels] + ["" if hide else gr.skip()] * left
    return [*columns, *images, *captions]


def panel_html(panel: Panel) -> str:
    """The caption block under a panel's image: title, legend chips, hint, then timings or error."""
    parts = [f'<div class="panel-title">{html.escape(panel.title)}</div>']
    if panel.legend:
        chips = "".join(
            f'<span class="chip"><i style="background:{colour}"></i>{html.escape(text)}</span>'
            for colour, text in panel.legend
        )
        parts.append(f'<div class="panel-legend">{chips}</div>')
    if panel.hint:
        parts.append(f'<div class="panel-hint">{html.escape(panel.hint)}</div>')
    if panel.error:
        parts.append(f'<div class="panel-error">{inline_code(error_text(panel))}</div>')
    elif panel.details:
        parts.append(f'<div class="panel-details">{html.escape(panel.details)}</div>')
    return "".join(parts)


def error_text(panel: Panel) -> str:
    """The error without the model's title in front (the caption's title already names it)."""
    text = panel.details
    if text.startswith(panel.title + " "):
        text = text[len(panel.title) + 1 :]
        text = text[:1].upper() + text[1:]
    return text


def inline_code(text: str) -> str:
    """Escape ``text`` for HTML, turning `backticked` spans into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
