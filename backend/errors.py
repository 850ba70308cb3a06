"""Errors the backend raises for bad input; their message names the file or field."""


class BandscapeError(Exception):
    """Base class: a problem with user input or data that the user can fix.

    The CLI prints the message without a traceback; the app shows it on the page.
    """


class DataError(BandscapeError):
    """A data file is missing, malformed or inconsistent (the message names the file)."""


class ParameterError(BandscapeError, ValueError):
    """A parameter is outside what is allowed (the message names the field and the allowed values)."""


class UnknownModelError(BandscapeError, KeyError):
    """A model id that the catalog does not know."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown model"


def check_count(value, name: str, limit: int, *, too_many: str) -> int:
    """``value`` as a whole number in 1..``limit``, else a ParameterError naming ``name`` (e.g.
    "k", "subset size"); ``too_many`` is the message past the limit, formatted with ``{value}``."""
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a whole number, got {value!r}") from None
    if count != value or count < 1:
        raise ParameterError(f"{name} must be a whole number >= 1, got {value!r}")
    if count > limit:
        raise ParameterError(too_many.format(value=count))
    return count
