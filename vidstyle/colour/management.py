"""Colour management with OpenColorIO: plates in any colour space (scene-linear ACEScg, a camera
log, sRGB…) go to the space the networks were trained in, sRGB-encoded Rec.709, and the
stylised frames come back to the output space, highlights included.

**Highlight-ratio carry** (the choice; measured against tone-map-and-restore in BENCHMARKS.md,
"Colour management"). With ``L`` the plate in linear Rec.709 (from the input space, by the
config), per pixel

* ``r = max(1, max_c L)``: how far the pixel reaches above display white;
* ``D = L / r``: the pixel scaled down along its own hue until its brightest channel is at most 1;
* ``E = D − clip(D, 0, 1)``: what is out of the network's gamut (negative channels of a wide-gamut
  colour);
* the network sees ``sRGB(clip(D, 0, 1))``; its output ``S`` comes back as
  ``L' = (sRGB⁻¹(S) + E) · r``, then goes to the output space.

With the network the identity (``S`` = its input) the plate comes back exactly (up to float
rounding): ``(clip(D) + E)·r = D·r = L``, highlights and out-of-gamut colours included. A
stylised highlight keeps its ratio: a pixel at 4× white comes out at 4× the stylised colour.

Without colour management nothing here runs: the frames go to the network as they are and the
files are written as :data:`~vidstyle.colour.spaces.SRGB`.

OpenColorIO (``pip install 'vidstyle[color]'``) is imported when a colour space is declared.
The config is ``ocio_config`` (a file or an ``ocio://`` URI), else ``$OCIO``, else the ACES
studio config OpenColorIO ships (``ocio://studio-config-latest``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.colour.spaces import ColourSpace
from vidstyle.errors import InputNotFoundError, UnsupportedFormatError
from vidstyle.options.spec import OptionValueError

__all__ = ["BUILTIN_CONFIG", "ColourManagement", "HighlightCarry", "to_network", "from_network", "load_config",
           "srgb_encode", "srgb_decode"]

#: the ACES studio config OpenColorIO ships
BUILTIN_CONFIG = "ocio://studio-config-latest"
_LINEAR_709 = ("lin_rec709_scene", "Linear Rec.709 (sRGB)", "lin_rec709", "lin_srgb", "Utility - Linear - sRGB")


# ------------------------------------------------------------------------------------- the sRGB curve
def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encoding of linear values in [0, 1] (float32)."""
    x = np.asarray(linear, dtype=np.float32)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055
                    ).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_encode`."""
    v = np.asarray(encoded, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, np.power((np.maximum(v, 0.04045) + 0.055) / 1.055, 2.4)
                    ).astype(np.float32)


# ------------------------------------------------------------------------------------- the carry
@dataclass(frozen=True)
class HighlightCarry:
    """What the network cannot see of a frame, kept beside it: ``ratio`` (``H×W×1``, ≥ 1) and the
    out-of-gamut ``residual`` (``H×W×3``)."""

    ratio: np.ndarray
    residual: np.ndarray


def to_network(linear: np.ndarray) -> tuple[np.ndarray, HighlightCarry]:
    """Linear Rec.709 (any range) → (the network's sRGB-encoded input in [0, 1], the carry)."""
    lin = np.asarray(linear, dtype=np.float32)
    ratio = np.maximum(lin.max(axis=2, keepdims=True), 1.0).astype(np.float32)
    scaled = lin / ratio
    inside = np.clip(scaled, 0.0, 1.0)
    return srgb_encode(inside), HighlightCarry(ratio=ratio, residual=(scaled - inside).astype(np.float32))


def from_network(encoded: np.ndarray, carry: HighlightCarry) -> np.ndarray:
    """The network's sRGB-encoded output → linear Rec.709 with the plate's range restored."""
    return ((srgb_decode(encoded) + carry.residual) * carry.ratio).astype(np.float32)


# ------------------------------------------------------------------------------------- OpenColorIO
def _ocio() -> Any:
    try:
        import PyOpenColorIO as ocio
    except ImportError:
        raise UnsupportedFormatError(
            "colour management needs OpenColorIO; install it with: pip install 'vidstyle[color]' "
            "(or drop input_colorspace / output_colorspace)"
        ) from None
    return ocio


def load_config(config: str | os.PathLike[str] | None) -> tuple[Any, str]:
    """The OpenColorIO config ``config`` (a file or an ``ocio://`` URI), else ``$OCIO``, else the
    ACES studio config; returns ``(config, where it came from)``."""
    ocio = _ocio()
    parameter = "ocio_config"
    if config is None:
        config = os.environ.get("OCIO") or BUILTIN_CONFIG
        parameter = "OCIO" if os.environ.get("OCIO") else parameter
    text = str(config)
    if not text.startswith("ocio://") and not Path(text).is_file():
        where = "$OCIO" if parameter == "OCIO" else "ocio_config"
        raise InputNotFoundError(
            f"{where}: the OpenColorIO config '{text}' does not exist; give an existing .ocio file or "
            f"{BUILTIN_CONFIG} (the ACES studio config)"
        )
    try:
        return ocio.Config.CreateFromFile(text), text
    except Exception as e:  # noqa: BLE001 - OCIO raises its own Exception type
        raise OptionValueError("ocio_config", f"ocio_config: cannot read the OpenColorIO config '{text}' "
                                              f"({str(e).splitlines()[0]}); check the file") from None


def _space_names(config: Any, near: str, limit: int = 10) -> str:
    """The config's colour spaces, abbreviated: the names closest to ``near`` first, then the
    scene-referred ones (what plates are in), then the display ones."""
    import difflib

    spaces = list(config.getColorSpaces())
    names = [cs.getName() for cs in spaces]
    close = difflib.get_close_matches(near, names, n=3, cutoff=0.6)
    ocio = _ocio()
    scene = [cs.getName() for cs in spaces if cs.getReferenceSpaceType() == ocio.REFERENCE_SPACE_SCENE]
    ordered = list(dict.fromkeys([*close, *scene, *names]))
    shown = ", ".join(f"'{n}'" for n in ordered[:limit])
    more = len(ordered) - limit
    hint = f"did you mean '{close[0]}'? " if close else ""
    return hint + f"it has {shown}" + (f" … ({more} more; `ociocheck` lists them)" if more > 0 else "")


def _find(config: Any, name: str, parameter: str, where: str) -> Any:
    cs = config.getColorSpace(name)
    if cs is None:
        raise OptionValueError(parameter, f"{parameter}: '{name}' is not a colour space of {where}; "
                                          f"{_space_names(config, name)}")
    return cs


def _find_linear_709(config: Any, where: str) -> Any:
    for cs in config.getColorSpaces():
        if cs.getInteropID() == "lin_rec709_scene":
            return cs
    for name in _LINEAR_709:
        cs = config.getColorSpace(name)
        if cs is not None:
            return cs
    raise OptionValueError("ocio_config", f"ocio_config: {where} has no linear Rec.709 colour space (interop ID "
                                          "lin_rec709_scene), the networks' working space; add one or use "
                                          f"{BUILTIN_CONFIG}")


class ColourManagement:
    """The conversions of a colour-managed run: plate (``input``) → linear Rec.709 → network, and
    network → linear Rec.709 → ``output`` (float32 CPU processors, lossless optimisation).

    Raises (when built): UnsupportedFormatError (no OpenColorIO), InputNotFoundError (no config
    file), OptionValueError (an unknown colour space, naming the parameter and listing the
    config's spaces).
    """

    def __init__(self, *, input: str, output: str | None = None, config: str | os.PathLike[str] | None = None) -> None:  # noqa: A002
        ocio = _ocio()
        self.config, self.config_source = load_config(config)
        where = f"the config '{self.config_source}'"
        in_cs = _find(self.config, input, "input_colorspace", where)
        out_cs = _find(self.config, output or input, "output_colorspace", where)
        lin = _find_linear_709(self.config, where)
        self.input = ColourSpace(name=in_cs.getName(), interop_id=in_cs.getInteropID() or None)
        self.output = ColourSpace(name=out_cs.getName(), interop_id=out_cs.getInteropID() or None)
        self.working = lin.getName()

        def cpu(src: str, dst: str) -> Any:
            proc = self.config.getProcessor(src, dst)
            return proc.getOptimizedCPUProcessor(ocio.BIT_DEPTH_F32, ocio.BIT_DEPTH_F32, ocio.OPTIMIZATION_LOSSLESS)

        self._in = cpu(self.input.name, self.working)
        self._out = cpu(self.working, self.output.name)

    @staticmethod
    def _apply(cpu: Any, image: np.ndarray) -> np.ndarray:
        px = np.ascontiguousarray(image, dtype=np.float32).copy()
        cpu.applyRGB(px)
        return px

    def plate_to_network(self, image: np.ndarray) -> tuple[np.ndarray, HighlightCarry]:
        """A plate (float, in the input space) → the network's input and the carry."""
        return to_network(self._apply(self._in, image))

    def network_to_output(self, stylised: np.ndarray, carry: HighlightCarry) -> np.ndarray:
        """The network's output → the output space, the plate's range restored."""
        return self._apply(self._out, from_network(stylised, carry))
