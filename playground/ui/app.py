"""`build_demo`: the whole Gradio app, one tab per task, all calling one `Playground`."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from playground.core.registry import CLOSED_SET_TASKS, REGISTRY, get_spec
from playground.render.export import RANDOM_WEIGHTS_NOTE
from playground.runtime.service import Playground
from playground.ui.api import register_api
from playground.ui.closed_set_tab import create_tab
from playground.ui.common import missing_weights, weights_advice
from playground.ui.compare_tab import create_compare_tab
from playground.ui.dataengine_tab import LINK_NAMES, create_dataengine_tab
from playground.ui.deep_links import wire_deep_links
from playground.ui.errors import clear_errors
from playground.ui.prompt_tab import create_prompt_tab
from playground.ui.text_tab import create_text_tab
from playground.ui.video_tab import create_video_tab

INTRO = """# Vision Playground
Upload an image and compare the landmark vision models side by side: FCN and U-Net, RetinaNet and DETR,
Mask R-CNN, MaskFormer, SAM and Grounded-SAM. Sliders and class toggles re-draw stored results without
running a model again."""


def build_demo(playground: Playground, on_page_load: Callable[[], None] | None = None) -> gr.Blocks:
    """The app for ``playground``; launch it with `gr.Blocks.launch` (see app.py). ``on_page_load``
    runs each time a browser has loaded the page (app.py starts its background imports there)."""
    with gr.Blocks(title="Vision Playground", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        weights = playground.manager.weights
        if weights != "pretrained":
            gr.Markdown(
                f"**Running with `{weights}` weights** — {RANDOM_WEIGHTS_NOTE}. Their scores are near zero "
                "(often below 0.05), so lower the score threshold to see what they find. "
                "Start with `--weights pretrained` for real predictions.",
                elem_id="weights-banner",
            )
        else:
            banner = checkpoints_banner(playground)
            if banner:
                gr.Markdown(banner, elem_id="weights-banner")
        link_notice = gr.Markdown(visible=False, elem_id="link-notice")
        controls = []
        with gr.Tabs(overflow_behavior="wrap") as tabs:
            controls += [create_tab(task, playground) for task in CLOSED_SET_TASKS]
            controls.append(create_prompt_tab(playground))
            controls.append(create_text_tab(playground))
            controls.append(create_compare_tab(playground))
            create_video_tab(playground)
            create_dataengine_tab(playground, demo)
        with gr.Accordion("Models in memory", open=False):
            memory = gr.Markdown(elem_id="memory-report")
            refresh = gr.Button("Refresh", size="sm")
            refresh.click(lambda: memory_report(playground), outputs=memory, api_visibility="private")
        demo.load(lambda: memory_report(playground), outputs=memory, api_visibility="private")
        register_api(playground)
        wire_deep_links(demo, tabs, controls, link_notice, own_links={"dataengine": LINK_NAMES})
        if on_page_load is not None:
            demo.load(on_page_load, api_visibility="private", queue=False)
    return clear_errors(demo)


def checkpoints_banner(playground: Playground) -> str:
    """With pretrained weights: which models are ready and how to get the others ("" when all are)."""
    keys = [key for key, spec in REGISTRY.items() if not spec.components]
    lacking = missing_weights(keys, playground)
    if not lacking:
        return ""
    ready = [get_spec(key).title for key in keys if key not in lacking]
    head = f"**Ready:** {', '.join(ready)}. " if ready else "**No checkpoint is downloaded yet.** "
    titles = ", ".join(get_spec(key).title for key in lacking)
    return f"{head}**Not downloaded** (marked in each tab): {titles}. {weights_advice(lacking)}"


def memory_report(playground: Playground) -> str:
    manager = playground.manager
    rows = [f"| {m.key} | {m.weights} | {m.megabytes:.0f} MB | {m.runs} |" for m in manager.loaded]
    header = (
        f"Device **{manager.device}**, budget {manager.budget_bytes / 2**20:.0f} MB, "
        f"used {manager.used_bytes / 2**20:.0f} MB, evictions {manager.evictions}.\n\n"
        "| model | weights | size | runs |\n|---|---|---|---|\n"
    )
    return header + ("\n".join(rows) if rows else "| (none loaded) | | | |")
