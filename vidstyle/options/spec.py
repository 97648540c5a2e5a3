"""The machinery of typed options: one field = one name, one default, one check.

An option group is a frozen dataclass whose fields are declared with :func:`option`. Each field
carries a :class:`Spec` (kind, bounds, choices, help). From it:

* ``__post_init__`` of the group calls :func:`check_group`, which coerces and checks every field
  once; errors are :class:`OptionValueError` naming the *parameter* (``stabilize must be in
  [0, 1], got 2``), never a command-line flag;
* :func:`add_arguments` / :func:`from_args` make the command-line options (``--batch-size``);
* :func:`from_mapping` reads the same fields from a render job (TOML keys ``batch_size`` or
  ``batch-size``).

The CLI turns a parameter name in an error into its flag (:func:`flag_of`).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vidstyle.errors import InvalidOptionError
from vidstyle.options.curve import Curve

__all__ = [
    "KINDS",
    "OptionValueError",
    "Spec",
    "add_arguments",
    "check_group",
    "flag_of",
    "from_args",
    "from_mapping",
    "option",
    "specs",
]

#: the kinds of value an option can hold
KINDS = ("str", "path", "int", "float", "bool", "choice", "curve", "strs", "ints", "floats", "custom")


class OptionValueError(InvalidOptionError):
    """An option value is bad; :attr:`parameter` names the option (``"stabilize"``)."""

    def __init__(self, parameter: str, message: str, *, also: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.parameter = parameter
        #: other parameters the message names (the CLI shows them as flags too)
        self.also = also


@dataclass(frozen=True, slots=True)
class Spec:
    """How one option is parsed, checked and shown.

    Attributes:
        kind: one of :data:`KINDS`. ``curve`` accepts a number or keyframes (:class:`Curve`);
            ``strs``/``ints``/``floats`` a comma-separated list or a sequence; ``custom`` uses ``parse``.
        help: one line for ``--help`` and the job schema.
        choices: allowed values of a ``choice``.
        minimum, maximum: inclusive bounds of numbers (for curves: of every key).
        above: exclusive lower bound (``lr > 0``).
        parse: ``(value, name) -> value`` for ``custom`` kinds (raises :class:`OptionValueError`).
        metavar: shown in ``--help``.
        group: help section title.
        affects_output: a resumed render must use the same value.
        cli: offered on the command line (``False``: API and job files only).
        repeat: the flag may be given several times; the values are collected in a list.
        aliases: other names a job file may use for this key (older spellings).
        flag: the command-line flag when it is not ``--`` + the name with dashes.
        short: an extra short flag (``-m``).
    """

    kind: str
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    parse: Callable[[Any, str], Any] | None = None
    metavar: str | None = None
    group: str = "options"
    affects_output: bool = True
    cli: bool = True
    flag: str | None = None
    short: str | None = None
    repeat: bool = False
    aliases: tuple[str, ...] = ()


_META = "vidstyle.option"


def option(default: Any = None, *, kind: str, help: str = "", **spec: Any) -> Any:  # noqa: A002
    """A dataclass field that is an option (see :class:`Spec` for the keywords)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    s = Spec(kind=kind, help=help, **spec)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: default, metadata={_META: s})
    return dataclasses.field(default=default, metadata={_META: s})


def specs(cls: Any) -> dict[str, tuple[Spec, Any]]:
    """``{name: (spec, default)}`` of an option group (class or instance), in declaration order."""
    out: dict[str, tuple[Spec, Any]] = {}
    for f in dataclasses.fields(cls):
        s = f.metadata.get(_META)
        if s is None:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        out[f.name] = (s, default)
    return out


def flag_of(name: str, spec: Spec | None = None) -> str:
    """The command-line flag of parameter ``name``."""
    if spec is not None and spec.flag:
        return spec.flag
    return "--" + name.replace("_", "-")


# ------------------------------------------------------------------------------ coercion and checks
def _bounds_text(s: Spec) -> str:
    if s.minimum is not None and s.maximum is not None:
        return f"in [{_n(s.minimum)}, {_n(s.maximum)}]"
    if s.above is not None:
        return f"> {_n(s.above)}"
    if s.minimum is not None:
        return f">= {_n(s.minimum)}"
    if s.maximum is not None:
        return f"<= {_n(s.maximum)}"
    return "a finite number"


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _check_number(name: str, s: Spec, value: float, got: Any) -> None:
    bad = (not math.isfinite(value)
           or (s.minimum is not None and value < s.minimum)
           or (s.maximum is not None and value > s.maximum)
           or (s.above is not None and value <= s.above))
    if bad:
        what = "an integer" if s.kind in ("int", "ints") else "a number"
        raise OptionValueError(name, f"{name} must be {what} {_bounds_text(s)}, got {got!r}")


def _to_int(name: str, s: Spec, value: Any) -> int:
    if isinstance(value, bool):
        raise OptionValueError(name, f"{name} must be an integer {_bounds_text(s)}, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise OptionValueError(name, f"{name} must be an integer {_bounds_text(s)}, got {value!r}") from None
    if not isinstance(value, int):
        raise OptionValueError(name, f"{name} must be an integer {_bounds_text(s)}, got {value!r}")
    _check_number(name, s, value, value)
    return value


def _to_float(name: str, s: Spec, value: Any) -> float:
    if isinstance(value, bool):
        raise OptionValueError(name, f"{name} must be a number {_bounds_text(s)}, got {value!r}")
    try:
        out = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise OptionValueError(name, f"{name} must be a number {_bounds_text(s)}, got {value!r}") from None
    _check_number(name, s, out, value)
    return out


def _to_list(name: str, value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise OptionValueError(name, f"{name} must be a list or a comma-separated string, got {value!r}")


def coerce(name: str, s: Spec, value: Any) -> Any:
    """``value`` as the option's type, checked; ``None`` stays ``None`` (= the default behaviour)."""
    if value is None:
        return None
    k = s.kind
    if k == "custom":
        return s.parse(value, name) if s.parse is not None else value
    if k in ("str", "path"):
        if not isinstance(value, str) and not hasattr(value, "__fspath__"):
            raise OptionValueError(name, f"{name} must be a string, got {value!r}")
        text = str(value)
        if not text.strip():
            raise OptionValueError(name, f"{name} must not be empty")
        return text
    if k == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.strip().lower() in ("1", "true", "yes", "on")
        raise OptionValueError(name, f"{name} must be true or false, got {value!r}")
    if k == "int":
        return _to_int(name, s, value)
    if k == "float":
        return _to_float(name, s, value)
    if k == "choice":
        choices = s.choices or ()
        for c in choices:
            if value == c or (isinstance(value, str) and str(c) == value.strip().lower()):
                return c
        raise OptionValueError(name, f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    if k == "curve":
        if isinstance(value, bool):
            raise OptionValueError(name, f"{name} must be a number or keyframes, got {value!r}")
        try:
            curve = Curve.parse(value, name=name)
        except OptionValueError:
            raise
        except InvalidOptionError as exc:
            raise OptionValueError(name, str(exc)) from None
        for _, v in curve.keys:
            _check_number(name, s, v, value if curve.is_constant and len(curve.keys) == 1 else v)
        return curve
    if k == "strs":
        items = _to_list(name, value)
        if not all(isinstance(v, str) and v for v in items):
            raise OptionValueError(name, f"{name} must be a list of names, got {value!r}")
        return tuple(items)
    if k == "ints":
        return tuple(_to_int(name, s, v) for v in _to_list(name, value))
    if k == "floats":
        return tuple(_to_float(name, s, v) for v in _to_list(name, value))
    raise ValueError(f"unknown option kind {k!r}")  # pragma: no cover - guarded by option()


def check_group(group: Any) -> None:
    """Coerce and check every option field of a (frozen) dataclass instance in place."""
    for name, (s, _) in specs(group).items():
        value = getattr(group, name)
        object.__setattr__(group, name, coerce(name, s, value))


# ------------------------------------------------------------------------------ command line
def add_arguments(parser: argparse.ArgumentParser, cls: Any, *, exclude: Iterable[str] = (),
                  defaults: Mapping[str, Any] | None = None, title: str | None = None, every: bool = False) -> None:
    """Add one command-line option per field of ``cls`` (values are parsed by :func:`from_args`).

    Every option defaults to ``None`` (= not given), so a caller can tell given values from defaults;
    the help shows the field's default. ``defaults`` overrides the shown default for this command.
    ``every`` adds the fields marked ``cli=False`` too (``vidstyle render``: every job key is a flag).
    """
    groups: dict[str, Any] = {}
    defaults = dict(defaults or {})
    for name, (s, default) in specs(cls).items():
        if name in exclude or not (s.cli or every):
            continue
        section = title or s.group
        target = groups.get(section)
        if target is None:
            target = groups[section] = parser.add_argument_group(section)
        shown = defaults.get(name, default)
        text = s.help.replace("%", "%%")  # argparse formats help strings with %
        if shown is not None and shown != () and s.kind != "bool":
            text += f" (default: {shown})"
        flags = [flag_of(name, s)] + ([s.short] if s.short else [])
        if s.kind == "bool":
            target.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
            continue
        metavar = s.metavar or ("{" + ",".join(map(str, s.choices)) + "}" if s.choices else name.upper())
        target.add_argument(*flags, dest=name, default=None, metavar=metavar, help=text,
                            action="append" if s.repeat else "store", type=_syntax(s.kind))


def _syntax(kind: str) -> Callable[[str], Any]:
    """An argparse ``type`` that only checks a number's syntax (a usage error, exit 2); the
    range is checked with the option group, where errors name the parameter."""
    convert: Callable[[str], Any] | None = {"int": int, "float": float}.get(kind)

    def check(text: str) -> str:
        if convert is not None:
            try:
                convert(text)
            except ValueError:
                what = "an integer" if kind == "int" else "a number"
                raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        return text

    return check


def given_args(cls: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The raw command-line values of ``cls``'s options that were given (not ``None``)."""
    return {name: getattr(args, name) for name in specs(cls) if getattr(args, name, None) is not None}


def from_args(cls: Any, args: argparse.Namespace, **overrides: Any) -> Any:
    """An instance of ``cls`` from parsed command-line options (given values only) and ``overrides``."""
    return cls(**{**given_args(cls, args), **overrides})


# ------------------------------------------------------------------------------ job files
def canonical_key(key: str) -> str:
    """``bit-depth`` / ``bit_depth`` / ``--bit-depth`` → ``bit_depth``."""
    return key.strip().lstrip("-").replace("-", "_").lower()


def from_mapping(classes: Iterable[Any], mapping: Mapping[str, Any], *, where: str = "") -> list[dict[str, Any]]:
    """Split a flat mapping (a job file) into one ``{field: value}`` dict per class.

    Keys are matched case-insensitively with ``-`` or ``_``; an unknown key is an error that names
    it (with ``where``, e.g. the file) and suggests the closest known key.
    """
    classes = list(classes)
    owner: dict[str, int] = {}
    alias: dict[str, str] = {}
    for i, cls in enumerate(classes):
        for name, (s, _) in specs(cls).items():
            owner.setdefault(name, i)
            for a in s.aliases:
                alias[a] = name
    out: list[dict[str, Any]] = [{} for _ in classes]
    for key, value in mapping.items():
        name = canonical_key(key)
        name = alias.get(name, name)
        if name not in owner:
            close = difflib.get_close_matches(name, list(owner), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InvalidOptionError(f"{where}unknown key '{key}'{hint}")
        out[owner[name]][name] = value
    return out
