"""The page's CSS and head script, passed to `gr.Blocks.launch` (see app.py)."""

from __future__ import annotations

import gradio as gr

THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"],
)
"""Gradio's theme with the system's own fonts: no web font to fetch, so an offline page renders its
bold capitals as capitals (a font that failed to load showed "ViT-ʙ")."""

CSS = """
.panel-caption { font-size: var(--text-sm); line-height: 1.4; padding: 4px 2px; }
.panel-title { font-weight: 600; color: var(--body-text-color); }
.panel-details { color: var(--body-text-color-subdued); }
.panel-hint { color: var(--color-accent); font-weight: 600; }
.panel-error { color: var(--error-text-color); overflow-wrap: anywhere; }
.panel-legend { display: flex; flex-wrap: wrap; gap: 2px 10px; color: var(--body-text-color); }
.panel-legend .chip { display: inline-flex; align-items: center; gap: 4px; white-space: nowrap; }
.panel-legend i { display: inline-block; width: 11px; height: 11px; border-radius: 2px; }
.stale-mark { color: var(--color-accent); font-weight: 600; }
/* A run's progress ("running DETR (2/5)…") shows on the line above the panels, not over the panels done. */
.stale-mark:has(> [data-testid=status-tracker]:not(.hide)) { min-height: 4.5rem; }
.panel.stale img { opacity: 0.35; }
/* Compare: three panels to a row, a row's last panel as wide as the others (not the whole width). */
.compare-panel-row > .column { flex: 1 1 0 !important; max-width: calc((100% - 2 * var(--layout-gap)) / 3); }
#link-notice { border-left: 4px solid var(--color-accent); padding-left: 8px; }
table th, table th * { word-break: normal !important; overflow-wrap: normal !important; hyphens: none; }
/* Explain: large views that keep their shape, a gallery with no scroll of its own (the page takes
   the mouse wheel), an enlarged caption that wraps and a wide view shown whole. */
.explain-gallery .grid-wrap { overflow: visible !important; height: auto !important; max-height: none !important; }
.explain-gallery .thumbnail-lg {
  display: flex !important; flex-direction: column; height: auto !important; aspect-ratio: auto !important;
}
.explain-gallery .thumbnail-lg > img { flex: none; height: auto !important; aspect-ratio: 4 / 3; }
/* a view's caption below its picture, not over it (over it, it hid the heat maps' colour scales) */
.explain-gallery .thumbnail-lg .caption-label {
  position: static !important; max-width: none !important; border: none !important; opacity: 1 !important;
}
.explain-gallery .grid-container { grid-auto-rows: minmax(260px, auto) !important; }
.explain-gallery .caption, .explain-gallery .caption-label {
  white-space: normal !important; overflow: visible !important;
}
.explain-gallery .caption { text-overflow: clip !important; max-width: 100%; }
/* Enlarged: in the page's flow instead of over the whole (tall) grid, which it hides; the picture
   whole within the screen, then its caption, then the strip of thumbnails (not over the caption). */
.explain-gallery:has(.preview) .grid-wrap { display: none !important; }
.explain-gallery .preview { position: relative !important; height: auto !important; }
.explain-gallery .preview .media-button { height: auto !important; }
.explain-gallery .preview .media-button img {
  width: 100% !important; height: auto !important; max-height: 75vh; object-fit: contain !important;
}
.explain-gallery .preview .thumbnails { position: static !important; }
/* Narrow screens: controls stacked (the tabs wrap: gr.Tabs(overflow_behavior="wrap")). */
@media (max-width: 640px) {
  .controls-row { flex-direction: column !important; }
  .controls-row > * { width: 100% !important; min-width: 0 !important; }
  .explain-gallery .grid-container { grid-template-columns: 1fr !important; }
}
"""

HEAD = """
<script>
// Enter in a slider's number box commits it, as leaving the box does (Gradio's "release" event).
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target.matches?.(".block input[type=number]")) event.target.blur();
}, true);
// A new run closes the error toasts of the last one, so an old error never sits over fresh results.
document.addEventListener("click", (event) => {
  if (!event.target.closest("button.primary")) return;
  document.querySelectorAll(".toast-close").forEach((button) => button.click());
}, true);
// Gradio ignores a click on the prompt canvas beside the picture (in its letterbox margin); say so.
document.addEventListener("click", (event) => {
  const image = event.target.closest("#prompt-canvas")?.querySelector("img");
  const hint = document.querySelector("#prompt-margin-hint");
  const button = event.target.closest("button, a, label");
  if (!image || !hint || !image.naturalWidth || (button && !button.contains(image))) return;
  const box = image.getBoundingClientRect();
  const scale = Math.min(box.width / image.naturalWidth, box.height / image.naturalHeight, 1);
  const x = (event.clientX - box.left - (box.width - image.naturalWidth * scale) / 2) / scale;
  const y = (event.clientY - box.top - (box.height - image.naturalHeight * scale) / 2) / scale;
  const outside = x < 0 || y < 0 || x >= image.naturalWidth || y >= image.naturalHeight;
  hint.textContent = outside ? "That click was beside the picture: click on the picture itself." : "";
}, true);
</script>
"""
