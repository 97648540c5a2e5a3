"""Render jobs: one TOML file per shot, every key also a CLI option of ``vidstyle render``.

::

    # shot_010.toml
    input = "plates/sh010.%04d.exr"     # a frame pattern, folder, glob or a video file
    output = "styled/sh010.%04d.exr"    # a frame pattern, a folder ending in "/" or a video file
    frames = "1001-1240"                # inclusive, the shot's own frame numbers
    backend = "feedforward"             # or "optim"
    model = "starry_student"             # a shipped name, or a .safetensors file
    seed = 1234
    bit_depth = 32                      # 8, 16 or 32 (float)
    stabilize = "1001:0.3, 1048:0.85"   # a number, or keyframes over the shot's frame numbers

The schema is generated: the keys are the fields of :class:`ShotOptions` (what to render, output
format, chunks) and of the option groups every stylizing entry point shares
(:class:`~vidstyle.options.StylizeOptions`, :class:`~vidstyle.options.TemporalOptions`,
:class:`~vidstyle.options.EncodeOptions`, :class:`~vidstyle.options.OptimOptions`), each with one
name, one default and one check. Keys are written with ``_`` or ``-`` (``bit_depth`` = ``bit-depth``);
a CLI option ``--bit-depth 16`` overrides the file. Relative paths in the file are relative to the
file's folder; relative paths given on the command line are relative to the working directory.
Unknown keys and bad values raise :class:`~vidstyle.errors.InvalidOptionError` with one line naming
the file and the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidstyle.errors import InputNotFoundError, InvalidInputError, InvalidOptionError
from vidstyle.keyframes.options import Keyframe, KeyframeOptions, parse_keys
from vidstyle.options import (
    GROUPS,
    EncodeOptions,
    OptimOptions,
    OptionValueError,
    Spec,
    StyleImage,
    StylizeOptions,
    TemporalOptions,
    option,
    specs,
    with_backend_defaults,
)
from vidstyle.options.curve import Curve
from vidstyle.options.spec import canonical_key, from_mapping
from vidstyle.options.values import parse_fps, parse_frames, parse_timecode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_CROSSFADE",
    "DEFAULT_OVERLAP",
    "JOB_GROUPS",
    "KEYS",
    "RenderJob",
    "ShotOptions",
    "canonical_key",
    "job_from_mapping",
    "load_job",
    "option_name",
    "parse_fps",
    "parse_frames",
    "parse_timecode",
]

#: warm-up frames each chunk starts early (chosen by measurement: BENCHMARKS.md, "Film rendering")
DEFAULT_OVERLAP = 24
#: of those, the last ones are cross-faded with the previous chunk's output
DEFAULT_CROSSFADE = 4

def option_name(key: str) -> str:
    """``bit_depth`` → ``--bit-depth``."""
    return "--" + key.replace("_", "-")


# --------------------------------------------------------------------------------------- schema
def _custom(parse: Any) -> Any:
    def run(value: Any, name: str) -> Any:
        try:
            return parse(value, key=name)
        except OptionValueError:
            raise
        except InvalidOptionError as exc:
            raise OptionValueError(name, str(exc)) from None

    return run


def _parse_ray(value: Any, *, key: str = "ray") -> str | None:
    if value is True or (isinstance(value, str) and value.strip().lower() in ("", "local", "true")):
        return "local"
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if value is False:
        return None
    if isinstance(value, str):
        return value.strip()
    raise InvalidOptionError(f"key '{key}' must be 'local', 'auto' or a cluster address host:port, got {value!r}")


_SHOT, _OUT, _DIST, _COLOUR = "shot", "output", "chunks and Ray", "colour management (OpenColorIO)"


@dataclass(frozen=True)
class ShotOptions:
    """The render-specific keys: what to render, the output format, chunks and Ray."""

    input: str | None = option(None, kind="path", group=_SHOT, metavar="PATH",
                               help="input: frame pattern (plates/sh010.%04d.exr), folder, glob or video file")
    output: str | None = option(None, kind="path", group=_SHOT, metavar="PATH",
                                help="output: frame pattern (out/sh010.%04d.exr), folder ending in / or video file "
                                     "(.mov .mkv .mp4)")
    frames: tuple[int, int] | None = option(None, kind="custom", parse=_custom(lambda v, key: parse_frames(v, key=key)),
                                            group=_SHOT, metavar="FIRST-LAST",
                                            help="inclusive range of the shot's own frame numbers, e.g. 1001-1240 "
                                                 "(videos: 0-based frame indices; default: all)")
    fps: Fraction | None = option(None, kind="custom", parse=_custom(lambda v, key: parse_fps(v, key=key)),
                                  group=_SHOT, metavar="RATE",
                                  help="frame rate of an image-sequence input (default 24; 24000/1001 for 23.976)")
    timecode: str | None = option(None, kind="custom", parse=_custom(lambda v, key: parse_timecode(v, key=key)),
                                  group=_SHOT, metavar="TC",
                                  help="start timecode HH:MM:SS:FF of the first rendered frame (default: the input's)")
    start_number: int | None = option(None, kind="int", minimum=0, group=_SHOT, metavar="N",
                                      help="number the output frames from N instead of keeping the input's numbers")
    bit_depth: int | None = option(None, kind="choice", choices=(8, 16, 32), group=_OUT, metavar="BITS",
                                   help="output bits: 8, 16 or 32 (float; EXR/TIFF) (default: the input's)")
    input_colorspace: str | None = option(None, kind="str", group=_COLOUR, metavar="NAME",
                                          help="colour space of the plates (e.g. ACEScg); with it the frames go to "
                                               "the networks' sRGB and back, highlights kept (default: no colour "
                                               "management, files are taken and written as sRGB)")
    output_colorspace: str | None = option(None, kind="str", group=_COLOUR, metavar="NAME",
                                           help="colour space of the output (default: input_colorspace)")
    ocio_config: str | None = option(None, kind="str", group=_COLOUR, metavar="CONFIG",
                                     help="OpenColorIO config: a .ocio file or an ocio:// URI (default: $OCIO, else "
                                          "the ACES studio config ocio://studio-config-latest)")
    keep_frames: bool = option(False, kind="bool", group=_OUT, affects_output=False,
                               help="video outputs: keep the lossless frames the video was encoded from")
    manifest: str | None = option(None, kind="path", group=_OUT, affects_output=False, metavar="PATH",
                                  help="manifest path (default: next to the output, <name>.manifest.json)")
    overwrite: bool = option(False, kind="bool", group=_OUT, affects_output=False,
                             help="replace an existing output and manifest")
    chunk_frames: int | None = option(None, kind="int", minimum=1, group=_DIST, metavar="N",
                                      help="frames per chunk (default: the shot split evenly over workers)")
    overlap: int = option(DEFAULT_OVERLAP, kind="int", minimum=0, group=_DIST, metavar="K",
                          help="warm-up frames each chunk starts early (measured)")
    crossfade: int = option(DEFAULT_CROSSFADE, kind="int", minimum=0, group=_DIST, metavar="N",
                            help="of the warm-up frames, the last N are cross-faded with the previous chunk")
    workers: int | None = option(None, kind="int", minimum=1, group=_DIST, affects_output=False, metavar="N",
                                 help="chunks rendered at once under Ray (default: the cluster's CPUs / threads)")
    ray: str | None = option(None, kind="custom", parse=_custom(_parse_ray), group=_DIST, affects_output=False,
                             metavar="ADDRESS",
                             help="render the chunks on Ray: local (when given without ADDRESS; put it after "
                                  "SHOT.toml) or host:port")
    retries: int = option(2, kind="int", minimum=0, group=_DIST, affects_output=False, metavar="N",
                          help="times a failed chunk is retried (resuming from its last frame)")

    def __post_init__(self) -> None:
        from vidstyle.options.spec import check_group

        check_group(self)


#: the option groups a job is made of, in order (keyframe-guided stylization last: docs/keyframes.md, "Render jobs")
JOB_GROUPS = (ShotOptions, *GROUPS, KeyframeOptions)
#: every key a job understands: ``{key: Spec}`` (each the field of exactly one group)
KEYS: dict[str, Spec] = {name: spec for cls in JOB_GROUPS for name, (spec, _) in specs(cls).items()}
_REQUIRED = ("input", "output")
_GROUP_ATTR = {ShotOptions: "shot", StylizeOptions: "stylize", TemporalOptions: "temporal",
               EncodeOptions: "encode", OptimOptions: "optim", KeyframeOptions: "keyframes"}


# --------------------------------------------------------------------------------------- job
@dataclass(frozen=True)
class RenderJob:
    """A validated render job: its option groups, plus where each value came from.

    Every key is also readable flat (``job.bit_depth`` is ``job.shot.bit_depth``, ``job.model`` is
    ``job.stylize.model``). Paths are absolute. ``given`` records where each key's value came from
    (``"file"``, ``"cli"`` or ``"default"``); ``job_file`` is the TOML file (``None`` when built from
    a mapping).
    """

    shot: ShotOptions
    stylize: StylizeOptions = field(default_factory=StylizeOptions)
    temporal: TemporalOptions = field(default_factory=TemporalOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    keyframes: KeyframeOptions = field(default_factory=KeyframeOptions)
    given: dict[str, str] = field(default_factory=dict)
    job_file: str | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name not in KEYS:
            raise AttributeError(name)
        for cls, attr in _GROUP_ATTR.items():
            if name in cls.__dataclass_fields__:
                return getattr(object.__getattribute__(self, attr), name)
        raise AttributeError(name)  # pragma: no cover - KEYS and the groups agree

    # -------------------------------------------------------------------------- derived
    @property
    def output_kind(self) -> str:
        """``"images"`` or ``"video"``."""
        from vidstyle.io import output_kind

        return output_kind(self.shot.output)  # type: ignore[arg-type]

    def _keys(self) -> list[str]:
        groups = [cls for cls in JOB_GROUPS if (cls is not OptimOptions or self.stylize.backend == "optim")
                  and (cls is not KeyframeOptions or self.keyframes.active)]
        return [name for cls in groups for name in specs(cls)]

    @property
    def uses_keyframes(self) -> bool:
        """The job carries painted keyframes (``keys``) or a trained keyframe network (``keyframe_model``)."""
        return self.keyframes.active

    def parameters(self) -> dict[str, Any]:
        """Every parameter as JSON-friendly values (what the manifest records); the optim back
        end's keys only for optim jobs."""
        return {name: _jsonable(getattr(self, name)) for name in self._keys()}

    def output_parameters(self) -> dict[str, Any]:
        """The parameters a resumed render must share with the manifest."""
        return {k: v for k, v in self.parameters().items() if KEYS[k].affects_output}

    def command(self) -> str:
        """A ``vidstyle render`` command line repeating this job (the file plus the values that
        came from the command line)."""
        import shlex

        words = ["vidstyle", "render", self.job_file or "JOB.toml"]
        params = self.parameters()
        for key, source in self.given.items():
            if source != "cli" or key not in params:
                continue
            value = params[key]
            if isinstance(value, bool):
                words.append(option_name(key) if value else "--no-" + key.replace("_", "-"))
                continue
            if isinstance(value, list):
                if key == "frames":
                    value = f"{value[0]}-{value[1]}"
                elif key in ("style", "keys"):
                    for item in value:
                        words += ["--key" if key == "keys" else option_name(key), item]
                    continue
                else:
                    value = ",".join(map(str, value))
            words += [option_name(key), str(value)]
        return shlex.join(words)

    def replace(self, **changes: Any) -> RenderJob:
        """A copy with some keys changed (flat names, checked like any value)."""
        parts = from_mapping(JOB_GROUPS, changes)
        groups = {}
        for cls, part in zip(JOB_GROUPS, parts):
            attr = _GROUP_ATTR[cls]
            current = getattr(self, attr)
            groups[attr] = dataclasses.replace(current, **part) if part else current
        return dataclasses.replace(self, **groups)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, Curve):
        return value.to_json()
    if isinstance(value, StyleImage):
        return str(value)
    if isinstance(value, Keyframe):
        return f"{value.index}:{value.path}"
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _where(where: str) -> str:
    return "" if where in ("cli", "default", "") else f"{where}: "


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
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    for source, mapping in (("file", data), ("cli", overrides or {})):
        where = label if source == "file" else "cli"
        for raw_key, value in mapping.items():
            if not isinstance(raw_key, str):
                raise InvalidOptionError(f"{_where(where)}key {raw_key!r} is not a name")
            if source == "cli" and value is None:
                continue  # option not given
            if isinstance(value, Mapping) and canonical_key(raw_key) != "stabilize":
                raise InvalidOptionError(
                    f"{_where(where)}key '{raw_key}' is a table; render jobs are flat: write its keys at the top level"
                )
            try:
                (key,) = [k for part in from_mapping(JOB_GROUPS, {raw_key: value}) for k in part]
            except InvalidOptionError as exc:
                known = ", ".join(sorted(KEYS))
                raise InvalidOptionError(f"{_where(where)}{exc} (known keys: {known})") from None
            rel = base_path if source == "file" else None
            if isinstance(value, str) and KEYS[key].kind == "path":
                value = _resolve_path(value, rel)
            elif isinstance(value, str) and key in ("model", "vgg_weights"):
                value = _resolve_model(value, rel)
            elif key == "style":
                value = _resolve_styles(value, rel, where)
            elif key == "keys":
                value = _resolve_keys(value, rel, where)
            values[key] = value
            given[key] = source
    for key in _REQUIRED:
        if values.get(key) is None:
            where = f"{label}: " if label else ""
            raise InvalidOptionError(f"{where}key '{key}' is missing; add {key} = \"...\" to the job or pass {option_name(key)}")
    for key in KEYS:
        given.setdefault(key, "default")
    job = _build(values, given=given, label=label, job_file=job_file)
    _check_combination(job, label)
    return job


def _resolve_styles(value: Any, base: Path | None, where: str) -> Any:
    from vidstyle.options.groups import parse_styles

    try:
        styles = parse_styles(value, "style")
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"{_where(where)}key {exc}") from None
    return tuple(StyleImage(path=_resolve_path(s.path, base), weight=s.weight,
                            matte=None if s.matte is None else _resolve_path(s.matte, base)) for s in styles)


def _resolve_keys(value: Any, base: Path | None, where: str) -> Any:
    try:
        keys = parse_keys(value, "keys")
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"{_where(where)}key {exc}") from None
    return tuple(Keyframe(index=k.index, path=_resolve_path(k.path, base)) for k in keys)


def _build(values: dict[str, Any], *, given: dict[str, str], label: str,
           job_file: str | os.PathLike[str] | None) -> RenderJob:
    groups: dict[str, Any] = {}
    for cls, part in zip(JOB_GROUPS, from_mapping(JOB_GROUPS, values)):
        try:
            groups[_GROUP_ATTR[cls]] = cls(**part)
        except OptionValueError as exc:
            if given.get(exc.parameter) == "cli":
                raise  # the CLI names the flag
            text = re.sub(r"`(\w+)`", r"key '\1'", str(exc))
            if text.startswith(exc.parameter):
                text = f"key '{exc.parameter}'{text[len(exc.parameter):]}"
            raise InvalidOptionError(f"{label}: {text}" if label else text) from None
    if not groups["keyframes"].active:  # the temporal defaults of `vidstyle stylize` for the job's back end
        groups["temporal"] = with_backend_defaults(groups["temporal"], groups["stylize"],
                                                   given={k for k, v in given.items() if v != "default"})
    return RenderJob(**groups, given=given, job_file=str(Path(job_file).absolute()) if job_file else None)


def _check_combination(job: RenderJob, label: str) -> None:
    """Rules between keys; one-line errors naming the key."""
    from vidstyle.io import output_kind
    from vidstyle.io.imagefiles import allowed_bit_depths
    from vidstyle.io.output import image_output_pattern

    where = f"{label}: " if label else ""

    def fail(msg: str) -> InvalidOptionError:
        return InvalidOptionError(where + msg)

    if job.backend == "feedforward":
        optim_keys = sorted(k for k in specs(OptimOptions) if job.given.get(k) in ("file", "cli"))
        if optim_keys:
            raise fail(f"key '{optim_keys[0]}' is for backend = \"optim\"; remove it or set backend = \"optim\"")
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
    if job.uses_keyframes:
        if job.backend != "feedforward":
            raise fail(f"key 'keys' (keyframe-guided stylization) replaces the style network: remove backend = "
                       f"\"{job.backend}\" (or the keyframes)")
        for key in ("model", "style", "input_colorspace"):
            if job.given.get(key) in ("file", "cli"):
                why = ("the paintings are in the frames' own colours (paint over sRGB plates)" if key == "input_colorspace"
                       else "the look comes from the painted keyframes (key 'keys') or a trained keyframe network "
                            "(key 'keyframe_model')")
                raise fail(f"key '{key}' does not go with keyframes: {why}; remove key '{key}'")
    if job.crossfade > job.overlap:
        raise fail(
            f"key 'crossfade' ({job.crossfade}) must be <= key 'overlap' ({job.overlap}): only warm-up frames are cross-faded"
        )
    if job.start_number is not None and job.output_kind != "images":
        raise fail("key 'start_number' applies to image-sequence outputs; remove it")


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
