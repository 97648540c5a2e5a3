"""The options of keyframe-guided stylization (``vidstyle keyframes``), one typed group.

Field names are unique across every option group of the project (a test holds it), so a render job
could carry them flat beside the shared groups. Errors name the parameter (``keys``), never a flag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vidstyle.options.spec import OptionValueError, check_group, option

__all__ = ["BLEND_MODES", "GUIDES", "KEYFRAME_FLOW", "KeyframeOptions", "Keyframe", "parse_keys", "parse_guides"]

#: the input guides a network can take besides the frame itself (docs/keyframes.md, "Guides")
GUIDES = ("position", "tracked")
#: how the keyframes are combined: one network on all of them, or one per keyframe blended by distance
BLEND_MODES = ("joint", "distance")
#: the optical flow of keyframe runs unless one is chosen: the carried keyframe is only as good as its flow
#: (dis-fast lost on the held-out protocol where dis-medium won; docs/keyframes.md, "Measured")
KEYFRAME_FLOW = "dis-medium"


@dataclass(frozen=True, slots=True)
class Keyframe:
    """A painted keyframe: the frame number it paints (0-based position in the clip) and its file."""

    index: int
    path: str


def parse_keys(value: Any, name: str) -> tuple[Keyframe, ...]:
    """``"0:painted_0000.png"``, a list of those, ``(index, path)`` pairs or :class:`Keyframe`; sorted by
    index. A frame number given twice is an error naming both files."""
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) and not (
        len(value) == 2 and isinstance(value[0], int) and not isinstance(value[0], bool)) else [value]
    out: list[Keyframe] = []
    for item in items:
        if isinstance(item, Keyframe):
            out.append(item)
            continue
        if isinstance(item, (list, tuple)) and len(item) == 2:
            number, path = item
        elif isinstance(item, (str, os.PathLike)):
            number, sep, path = str(item).partition(":")
            if not sep or not path:
                raise OptionValueError(name, f"{name} must be FRAME:IMAGE (e.g. 0:painted_0000.png), got {item!r}")
        else:
            raise OptionValueError(name, f"{name} must be FRAME:IMAGE (e.g. 0:painted_0000.png), got {item!r}")
        try:
            index = int(str(number).strip())
        except ValueError:
            raise OptionValueError(name, f"{name}: {str(number).strip()!r} is not a frame number; give FRAME:IMAGE "
                                         "with FRAME a whole number (0 = the first frame)") from None
        if index < 0:
            raise OptionValueError(name, f"{name}: frame number {index} is negative; frames count from 0")
        out.append(Keyframe(index=index, path=str(path)))
    seen: dict[int, str] = {}
    for k in out:
        if k.index in seen:
            raise OptionValueError(name, f"{name}: frame {k.index} is given twice ({seen[k.index]} and {k.path}); "
                                         "give each frame number once")
        seen[k.index] = k.path
    return tuple(sorted(out, key=lambda k: k.index))


def parse_guides(value: Any, name: str) -> tuple[str, ...]:
    """``"position,tracked"``, a list, or ``""``/``"none"`` for the frame alone."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in (str(i).strip().lower() for i in items):
        if item in ("", "none", "rgb", "frame"):
            continue
        if item not in GUIDES:
            raise OptionValueError(name, f"{name}: unknown guide {item!r}; choose from {', '.join(GUIDES)} "
                                         "(comma-separated), or none for the frame alone")
        if item not in out:
            out.append(item)
    return tuple(g for g in GUIDES if g in out)  # canonical order: the network's input channels


@dataclass(frozen=True)
class KeyframeOptions:
    """Keyframe-guided stylization (Texler et al. 2020): what to learn from, how, and where to keep it."""

    keys: tuple[Keyframe, ...] = option((), kind="custom", parse=parse_keys, repeat=True, flag="--key",
                                        group="keyframes", metavar="FRAME:IMAGE",
                                        help="a painted keyframe: the 0-based frame number it paints and its image "
                                             "(repeat for more keyframes)")
    guides: tuple[str, ...] = option((), kind="custom", parse=parse_guides, group="keyframes", metavar="G,...",
                                     help="input guides besides the frame: position (x, y of the pixel), tracked "
                                          "(coordinates carried along the optical flow); default: the frame alone")
    keyframe_blend: str = option("joint", kind="choice", choices=BLEND_MODES, group="keyframes", flag="--blend",
                                 help="joint: one network trained on all keyframes (default); distance: one network "
                                      "per keyframe, outputs blended by temporal distance")
    warp_blend: float = option(1.0, kind="float", minimum=0.0, maximum=1.0, group="keyframes", metavar="S",
                               help="carry the paintings of the keyframes behind and ahead along the optical flow and "
                                    "keep the more reliable one (weight S) where the flow explains the frame, the "
                                    "network elsewhere: keyframes come out as painted, strokes stay crisp (frames wait "
                                    "for the keyframe ahead); 0: the network alone (docs/keyframes.md)")
    patch_size: int = option(32, kind="int", minimum=16, maximum=256, group="keyframe training", metavar="PX",
                             help="side of the random training patches (Texler et al.: 32)")
    patch_batch: int = option(16, kind="int", minimum=1, maximum=512, group="keyframe training", metavar="N",
                              help="patches per training step")
    learning_rate: float = option(2e-3, kind="float", above=0.0, maximum=1.0, group="keyframe training",
                                  metavar="LR", help="Adam learning rate")
    perceptual_weight: float = option(1.0, kind="float", minimum=0.0, group="keyframe training", metavar="W",
                                      help="weight of the VGG feature loss next to the L1 loss (0: L1 only)")
    gram_weight: float = option(0.0, kind="float", minimum=0.0, group="keyframe training", metavar="G",
                                help="weight of a Gram (texture statistics) term per patch next to the feature loss: "
                                     "crisper strokes from the network (measured: docs/keyframes.md); 0: off")
    max_steps: int = option(20000, kind="int", minimum=1, group="keyframe training", metavar="N",
                            help="stop after this many steps even without a plateau")
    time_budget: float = option(10.0, kind="float", above=0.0, group="keyframe training", metavar="MINUTES",
                                help="stop training after this many minutes if the loss has not reached its plateau before")
    patience: int = option(400, kind="int", minimum=10, group="keyframe training", metavar="N",
                           help="plateau: stop when the loss's moving average has not improved by 1%% in N steps")
    training_preview: str | None = option(None, kind="path", group="keyframe training", metavar="PATH",
                                          affects_output=False, flag="--preview",
                                          help="write a preview image (frame | painted | network) while training")
    save_model: str | None = option(None, kind="path", group="keyframe model", metavar="PATH", affects_output=False,
                                    help="save the trained network (.safetensors, with a .json/.md card) for reuse")
    keyframe_model: str | None = option(None, kind="path", group="keyframe model", metavar="PATH", flag="--model",
                                        help="apply a network saved with --save-model instead of training one; "
                                             "with --key (the same shot), those paintings are carried along the "
                                             "flow as in the training run, with no training")

    def __post_init__(self) -> None:
        check_group(self)

    @property
    def active(self) -> bool:
        """Keyframes given, or a trained keyframe network: the keyframe method is wanted (render jobs)."""
        return bool(self.keys) or self.keyframe_model is not None

    def require_source(self) -> None:
        """Raise unless there is something to learn from or apply: ``keys`` or ``keyframe_model``."""
        if self.keyframe_model is None and not self.keys:
            raise OptionValueError("keys", "keys: give at least one painted keyframe (FRAME:IMAGE), or a trained "
                                           "network as `keyframe_model`",
                                   also=("keyframe_model",))
