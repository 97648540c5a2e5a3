"""Errors whose remedy is an option, though they are not about its value.

An :class:`~vidstyle.options.spec.OptionValueError` names its parameter (``crf must be ...``) and
the command line shows it as a flag (``--crf must be ...``). Other errors can name a parameter too
(``output 'a.mp4' exists; pass `overwrite` to replace it``): :func:`with_parameter` gives them the
same ``parameter`` / ``also`` attributes, so the command line names the flag there as well.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["with_parameter"]

E = TypeVar("E", bound=BaseException)


def with_parameter(exc: E, parameter: str, *, also: tuple[str, ...] = ()) -> E:
    """``exc`` with :attr:`parameter` (named at the start of its message or in backticks) and
    :attr:`also` (other parameters it names in backticks) set, as on an ``OptionValueError``."""
    setattr(exc, "parameter", parameter)  # noqa: B010 - these errors do not declare the attributes
    setattr(exc, "also", also)  # noqa: B010
    return exc
