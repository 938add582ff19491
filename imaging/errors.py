"""Errors for images that cannot be served."""


class ImageError(ValueError):
    """The image is unusable; the message says what is wrong and how to fix it."""
