"""Video codecs: which encoder, pixel format and options a codec name asks for, checked against
the container and this FFmpeg build (:func:`resolve_encoder`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vidstyle.errors import InvalidOptionError, UnsupportedFormatError
from vidstyle.io.naming import with_parameter
from vidstyle.options.spec import OptionValueError

__all__ = ["EncoderSettings", "resolve_encoder", "CODECS", "CONTAINER_CODECS"]

_X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
_VP9_CPU_USED = dict(zip(_X26X_PRESETS, ("8", "7", "6", "5", "4", "3", "2", "1", "0", "0")))
_SVT_PRESET = dict(zip(_X26X_PRESETS, ("12", "11", "10", "9", "8", "7", "5", "4", "2", "0")))
_PRORES_PROFILES = ("proxy", "lt", "standard", "hq", "4444", "4444xq")
_PRORES_TAGS = dict(zip(_PRORES_PROFILES, ("apco", "apcs", "apcn", "apch", "ap4h", "ap4x")))


@dataclass(frozen=True, slots=True)
class _Codec:
    name: str
    encoder: str
    pix8: str
    pix16: str | None
    crf_default: int | None
    crf_max: int | None


#: the codecs a video sink writes: ``codec`` name → encoder and default pixel formats
CODECS: dict[str, _Codec] = {
    "h264": _Codec("h264", "libx264", "yuv420p", "yuv420p10le", 18, 51),
    "hevc": _Codec("hevc", "libx265", "yuv420p", "yuv420p10le", 20, 51),
    "prores": _Codec("prores", "prores_ks", "yuv422p10le", "yuv422p10le", None, None),
    "ffv1": _Codec("ffv1", "ffv1", "bgr0", "gbrp16le", None, None),
    "vp9": _Codec("vp9", "libvpx-vp9", "yuv420p", None, 31, 63),
    "av1": _Codec("av1", "libsvtav1", "yuv420p", "yuv420p10le", 35, 63),
}
_ALIASES = {
    "x264": "h264",
    "libx264": "h264",
    "avc": "h264",
    "h265": "hevc",
    "x265": "hevc",
    "libx265": "hevc",
    "prores_ks": "prores",
    "libvpx-vp9": "vp9",
    "vp09": "vp9",
    "libsvtav1": "av1",
    "svtav1": "av1",
    "svt-av1": "av1",
}
#: which codecs each muxer takes (checked on this FFmpeg build; ProRes is not allowed in MP4,
#: FFV1 not in MOV)
CONTAINER_CODECS: dict[str, frozenset[str]] = {
    "mp4": frozenset({"h264", "hevc", "ffv1", "vp9", "av1"}),
    "mov": frozenset({"h264", "hevc", "prores", "vp9", "av1"}),
    "matroska": frozenset(CODECS),
    "webm": frozenset({"vp9", "av1"}),
    "avi": frozenset({"h264", "ffv1", "vp9", "av1"}),
}
_EXT_OF = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv", "webm": ".webm", "avi": ".avi"}


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """Everything needed to open the video encoder."""

    codec: str
    encoder: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    codec_tag: str | None = None

    @property
    def high_bit_depth(self) -> bool:
        import av

        return max(c.bits for c in av.VideoFormat(self.pix_fmt).components) > 8

    @property
    def is_rgb(self) -> bool:
        import av

        return bool(av.VideoFormat(self.pix_fmt).is_rgb)


def resolve_encoder(
    *,
    codec: str,
    container_format: str,
    crf: int | None = None,
    pix_fmt: str | None = None,
    preset: str | None = None,
    bit_depth: int | None = None,
) -> EncoderSettings:
    """Validate the codec options against the codec, the container and this FFmpeg build.

    Defaults: h264 → libx264 yuv420p CRF 18 preset medium; hevc → libx265 yuv420p CRF 20;
    prores → prores_ks yuv422p10le profile HQ (``pix_fmt`` yuv444p10le/yuva444p10le → 4444;
    ``preset`` picks the profile: proxy, lt, standard, hq, 4444, 4444xq); ffv1 → lossless RGB
    (bgr0, gbrp16le for 16-bit): the decoded frames are bit-identical to what was written;
    vp9 → libvpx-vp9 yuv420p CRF 31 (``preset`` → cpu-used); av1 → libsvtav1 yuv420p CRF 35
    (``preset`` → SVT preset 0–13). ``bit_depth`` > 8 picks the codec's 10/16-bit format.

    Raises:
        InvalidOptionError: unknown codec, a codec the container cannot hold, a pixel format
            the encoder does not take, a CRF out of range or for a codec without CRF, an
            unknown preset.
        UnsupportedFormatError: the encoder is missing from this FFmpeg build.
    """
    import av

    key = _ALIASES.get(codec.lower(), codec.lower())
    if key not in CODECS:
        raise InvalidOptionError(f"unknown codec '{codec}'; use one of {', '.join(CODECS)}")
    spec = CODECS[key]
    allowed = CONTAINER_CODECS.get(container_format, frozenset(CODECS))
    if key not in allowed:
        good = [_EXT_OF[f] for f, cs in CONTAINER_CODECS.items() if key in cs]
        ext = _EXT_OF.get(container_format, container_format)
        raise InvalidOptionError(
            f"{key} cannot be written into {ext} files; use {' or '.join(good)} for {key}, "
            f"or another codec ({', '.join(sorted(allowed))}) for {ext}"
        )
    try:
        av_codec = av.Codec(spec.encoder, "w")
    except Exception:
        raise with_parameter(UnsupportedFormatError(
            f"this FFmpeg build has no {spec.encoder} encoder for {key}; choose another `codec`"
        ), "codec") from None
    formats = [f.name for f in (av_codec.video_formats or ())]

    # pixel format
    if pix_fmt is None:
        if key == "prores" and preset in ("4444", "4444xq"):
            pix_fmt = "yuv444p10le"
        elif bit_depth is not None and bit_depth > 8:
            if spec.pix16 is None or spec.pix16 not in formats:
                raise OptionValueError(
                    "codec",
                    f"{key} cannot be encoded above 8 bits with this FFmpeg build; "
                    "use `codec` hevc, av1, prores or ffv1 for high bit depth",
                )
            pix_fmt = spec.pix16
        else:
            pix_fmt = spec.pix8
    elif formats and pix_fmt not in formats:
        raise InvalidOptionError(f"{key} does not take pixel format '{pix_fmt}'; use one of {', '.join(formats)}")

    # quality
    options: dict[str, str] = {}
    if crf is not None and spec.crf_default is None:
        raise OptionValueError(
            "crf",
            f"crf does not apply to {key} ({'fixed-quality profiles' if key == 'prores' else 'lossless'}); "
            "drop `crf`" + (", or pick a profile with `preset`" if key == "prores" else ""),
            also=("preset",),
        )
    if spec.crf_default is not None:
        value = spec.crf_default if crf is None else crf
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= (spec.crf_max or 51):
            raise OptionValueError(
                "crf", f"crf must be 0 (best) to {spec.crf_max} (smallest) for {key}, got {crf}"
            )
        options["crf"] = str(value)

    # preset / profile and codec specifics
    def bad_preset(choices: tuple[str, ...] | list[str]) -> OptionValueError:
        return OptionValueError("preset", f"preset must be one of {', '.join(choices)} for {key}, got '{preset}'")

    codec_tag = None
    if key in ("h264", "hevc"):
        p = preset or "medium"
        if p not in _X26X_PRESETS:
            raise bad_preset(_X26X_PRESETS)
        options["preset"] = p
        if key == "hevc":
            options["x265-params"] = "log-level=error"
            if container_format in ("mp4", "mov"):
                codec_tag = "hvc1"  # what Apple players expect
    elif key == "vp9":
        p = preset or "fast"
        cpu = _VP9_CPU_USED.get(p, p)
        if not (cpu.isdigit() and 0 <= int(cpu) <= 8):
            raise bad_preset([*_X26X_PRESETS, "0-8"])
        options.update({"b": "0", "cpu-used": cpu, "row-mt": "1", "deadline": "good"})
    elif key == "av1":
        p = preset or "fast"
        level = _SVT_PRESET.get(p, p)
        if not (level.isdigit() and 0 <= int(level) <= 13):
            raise bad_preset([*_X26X_PRESETS, "0-13"])
        options["preset"] = level
    elif key == "prores":
        is444 = pix_fmt in ("yuv444p10le", "yuva444p10le")
        p = preset or ("4444" if is444 else "hq")
        if p not in _PRORES_PROFILES:
            raise bad_preset(_PRORES_PROFILES)
        if p.startswith("4444") != is444:
            raise OptionValueError(
                "pix_fmt",
                f"prores profile {p} needs pixel format {'yuv444p10le' if p.startswith('4444') else 'yuv422p10le'} "
                f"(got {pix_fmt}); drop `pix_fmt` or choose a matching profile with `preset`",
                also=("preset",),
            )
        options.update({"profile": p, "vendor": "apl0"})
        codec_tag = _PRORES_TAGS[p]  # the profile's own fourcc, also in a Matroska partial (which defaults to apch)
    elif key == "ffv1":
        if preset is not None:
            raise OptionValueError("preset", "preset does not apply to ffv1 (lossless); drop it")
        options.update({"level": "3", "slicecrc": "1", "g": "1"})
    return EncoderSettings(codec=key, encoder=spec.encoder, pix_fmt=pix_fmt, options=options, codec_tag=codec_tag)
