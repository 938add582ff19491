"""Errors raised while fetching, checking and converting models."""


class ConverterError(Exception):
    """Base class: every converter failure says what went wrong and how to fix it."""


class CatalogError(ConverterError):
    """The model catalog is malformed or names an unknown model."""


class FetchError(ConverterError):
    """A package could not be downloaded or failed its checksum."""


class ConversionError(ConverterError):
    """A source model could not be converted or failed a structural check."""
