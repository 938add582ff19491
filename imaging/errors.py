"""Errors for images that cannot be served."""


class ImageError(ValueError):
    """The image is unusable; the message says what is wrong and how to fix it."""


class ParameterError(ImageError):
    """A parameter does not fit this photo (e.g. a focus point outside it); the message names it and the fix."""
