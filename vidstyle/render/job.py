"""Render jobs: one TOML file per shot, every key also a CLI option of ``vidstyle render``.

::

    # shot_010.toml
    input = "plates/sh010.%04d.exr"     # a frame pattern, folder, glob or a video file
    output = "styled/sh010.%04d.exr"    # a frame pattern, a folder ending in "/" or a video file
    frames = "1001-1240"                # inclusive, the shot's own frame numbers
    backend = "feedforward"             # or "optim"
    model = "models/starry_tiny.safetensors"
    seed = 1234
    bit_depth = 32                      # 8, 16 or 32 (float)
    stabilize = 0.85

Keys are written with ``_`` or ``-`` (``bit_depth`` = ``bit-depth``); a CLI option ``--bit-depth 16``
overrides the file. Relative paths in the file are relative to the file's folder; relative paths
given on the command line are relative to the working directory. Unknown keys and bad values raise
:class:`~vidstyle.errors.InvalidOptionError` with one line naming the file and the key.

Keys of the optimisation back end that this module does not list (``iterations``, weights...) are
accepted when :class:`vidstyle.stylize.optim.OptimStage` takes a parameter of that name.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidstyle.errors import InputNotFoundError, InvalidInputError, InvalidOptionError

__all__ = [
    "KeySpec",
    "KEYS",
    "RenderJob",
    "load_job",
    "job_from_mapping",
    "parse_frames",
    "parse_fps",
    "parse_timecode",
    "canonical_key",
    "optim_parameters",
    "DEFAULT_OVERLAP",
    "DEFAULT_CROSSFADE",
]

#: warm-up frames each chunk starts early (chosen by measurement: BENCHMARKS.md, "Film rendering")
DEFAULT_OVERLAP = 24
#: of those, the last ones are cross-faded with the previous chunk's output
DEFAULT_CROSSFADE = 4

_FRAMES = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{2})$")


def canonical_key(name: str) -> str:
    """``bit-depth`` / ``bit_depth`` / ``--bit-depth`` → ``bit_depth``."""
    return name.strip().lstrip("-").replace("-", "_").lower()


def option_name(key: str) -> str:
    """``bit_depth`` → ``--bit-depth``."""
    return "--" + key.replace("_", "-")


# --------------------------------------------------------------------------------------- values
def parse_frames(value: Any, *, key: str = "frames") -> tuple[int, int] | None:
    """``"1001-1240"`` → ``(1001, 1240)`` (inclusive); ``"1001"``/``1001`` → one frame;
    ``[1001, 1240]`` also works. ``None``/``""`` → the whole input."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    bad = f"must be a frame range like \"1001-1240\" (first-last, inclusive), got {value!r}"
    if isinstance(value, bool):
        raise InvalidOptionError(f"key '{key}' {bad}")
    if isinstance(value, int):
        first = last = value
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        first, last = int(value[0]), int(value[1])
    elif isinstance(value, str):
        m = _FRAMES.match(value)
        if not m:
            raise InvalidOptionError(f"key '{key}' {bad}")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
    else:
        raise InvalidOptionError(f"key '{key}' {bad}")
    if first < 0:
        raise InvalidOptionError(f"key '{key}': frame numbers must be >= 0, got {first}")
    if last < first:
        raise InvalidOptionError(f"key '{key}': last frame {last} is before first frame {first}; write \"{last}-{first}\"")
    return first, last


def parse_fps(value: Any, *, key: str = "fps") -> Fraction | None:
    """``24``, ``23.976``, ``"24000/1001"``, ``"25"`` → a positive :class:`~fractions.Fraction`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    bad = InvalidOptionError(f"key '{key}' must be a positive frame rate like 24, 25, \"24000/1001\" or 23.976, got {value!r}")
    if isinstance(value, bool):
        raise bad
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise bad
            # 23.976 and 29.97 mean the NTSC rates
            for num in (24000, 30000, 60000, 48000):
                if abs(value - num / 1001) < 5e-3:
                    return Fraction(num, 1001)
            fps = Fraction(value).limit_denominator(1001)
        else:
            fps = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise bad from None
    if fps <= 0 or fps > 1000:
        raise bad
    return fps


def parse_timecode(value: Any, *, key: str = "timecode") -> str | None:
    """``"01:00:00:00"`` (``;`` before the frames for drop-frame) → the same string, checked."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    m = _TIMECODE.match(str(value).strip()) if isinstance(value, str) else None
    if not m or int(m.group(2)) >= 60 or int(m.group(3)) >= 60:
        raise InvalidOptionError(f"key '{key}' must be a timecode HH:MM:SS:FF (HH:MM:SS;FF for drop-frame), got {value!r}")
    return str(value).strip()


# --------------------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class KeySpec:
    """One key of a render job.

    Attributes:
        name: canonical key (``bit_depth``); the CLI option is ``--bit-depth``.
        kind: ``str``, ``path``, ``int``, ``float``, ``bool``, ``choice``, ``frames``, ``fps``,
            ``timecode``, ``style`` (a path or a list of paths) or ``ray`` (an address or true).
        default: value when neither the file nor the command line gives one.
        help: one line for ``--help``.
        choices: allowed values of a ``choice`` key (ints or strings).
        minimum, maximum: bounds of numbers.
        group: help section.
        affects_output: a resumed render must use the same value as the manifest.
        metavar: for ``--help``.
    """

    name: str
    kind: str
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    group: str = "job"
    affects_output: bool = True
    metavar: str | None = None


def _k(name: str, kind: str, default: Any = None, help: str = "", **kw: Any) -> KeySpec:  # noqa: A002
    return KeySpec(name=name, kind=kind, default=default, help=help, **kw)


_SPECS: list[KeySpec] = [
    # what to render
    _k("input", "path", None, "input: frame pattern (plates/sh010.%04d.exr), folder, glob or video file", metavar="PATH"),
    _k("output", "path", None, "output: frame pattern (out/sh010.%04d.exr), folder ending in / or video file (.mov .mkv .mp4)",
       metavar="PATH"),
    _k("frames", "frames", None,
       "inclusive range of the shot's own frame numbers, e.g. 1001-1240 (videos: 0-based frame indices; default: all)",
       metavar="FIRST-LAST"),
    _k("fps", "fps", None, "frame rate of an image-sequence input (default 24; 24000/1001 for 23.976)", metavar="RATE"),
    _k("timecode", "timecode", None, "start timecode HH:MM:SS:FF of the first rendered frame (default: the input's)",
       metavar="TC"),
    _k("start_number", "int", None, "number the output frames from N instead of keeping the input's numbers",
       minimum=0, metavar="N"),
    # how
    _k("backend", "choice", "feedforward", "stylization back end", choices=("feedforward", "optim"), group="style"),
    _k("model", "str", None, "feed-forward model: a shipped name (vidstyle models) or a .safetensors file",
       group="style", metavar="NAME|PATH"),
    _k("style", "style", None, "style image(s) of the optim back end (a path, or a list in the file)",
       group="style", metavar="IMAGE"),
    _k("seed", "int", 0, "random seed (noise, any sampling); recorded for repeatable renders", minimum=0, group="style",
       metavar="N"),
    _k("stabilize", "float", None, "temporal strength 0 (per-frame) to 1 (default: the back end's)", minimum=0.0,
       maximum=1.0, group="style", metavar="S"),
    _k("flow", "str", "dis-fast", "optical flow estimator for temporal coherence (dis-fast, dis-medium, farneback, raft)",
       group="style", metavar="NAME"),
    _k("batch_size", "int", 1, "frames per network call (1 keeps resume and chunks bit-identical)", minimum=1,
       group="style", metavar="N"),
    _k("precision", "choice", "float32", "network precision", choices=("float32", "bfloat16", "float16"), group="style"),
    _k("compile", "bool", False, "torch.compile the network", group="style"),
    _k("device", "str", None, "torch device: cpu, cuda, cuda:1 (default: best available)", group="style",
       affects_output=False, metavar="D"),
    _k("threads", "int", None, "CPU threads per worker (default: the cores available / workers); recorded",
       minimum=1, group="style", affects_output=False, metavar="N"),
    # output format
    _k("bit_depth", "choice", None, "output bits: 8, 16 or 32 (float; EXR/TIFF) (default: the input's)",
       choices=(8, 16, 32), group="output", metavar="BITS"),
    _k("codec", "str", None, "video outputs: prores (422 HQ; 4444 with --preset 4444), ffv1, h264, hevc, vp9, av1",
       group="output", metavar="CODEC"),
    _k("crf", "int", None, "video outputs: quality of h264/hevc/vp9/av1", minimum=0, maximum=63, group="output", metavar="N"),
    _k("pix_fmt", "str", None, "video outputs: pixel format (e.g. yuv444p10le)", group="output", metavar="FMT"),
    _k("preset", "str", None, "video outputs: encoder preset, or the ProRes profile (proxy, lt, standard, hq, 4444, 4444xq)",
       group="output", metavar="P"),
    _k("keep_frames", "bool", False, "video outputs: keep the lossless frames the video was encoded from",
       group="output", affects_output=False),
    _k("manifest", "path", None, "manifest path (default: next to the output, <name>.manifest.json)", group="output",
       affects_output=False, metavar="PATH"),
    _k("overwrite", "bool", False, "replace an existing output and manifest", group="output", affects_output=False),
    # distribution
    _k("chunk_frames", "int", None, "frames per chunk (default: the shot split evenly over --workers)", minimum=1,
       group="distribution", metavar="N"),
    _k("overlap", "int", DEFAULT_OVERLAP, f"warm-up frames each chunk starts early (default {DEFAULT_OVERLAP}, measured)",
       minimum=0, group="distribution", metavar="K"),
    _k("crossfade", "int", DEFAULT_CROSSFADE,
       f"of the warm-up frames, the last N are cross-faded with the previous chunk (default {DEFAULT_CROSSFADE})",
       minimum=0, group="distribution", metavar="N"),
    _k("workers", "int", None, "chunks rendered at once under Ray (default: the cluster's CPUs / threads)", minimum=1,
       group="distribution", affects_output=False, metavar="N"),
    _k("ray", "ray", None, "render the chunks on Ray: local (when given without ADDRESS; put it after SHOT.toml) or host:port",
       group="distribution", affects_output=False, metavar="ADDRESS"),
    _k("retries", "int", 2, "times a failed chunk is retried (resuming from its last frame)", minimum=0,
       group="distribution", affects_output=False, metavar="N"),
]

#: every key a job understands (without the optim back end's own parameters)
KEYS: dict[str, KeySpec] = {s.name: s for s in _SPECS}
_REQUIRED = ("input", "output")
_PATH_KEYS = ("input", "output", "manifest")


#: OptimStage parameters that are job keys of their own, or not values (callbacks, objects)
OPTIM_STAGE_EXCLUDED = frozenset(
    {"styles", "config", "progress", "optimizer", "device", "threads", "flow", "stabilize"}
)
#: OptimConfig fields set from other keys (``seed``) or named like a stage parameter (``tolerance``)
OPTIM_CONFIG_EXCLUDED = frozenset({"seed", "tolerance"})


@dataclass(frozen=True)
class OptimKey:
    """A key of the optim back end: a parameter of ``OptimStage`` (``target="stage"``) or a field
    of ``OptimConfig`` (``target="config"``), with its default (its type guides CLI strings)."""

    name: str
    target: str
    default: Any
    annotation: str = ""


def _optim_config_class() -> Any:
    """``OptimConfig`` (from the torch-free :mod:`vidstyle.stylize.optim_config` when present)."""
    try:
        from vidstyle.stylize import optim_config  # noqa: PLC0415

        return optim_config.OptimConfig
    except (ImportError, AttributeError):
        pass
    try:
        from vidstyle.stylize import optim  # noqa: PLC0415

        return optim.OptimConfig
    except (ImportError, AttributeError):
        return None


def optim_parameters() -> dict[str, OptimKey]:
    """The optim back end's own keys (empty when :mod:`vidstyle.stylize.optim` is not available)."""
    try:
        from vidstyle.stylize import optim  # noqa: PLC0415 - optional, heavy
    except Exception:  # noqa: BLE001 - the back end is optional
        return {}
    stage = getattr(optim, "OptimStage", None)
    config = _optim_config_class()
    if stage is None or config is None:
        return {}
    out: dict[str, OptimKey] = {}
    try:
        params = inspect.signature(stage).parameters
    except (TypeError, ValueError):
        return {}
    for name, p in params.items():
        if name in OPTIM_STAGE_EXCLUDED or p.kind not in (inspect.Parameter.KEYWORD_ONLY,
                                                           inspect.Parameter.POSITIONAL_OR_KEYWORD):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        out[name] = OptimKey(name=name, target="stage", default=default, annotation=str(p.annotation))
    if dataclasses.is_dataclass(config):
        for f in dataclasses.fields(config):
            if f.name in OPTIM_CONFIG_EXCLUDED or f.name in out:
                continue
            out[f.name] = OptimKey(name=f.name, target="config", default=f.default, annotation=str(f.type))
    return out


# --------------------------------------------------------------------------------------- job
@dataclass(frozen=True)
class RenderJob:
    """A validated render job. Paths are absolute. ``extra`` holds the optim back end's own keys.

    ``given`` records where each value came from (``"file"``, ``"cli"`` or ``"default"``);
    ``job_file`` is the TOML file (``None`` when built from a mapping).
    """

    input: str
    output: str
    frames: tuple[int, int] | None = None
    fps: Fraction | None = None
    timecode: str | None = None
    start_number: int | None = None
    backend: str = "feedforward"
    model: str | None = None
    style: tuple[str, ...] | None = None
    seed: int = 0
    stabilize: float | None = None
    flow: str = "dis-fast"
    batch_size: int = 1
    precision: str = "float32"
    compile: bool = False
    device: str | None = None
    threads: int | None = None
    bit_depth: int | None = None
    codec: str | None = None
    crf: int | None = None
    pix_fmt: str | None = None
    preset: str | None = None
    keep_frames: bool = False
    manifest: str | None = None
    overwrite: bool = False
    chunk_frames: int | None = None
    overlap: int = DEFAULT_OVERLAP
    crossfade: int = DEFAULT_CROSSFADE
    workers: int | None = None
    ray: str | None = None
    retries: int = 2
    extra: dict[str, Any] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)
    job_file: str | None = None

    # -------------------------------------------------------------------------- derived
    @property
    def output_kind(self) -> str:
        """``"images"`` or ``"video"``."""
        from vidstyle.io import output_kind

        return output_kind(self.output)

    def parameters(self) -> dict[str, Any]:
        """Every parameter as JSON-friendly values (what the manifest records)."""
        out: dict[str, Any] = {}
        for spec in _SPECS:
            out[spec.name] = _jsonable(getattr(self, spec.name))
        for k, v in sorted(self.extra.items()):
            out[k] = _jsonable(v)
        return out

    def output_parameters(self) -> dict[str, Any]:
        """The parameters a resumed render must share with the manifest."""
        params = self.parameters()
        return {k: v for k, v in params.items() if k not in KEYS or KEYS[k].affects_output}

    def command(self) -> str:
        """A ``vidstyle render`` command line repeating this job (the file plus the values that
        came from the command line)."""
        import shlex

        words = ["vidstyle", "render", self.job_file or "JOB.toml"]
        params = self.parameters()
        for key, source in self.given.items():
            if source != "cli":
                continue
            value = params.get(key)
            if isinstance(value, bool):
                words.append(option_name(key) if value else "--no-" + key.replace("_", "-"))
                continue
            if isinstance(value, list):
                value = ",".join(map(str, value)) if key not in ("frames",) else f"{value[0]}-{value[1]}"
            words += [option_name(key), str(value)]
        return shlex.join(words)

    def replace(self, **changes: Any) -> RenderJob:
        return dataclasses.replace(self, **changes)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _coerce(spec: KeySpec, value: Any, where: str) -> Any:
    """Check/convert ``value`` for ``spec``; CLI strings are parsed, file values must have the type."""
    name = spec.name
    from_cli = isinstance(value, str) and where == "cli"

    def bad(expect: str) -> InvalidOptionError:
        return InvalidOptionError(f"{_where(where)}key '{name}' must be {expect}, got {value!r}")

    if value is None:
        return None
    kind = spec.kind
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value.strip():
            raise bad("a non-empty string")
        return value.strip() if kind == "str" else value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if from_cli and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise bad("true or false")
    if kind == "int":
        if from_cli:
            try:
                value = int(value)
            except ValueError:
                raise bad("an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        _bounds(spec, value, where)
        return value
    if kind == "float":
        if from_cli:
            try:
                value = float(value)
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a number")
        _bounds(spec, float(value), where)
        return float(value)
    if kind == "choice":
        assert spec.choices is not None
        if from_cli and all(isinstance(c, int) for c in spec.choices):
            try:
                value = int(value)
            except ValueError:
                pass
        if isinstance(value, str):
            value = value.strip().lower()
        if isinstance(value, bool) or value not in spec.choices:
            raise bad(" or ".join(map(str, spec.choices)))
        return value
    if kind == "frames":
        try:
            return parse_frames(value, key=name)
        except InvalidOptionError as e:
            raise InvalidOptionError(f"{_where(where)}{e}") from None
    if kind == "fps":
        try:
            return parse_fps(value, key=name)
        except InvalidOptionError as e:
            raise InvalidOptionError(f"{_where(where)}{e}") from None
    if kind == "timecode":
        try:
            return parse_timecode(value, key=name)
        except InvalidOptionError as e:
            raise InvalidOptionError(f"{_where(where)}{e}") from None
    if kind == "style":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items or not all(isinstance(s, str) and s.strip() for s in items):
            raise bad("a style image path or a list of them")
        return tuple(items)
    if kind == "ray":
        if value is True or (isinstance(value, str) and value.strip().lower() in ("", "local", "true", "auto")):
            return "local" if value is True or value.strip().lower() in ("", "local", "true") else "auto"
        if value is False:
            return None
        if isinstance(value, str):
            return value.strip()
        raise bad("'local', 'auto' or a cluster address host:port")
    raise AssertionError(kind)  # pragma: no cover


def _bounds(spec: KeySpec, value: float, where: str) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise InvalidOptionError(f"{_where(where)}key '{spec.name}' must be >= {spec.minimum:g}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise InvalidOptionError(f"{_where(where)}key '{spec.name}' must be <= {spec.maximum:g}, got {value!r}")


def _where(where: str) -> str:
    return "" if where in ("cli", "default", "") else f"{where}: "


def _coerce_extra(name: str, key: OptimKey, value: Any, where: str) -> Any:
    """Optim back-end keys: CLI strings become the type of the default (numbers, booleans; a
    comma-separated list for tuple-typed keys); file values are passed as they are."""
    if isinstance(value, list):
        return tuple(value)
    if not (isinstance(value, str) and where == "cli"):
        return value
    default = key.default
    text = value.strip()
    if isinstance(default, bool):
        low = text.lower()
        if low in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return low in ("1", "true", "yes", "on")
        raise InvalidOptionError(f"key '{name}' must be true or false, got {value!r}")

    def number(t: str) -> Any:
        for cast in (int, float):
            try:
                return cast(t)
            except ValueError:
                continue
        return t

    if isinstance(default, tuple) or "tuple" in key.annotation or "Sequence" in key.annotation:
        return tuple(number(t.strip()) for t in text.split(",") if t.strip())
    if isinstance(default, int) and not isinstance(default, bool):
        try:
            return int(text)
        except ValueError:
            raise InvalidOptionError(f"key '{name}' must be an integer, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise InvalidOptionError(f"key '{name}' must be a number, got {value!r}") from None
    if default is None:
        if text.lower() in ("none", "null", ""):
            return None
        return number(text)
    return text


def _resolve_path(value: str, base: Path | None) -> str:
    text = os.path.expanduser(value)
    if text.startswith(("lavfi:", "null:")) or "://" in text:
        return text
    p = Path(text)
    if not p.is_absolute() and base is not None:
        p = base / p
    out = str(p.absolute()) if not p.is_absolute() else str(p)
    if value.endswith(("/", os.sep)) and not out.endswith(os.sep):
        out += os.sep  # a folder output stays a folder
    return out


def _resolve_model(value: str | None, base: Path | None) -> str | None:
    """A model that looks like a path becomes absolute; a shipped name stays a name."""
    if value is None:
        return None
    looks_like_path = os.sep in value or "/" in value or value.endswith((".safetensors", ".pt", ".pth"))
    if looks_like_path:
        return _resolve_path(value, base)
    if base is not None and (base / value).is_file():
        return str((base / value).absolute())
    return value


def job_from_mapping(
    data: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    base: str | os.PathLike[str] | None = None,
    job_file: str | os.PathLike[str] | None = None,
) -> RenderJob:
    """Validate ``data`` (the file's keys) merged with ``overrides`` (CLI values win).

    ``base`` is the folder relative paths of ``data`` are resolved against (the TOML file's);
    paths in ``overrides`` are resolved against the working directory.

    Raises:
        InvalidOptionError: an unknown key, a value of the wrong type or out of range, or keys
            that do not go together (each message names the file and the key).
    """
    label = str(job_file) if job_file is not None else ""
    base_path = Path(base) if base is not None else None
    optim: dict[str, OptimKey] | None = None  # discovered lazily: importing the back end is heavy
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    given: dict[str, str] = {}

    def known_extra() -> dict[str, OptimKey]:
        nonlocal optim
        if optim is None:
            optim = {k: p for k, p in optim_parameters().items() if k not in KEYS}
        return optim

    for source, mapping in (("file", data), ("cli", overrides or {})):
        where = label if source == "file" else "cli"
        for raw_key, value in mapping.items():
            if not isinstance(raw_key, str):
                raise InvalidOptionError(f"{_where(where)}key {raw_key!r} is not a name")
            key = canonical_key(raw_key)
            if source == "cli" and value is None:
                continue  # option not given
            if isinstance(value, Mapping):
                raise InvalidOptionError(
                    f"{_where(where)}key '{raw_key}' is a table; render jobs are flat: write its keys at the top level"
                )
            if key in KEYS:
                coerced = _coerce(KEYS[key], value, where)
                if KEYS[key].kind == "path" and coerced is not None:
                    coerced = _resolve_path(coerced, base_path if source == "file" else None)
                if key == "model" and coerced is not None:
                    coerced = _resolve_model(coerced, base_path if source == "file" else None)
                if key == "style" and coerced is not None:
                    coerced = tuple(_resolve_path(s, base_path if source == "file" else None) for s in coerced)
                values[key] = coerced
                given[key] = source
            elif key in known_extra():
                coerced = _coerce_extra(key, known_extra()[key], value, where)
                if key == "vgg" and isinstance(coerced, str):
                    coerced = _resolve_model(coerced, base_path if source == "file" else None)
                extra[key] = coerced
                given[key] = source
            else:
                known = sorted([*KEYS, *known_extra()])
                hint = _did_you_mean(key, known)
                raise InvalidOptionError(
                    f"{_where(where)}unknown key '{raw_key}'{hint} (known keys: {', '.join(known)})"
                )
    for key in _REQUIRED:
        if values.get(key) is None:
            where = f"{label}: " if label else ""
            raise InvalidOptionError(f"{where}key '{key}' is missing; add {key} = \"...\" to the job or pass {option_name(key)}")
    for spec in _SPECS:
        if spec.name not in values:
            values[spec.name] = spec.default
            given.setdefault(spec.name, "default")
    job = RenderJob(**values, extra=extra, given=given, job_file=str(Path(job_file).absolute()) if job_file else None)
    _check_combination(job, label)
    return job


def _check_combination(job: RenderJob, label: str) -> None:
    """Rules between keys; one-line errors naming the key."""
    from vidstyle.io import output_kind
    from vidstyle.io.imagefiles import allowed_bit_depths
    from vidstyle.io.output import image_output_pattern

    where = f"{label}: " if label else ""

    def fail(msg: str) -> InvalidOptionError:
        return InvalidOptionError(where + msg)

    if job.backend == "feedforward":
        if job.style is not None:
            raise fail("key 'style' is for backend = \"optim\"; the feedforward back end takes 'model'")
        if job.extra:
            name = sorted(job.extra)[0]
            raise fail(f"key '{name}' is for backend = \"optim\"; remove it or set backend = \"optim\"")
    else:
        if job.style is None:
            raise fail("backend \"optim\" needs key 'style' (a style image); add style = \"path/to/style.jpg\"")
        if job.model is not None:
            raise fail("key 'model' is for backend = \"feedforward\"; the optim back end takes 'style'")
        keys = optim_parameters()
        if not keys:
            raise fail("backend \"optim\" is not available in this installation (vidstyle.stylize.optim.OptimStage is missing)")
        try:
            optim_config(job).validate()
        except InvalidOptionError as e:
            raise fail(str(e)) from None
        except (TypeError, ValueError) as e:
            raise fail(f"bad optim setting ({e})") from None
    try:
        kind = output_kind(job.output)
    except InvalidOptionError as e:
        raise fail(f"key 'output': {e}") from None
    if kind == "null":
        raise fail("key 'output' must be an image sequence or a video file; a render keeps what it makes")
    if kind == "images":
        for key in ("codec", "crf", "pix_fmt", "preset"):
            if getattr(job, key) is not None:
                raise fail(f"key '{key}' applies to video outputs, not to the image sequence '{job.output}'; remove it")
        try:
            pattern = image_output_pattern(job.output, bit_depth=job.bit_depth)
        except InvalidOptionError as e:
            raise fail(f"key 'output': {e}") from None
        ext = Path("x" + pattern.suffix).suffix.lower()
        if job.bit_depth is not None and job.bit_depth not in allowed_bit_depths(ext):
            depths = ", ".join(map(str, allowed_bit_depths(ext)))
            tip = "; use .exr or .tif for float" if job.bit_depth == 32 else ""
            raise fail(f"key 'bit_depth' = {job.bit_depth} cannot be written as {ext} (it takes {depths}){tip}")
    else:
        if job.bit_depth == 32:
            raise fail("key 'bit_depth' = 32 (float) needs an image-sequence output (.exr or .tif); video codecs take 8 or 16")
    if job.crossfade > job.overlap:
        raise fail(
            f"key 'crossfade' ({job.crossfade}) must be <= key 'overlap' ({job.overlap}): only warm-up frames are cross-faded"
        )
    if job.start_number is not None and job.output_kind != "images":
        raise fail("key 'start_number' applies to image-sequence outputs; remove it")


def optim_config(job: RenderJob) -> Any:
    """The ``OptimConfig`` of an optim job (its ``config`` keys, and ``seed``)."""
    OptimConfig = _optim_config_class()  # noqa: N806

    keys = optim_parameters()
    values = {k: v for k, v in job.extra.items() if k in keys and keys[k].target == "config"}
    return OptimConfig(**values, seed=job.seed)


def optim_stage_kwargs(job: RenderJob) -> dict[str, Any]:
    """The ``OptimStage`` keyword arguments of an optim job's own keys."""
    keys = optim_parameters()
    return {k: v for k, v in job.extra.items() if k in keys and keys[k].target == "stage"}


def load_job(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> RenderJob:
    """Read a job TOML file and apply ``overrides`` (e.g. the CLI options; ``None`` values are ignored).

    Raises:
        InputNotFoundError: the file does not exist.
        InvalidInputError: the file is not valid TOML.
        InvalidOptionError: unknown key or bad value (the message names the file and the key).
    """
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"job file '{p}' does not exist; check the path")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InvalidInputError(f"{p}: not valid TOML ({e}); fix the file") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{p}: not a UTF-8 text file; a job is a TOML file") from None
    return job_from_mapping(data, overrides=overrides, base=p.parent.absolute(), job_file=p)
