"""Errors a user can act on. Their message is shown as is: in the UI, the API and the CLI.

Anything else that escapes (a library's bug, an import race, a CUDA fault) becomes one line too:
`unexpected_error_line` logs its traceback once under a short id and returns a sentence that
names the id, so a user can report it and an operator can find it.
"""

import logging
import uuid

log = logging.getLogger("playground")


class PlaygroundError(Exception):
    """Base class: the message is one clear line meant for the user, never a stack trace."""


class BadImageError(PlaygroundError):
    """The upload is not an image we can use (corrupt, empty, too large, too small)."""


class BadPromptError(PlaygroundError):
    """A prompt (points, box, text) or a parameter is malformed or out of range."""


class UnknownParameterError(BadPromptError):
    """A parameter name that the model does not take (a typo would otherwise be ignored)."""


class UnknownModelError(PlaygroundError):
    """A model key that is not in the registry, or whose adapter is not built yet."""


class MissingWeightsError(PlaygroundError):
    """Pretrained weights are neither cached nor downloadable right now."""


class WeightsMismatchError(MissingWeightsError):
    """A checkpoint that loads but does not fit the model: missing, unexpected or misshapen keys."""


class ModelRunError(PlaygroundError):
    """A model failed while running (out of memory, a corrupt checkpoint, a library error)."""


def unexpected_error_line(error: BaseException, where: str, logged_in: str = "the server log") -> str:
    """Log ``error``'s traceback once under a new short id, and return the line a user sees:
    ``where`` (e.g. "DETR") failed, the kind of error, and the id to quote."""
    error_id = uuid.uuid4().hex[:8]
    log.error("[%s] %s failed", error_id, where, exc_info=error)
    first = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
    detail = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return f"{where} failed unexpectedly ({detail}); the details are in {logged_in} under id {error_id}."
