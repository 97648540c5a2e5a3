"""What a render works on: the shot its input offers (:func:`probe_shot`), where its files go
(:func:`render_layout`), the encoder (:func:`check_encoder`) and the model with its hashes
(:func:`model_record`). Each fails at once with one line when the job cannot work."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidstyle.colour.spaces import ColourSpace, VideoTags
from vidstyle.errors import InputNotFoundError, InvalidInputError, InvalidOptionError
from vidstyle.options.spec import OptionValueError
from vidstyle.render.job import RenderJob
from vidstyle.render.manifest import RenderLayout, file_sha256, manifest_path_for

if TYPE_CHECKING:
    from vidstyle.colour.management import ColourManagement

__all__ = ["Shot", "probe_shot", "colour_management", "render_layout", "default_codec", "check_encoder", "model_record"]


@dataclass(frozen=True)
class Shot:
    """What the input offers for the job (see :func:`probe_shot`). ``lead_in``: the input's
    frames just before a sub-range (at most ``overlap`` of them), the first chunk's warm-up."""

    numbers: list[int]
    kind: str
    width: int
    height: int
    bit_depth: int
    fps: Fraction | None
    timecode: str | None
    has_audio: bool
    colour_tags: VideoTags | None = None
    half_float: bool = False
    lead_in: tuple[int, ...] = ()


# --------------------------------------------------------------------------------------- probing
def _exr_header(path: Path) -> dict[str, Any]:
    try:
        import OpenEXR

        with OpenEXR.File(str(path)) as f:
            return dict(f.header())
    except Exception:  # noqa: BLE001 - no timing in the header is fine
        return {}


def _timecode_text(tc: Any) -> str | None:
    try:
        sep = ";" if getattr(tc, "dropFrame", False) else ":"
        return f"{tc.hours:02d}:{tc.minutes:02d}:{tc.seconds:02d}{sep}{tc.frame:02d}"
    except AttributeError:
        return None


def probe_shot(job: RenderJob) -> Shot:
    """Frame numbers, size, depth, rate and timecode of the job's input selection."""
    from vidstyle.io import list_sequence, open_source
    from vidstyle.io.images import is_image_spec

    frames = job.frames
    with open_source(job.input, frames=frames, fps=job.fps) as src:
        info = src.info
    fps = job.fps or info.fps
    timecode = job.timecode or info.timecode
    if info.kind == "images" and is_image_spec(job.input):
        entries = list_sequence(job.input)
        nums = [n if n is not None else i for i, (n, _) in enumerate(entries)]
        before = [n for n in nums if frames is not None and n < frames[0]]
        lead_in = before[max(0, len(before) - job.overlap):]
        if frames is not None:
            nums = [n for n in nums if frames[0] <= n <= frames[1]]
        first_path = dict((n if n is not None else i, p) for i, (n, p) in enumerate(entries)).get(nums[0])
        if first_path is not None and first_path.suffix.lower() == ".exr":
            header = _exr_header(first_path)
            if job.fps is None and isinstance(header.get("framesPerSecond"), Fraction):
                fps = header["framesPerSecond"]
            if timecode is None and header.get("timeCode") is not None:
                timecode = _timecode_text(header["timeCode"])
        numbers = nums
    else:
        count = info.frame_count
        if count is None:
            raise InvalidInputError(
                f"cannot tell how many frames '{job.input}' has; give frames = \"FIRST-LAST\" in the job"
            )
        first = frames[0] if frames is not None else 0
        numbers = list(range(first, first + count))
        lead_in = list(range(max(0, first - job.overlap), first))
    if not numbers:
        raise InvalidInputError(f"no frames of '{job.input}' are selected; check 'frames'")
    return Shot(
        numbers=numbers,
        kind=info.kind,
        width=info.width,
        height=info.height,
        bit_depth=info.bit_depth,
        fps=Fraction(fps) if fps else None,
        timecode=timecode,
        has_audio=bool(info.audio_streams),
        colour_tags=info.colour_tags,
        half_float=info.half_float,
        lead_in=tuple(lead_in),
    )


def colour_management(job: RenderJob) -> ColourManagement | None:
    """The job's colour management, ``None`` when it declares no colour space (today's behaviour:
    frames go to the network as they are). Fails at once, one line, on a missing OpenColorIO, a
    missing config or an unknown colour space."""
    if job.input_colorspace is None and job.output_colorspace is None:
        if job.ocio_config is not None:
            raise OptionValueError("ocio_config", "ocio_config is set but no colour space is declared; give "
                                                  "input_colorspace (and output_colorspace), or drop ocio_config")
        return None
    if job.input_colorspace is None:
        raise OptionValueError("input_colorspace", "input_colorspace: declare the plates' colour space too "
                                                   "(output_colorspace alone cannot say what the input is)")
    from vidstyle.colour.management import ColourManagement

    return ColourManagement(input=job.input_colorspace, output=job.output_colorspace, config=job.ocio_config)


def render_layout(job: RenderJob, shot: Shot, *, colour: ColourSpace | None = None) -> RenderLayout:
    """Where the render of ``job`` keeps its manifest, work folder and frames, and their format;
    ``colour``: the output's colour space under colour management (``None``: sRGB)."""
    from vidstyle.io.imagefiles import default_bit_depth, parse_pattern
    from vidstyle.io.output import image_output_pattern

    manifest = Path(job.manifest) if job.manifest else manifest_path_for(job.output)
    work = manifest.with_name("." + manifest.name.removesuffix(".manifest.json") + ".render")
    if job.output_kind == "images":
        pattern = image_output_pattern(job.output, bit_depth=job.bit_depth)
        ext = Path("x" + pattern.suffix).suffix.lower()
        half = ext == ".exr" and shot.half_float  # half in, half out
        depth = job.bit_depth or (16 if half else default_bit_depth(ext, shot.bit_depth))
        frames = str(pattern)
        final = True
    else:
        depth = job.bit_depth or (16 if shot.bit_depth > 8 else 8)
        ext = ".png"
        frames = str(work / "frames" / "%09d.png")
        final = False
    dtype = "float32" if ext == ".exr" or depth == 32 else ("uint16" if depth == 16 else "uint8")
    if parse_pattern(frames) is None:
        raise InvalidOptionError(f"'{frames}' is not a frame pattern; give the output as a pattern like out/sh.%04d.exr")
    return RenderLayout(
        manifest=str(manifest),
        work=str(work),
        frames=frames,
        frames_final=final,
        bit_depth=int(depth),
        work_dtype=dtype,
        shot_first=shot.numbers[0],
        start_number=job.start_number,
        colour=colour,
        timecode=shot.timecode,
        fps=str(shot.fps) if shot.fps else None,
    )


def default_codec(output: str) -> str:
    """Mezzanine defaults: ProRes 422 HQ in .mov, FFV1 in .mkv, H.264 elsewhere."""
    ext = Path(output).suffix.lower()
    return {".mov": "prores", ".mkv": "ffv1"}.get(ext, "h264")


def check_encoder(job: RenderJob, layout: RenderLayout) -> None:
    """Fail now (one line) if the video output's encoder settings cannot work."""
    from vidstyle.io.encode import resolve_encoder
    from vidstyle.io.output import VIDEO_EXTS

    fmt = VIDEO_EXTS[Path(job.output).suffix.lower()]
    resolve_encoder(codec=job.codec or default_codec(job.output), container_format=fmt, crf=job.crf,
                    pix_fmt=job.pix_fmt, preset=job.preset, bit_depth=layout.bit_depth)


def model_record(job: RenderJob) -> dict[str, Any]:
    """The model (feed-forward) or style images and VGG (optim) of the job, with their SHA-256; a keyframe
    job's paintings (:func:`vidstyle.keyframes.render.keyframe_record`)."""
    if job.uses_keyframes:
        from vidstyle.keyframes.render import keyframe_record

        return keyframe_record(job)
    if job.backend == "feedforward":
        from vidstyle.api import resolve_model
        from vidstyle.nets.registry import load_model

        model = load_model(resolve_model(job.model))
        path = Path(model.metadata.get("path", ""))
        return {
            "name": model.name,
            "path": str(path),
            "sha256": file_sha256(path) if path.is_file() else None,
            "architecture": model.architecture,
        }
    styles = []
    for s in job.style or ():
        p = Path(s.path)
        if not p.is_file():
            raise InputNotFoundError(f"style image '{s.path}' does not exist; check key 'style'")
        styles.append({"path": str(p), "sha256": file_sha256(p)})
    rec: dict[str, Any] = {"styles": styles}
    vgg = job.vgg_weights
    if isinstance(vgg, str) and Path(vgg).is_file():
        rec["vgg"] = {"path": vgg, "sha256": file_sha256(Path(vgg))}
    return rec
