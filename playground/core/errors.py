"""Errors a user can act on. Their message is shown as is: in the UI, the API and the CLI."""


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


class ModelRunError(PlaygroundError):
    """A model failed while running (out of memory, a corrupt checkpoint, a library error)."""
