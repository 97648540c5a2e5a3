"""What a file says about its colours: the colour space of a picture (:class:`ColourSpace`) and
the colour tags of a video stream (:class:`VideoTags`).

A colour space is described by its name (an OpenColorIO colour-space name when colour management
is on), and, where the space is one of the Color Interop Forum's, its *interop ID*
(``<transfer>_<primaries>_<scene|display>``, e.g. ``srgb_rec709_scene``, ``lin_ap1_scene``). The
ID gives the primaries and white point (:attr:`ColourSpace.chromaticities`, the 8 numbers of
OpenEXR's ``chromaticities`` attribute) and the video tags (H.273 code points, FFmpeg's
``AVColorPrimaries`` / ``AVColorTransferCharacteristic`` / ``AVColorSpace``).

Without colour management vidstyle's files are in :data:`SRGB`: the networks were trained on
sRGB-encoded photos with Rec.709 primaries, and the values go through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Chromaticities", "ColourSpace", "VideoTags", "SRGB", "BT709_TAGS", "CHROMATICITIES"]

#: ``(red.x, red.y, green.x, green.y, blue.x, blue.y, white.x, white.y)``
Chromaticities = tuple[float, float, float, float, float, float, float, float]

_D65 = (0.3127, 0.3290)
_ACES_WHITE = (0.32168, 0.33767)
#: primaries token of an interop ID → chromaticities (ITU-R BT.709, BT.2020, SMPTE EG 432-1,
#: SMPTE ST 2065-1 (AP0), S-2014-004 (AP1), Adobe RGB (1998))
CHROMATICITIES: dict[str, Chromaticities] = {
    "rec709": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, *_D65),
    "rec2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, *_D65),
    "p3d65": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, *_D65),
    "ap0": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.0770, *_ACES_WHITE),
    "ap1": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, *_ACES_WHITE),
    "adobergb": (0.64, 0.33, 0.21, 0.71, 0.15, 0.06, *_D65),
}
# H.273 code points (FFmpeg's enums)
_PRIMARIES = {"rec709": 1, "rec2020": 9, "p3d65": 12}
_TRANSFERS = {"lin": 8, "srgb": 13, "g22": 4, "g24": 1, "g26": 17, "pq": 16, "hlg": 18}
_MATRIX = {"rec709": 1, "rec2020": 9}
_UNSPECIFIED = 2


@dataclass(frozen=True)
class VideoTags:
    """The colour tags of a video stream (H.273 code points, as FFmpeg numbers them).

    Attributes:
        primaries: ``color_primaries`` (1 BT.709, 9 BT.2020, 12 P3-D65, 2 unspecified).
        transfer: ``color_trc`` (1 BT.709, 13 sRGB, 8 linear, 16 PQ, 18 HLG, 2 unspecified).
        matrix: ``colorspace``, the Y'CbCr matrix (1 BT.709, 9 BT.2020 non-constant, 2 unspecified).
    """

    primaries: int
    transfer: int
    matrix: int

    @property
    def specified(self) -> bool:
        """At least the primaries or the transfer are known."""
        return self.primaries != _UNSPECIFIED or self.transfer != _UNSPECIFIED

    def completed(self, default: VideoTags) -> VideoTags:
        """Unspecified fields (and the reserved 0) taken from ``default``."""
        def pick(mine: int, other: int) -> int:
            return other if mine in (0, _UNSPECIFIED) else mine

        return VideoTags(primaries=pick(self.primaries, default.primaries),
                         transfer=pick(self.transfer, default.transfer), matrix=pick(self.matrix, default.matrix))


#: what vidstyle's video outputs said before colour management: BT.709 everything
BT709_TAGS = VideoTags(primaries=1, transfer=1, matrix=1)


@dataclass(frozen=True)
class ColourSpace:
    """A picture's colour space.

    Attributes:
        name: its name (an OpenColorIO colour-space name under colour management).
        interop_id: the Color Interop Forum ID (``srgb_rec709_scene``), ``None`` when the space
            has none (a camera log space, for instance).
    """

    name: str
    interop_id: str | None = None

    @property
    def _tokens(self) -> tuple[str, str] | None:
        if not self.interop_id:
            return None
        parts = self.interop_id.split("_")
        if len(parts) != 3 or parts[2] not in ("scene", "display"):
            return None
        return parts[0], parts[1]

    @property
    def chromaticities(self) -> Chromaticities | None:
        """Primaries and white point, ``None`` when the interop ID does not give them."""
        tokens = self._tokens
        return CHROMATICITIES.get(tokens[1]) if tokens else None

    @property
    def linear(self) -> bool:
        """Scene-linear (values above 1.0 are legitimate highlights)."""
        tokens = self._tokens
        return tokens is not None and tokens[0] == "lin"

    def video_tags(self) -> VideoTags | None:
        """The video tags of this space, ``None`` when it has no interop ID."""
        tokens = self._tokens
        if tokens is None:
            return None
        transfer, primaries = tokens
        return VideoTags(primaries=_PRIMARIES.get(primaries, _UNSPECIFIED),
                         transfer=_TRANSFERS.get(transfer, _UNSPECIFIED),
                         matrix=_MATRIX.get(primaries, 1))

    def exr_attributes(self) -> dict[str, Any]:
        """OpenEXR header attributes: ``chromaticities`` (where known), the interop ID
        (``colorInteropID``, OpenEXR 3.5's standard attribute) and the name (``oiio:ColorSpace``,
        which OpenImageIO, Nuke and Resolve read)."""
        attrs: dict[str, Any] = {"oiio:ColorSpace": self.name}
        if self.interop_id:
            attrs["colorInteropID"] = self.interop_id
        if self.chromaticities is not None:
            attrs["chromaticities"] = tuple(float(v) for v in self.chromaticities)
        return attrs

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "interop_id": self.interop_id}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColourSpace:
        return cls(name=str(d["name"]), interop_id=d.get("interop_id"))


#: the networks' space, and the space of vidstyle's files without colour management
#: (named as in the ACES studio config of OpenColorIO)
SRGB = ColourSpace(name="sRGB Encoded Rec.709 (sRGB)", interop_id="srgb_rec709_scene")
