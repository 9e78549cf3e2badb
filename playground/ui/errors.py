"""Every failure of an event becomes one clear line: never Gradio's generic error text.

Gradio sends the message of a ``gr.Error`` and, for anything else, no message at all (the browser
shows "Error", gradio_client "The upstream Gradio app has raised an exception but has not enabled
verbose error reporting"). That covers more than our handlers: an upload Gradio's image component
cannot decode, a URL refused by its SSRF guard, a path that was never uploaded. So `clear_errors`
wraps the one place every event passes through, ``Blocks.process_api`` (preprocess, the handler,
postprocess), and turns whatever escapes into a ``gr.Error`` with a line a user can act on.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import gradio as gr
from gradio.exceptions import ComponentProcessingError, InvalidPathError

from playground.core.errors import PlaygroundError, unexpected_error_line

log = logging.getLogger(__name__)

NOT_AN_UPLOAD = (
    "Files can be sent only as uploads: with gradio_client, pass handle_file('a local file'); "
    "URLs and server paths are refused."
)


def clear_errors(demo: gr.Blocks) -> gr.Blocks:
    """``demo`` with every event's failure raised as one clear ``gr.Error`` line."""
    library_process_api = demo.process_api

    @functools.wraps(library_process_api)
    async def process_api(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return await library_process_api(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            raise gr.Error(user_line(error), print_exception=False) from None

    demo.process_api = process_api  # type: ignore[method-assign]
    return demo


def user_line(error: BaseException) -> str:
    """The line a user sees for ``error``, raised by Gradio or by our code."""
    if isinstance(error, PlaygroundError):
        return str(error)
    if isinstance(error, InvalidPathError):
        log.info("refused a file that was not uploaded: %s", error)
        return NOT_AN_UPLOAD
    if isinstance(error, ComponentProcessingError):
        cause = error.__cause__ or error.__context__
        if isinstance(cause, PlaygroundError):
            return str(cause)
        if isinstance(cause, InvalidPathError) or _is_refused_url(cause):
            log.info("refused an input: %s", cause)
            return NOT_AN_UPLOAD
        log.info("an input could not be read: %s", error)
        reason = f" ({type(cause).__name__}: {str(cause).splitlines()[0][:120]})" if cause and str(cause) else ""
        return f"An input could not be read{reason}. Images must be PNG, JPEG, WebP, GIF, BMP or TIFF files."
    if _is_refused_url(error):
        log.info("refused a URL input: %s", error)
        return NOT_AN_UPLOAD
    return unexpected_error_line(error, "This request")


def _is_refused_url(error: BaseException | None) -> bool:
    """Gradio's SSRF guard (safehttpx) refusing a URL, or a failed download of one."""
    text = str(error or "")
    return "failed validation" in text or "Failed to download file" in text or "redirects" in text
