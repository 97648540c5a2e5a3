"""Typed options, validated once, shared by the Python API, the CLI, render jobs and live mode.

See :mod:`vidstyle.options.groups` for the groups and :mod:`vidstyle.options.spec` for how a field
becomes a command-line option and a job-file key. A numeric option that makes sense over time is a
:class:`Curve` (keyframes, linear in between).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vidstyle.options.curve import Curve, value_at
from vidstyle.options.groups import (
    ARBITRARY_TEMPORAL,
    HEAVY_PARAMETERS,
    LIGHT_TEMPORAL,
    HEAVY_TEMPORAL,
    STUDENT_TEMPORAL,
    backend_temporal_defaults,
    with_backend_defaults,
    BACKENDS,
    DEFAULT_STABILIZE,
    PRECISIONS,
    EncodeOptions,
    OptimOptions,
    StyleImage,
    StylizeOptions,
    TemporalOptions,
)
from vidstyle.options.spec import (
    OptionValueError,
    Spec,
    add_arguments,
    flag_of,
    from_args,
    from_mapping,
    option,
    specs,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_STABILIZE",
    "ARBITRARY_TEMPORAL",
    "HEAVY_PARAMETERS",
    "LIGHT_TEMPORAL",
    "HEAVY_TEMPORAL",
    "STUDENT_TEMPORAL",
    "backend_temporal_defaults",
    "with_backend_defaults",
    "GROUPS",
    "PRECISIONS",
    "Curve",
    "EncodeOptions",
    "OptimOptions",
    "OptionValueError",
    "Spec",
    "StyleImage",
    "StylizeOptions",
    "TemporalOptions",
    "add_arguments",
    "flag_of",
    "from_args",
    "from_mapping",
    "option",
    "route",
    "specs",
    "value_at",
]

#: the groups every stylizing entry point shares, in order
GROUPS = (StylizeOptions, TemporalOptions, EncodeOptions, OptimOptions)


def route(values: Mapping[str, Any], *, classes: tuple[Any, ...] = GROUPS, where: str = "") -> list[Any]:
    """Build one instance of each class from a flat ``{field: value}`` mapping (unknown names are
    an error naming them). ``None`` values mean "not given" and leave the default."""
    parts = from_mapping(classes, {k: v for k, v in values.items() if v is not None}, where=where)
    return [cls(**part) for cls, part in zip(classes, parts)]
