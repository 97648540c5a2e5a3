"""The colour-managed ends of a stage graph: :class:`ToNetworkStage` takes plates to the
networks' space and keeps what they cannot see on the frame (``Frame.extra[CARRY_KEY]``);
:func:`restore_output` brings a stylised frame back to the output space (see
:mod:`vidstyle.colour.management`)."""

from __future__ import annotations

import numpy as np

from vidstyle.colour.management import ColourManagement, HighlightCarry
from vidstyle.frame import Frame, to_float32

__all__ = ["CARRY_KEY", "ToNetworkStage", "restore_output"]

#: ``Frame.extra`` key of the frame's :class:`~vidstyle.colour.management.HighlightCarry`
CARRY_KEY = "vidstyle.colour.carry"


class ToNetworkStage:
    """Converts each plate from the input space to the networks' sRGB input (float32 in [0, 1])."""

    name = "colour-in"

    def __init__(self, management: ColourManagement) -> None:
        self.management = management

    def process(self, frame: Frame) -> list[Frame]:
        image = frame.image if frame.image.dtype == np.float32 else to_float32(frame.image)
        network, carry = self.management.plate_to_network(image)
        frame.image = network
        frame.extra[CARRY_KEY] = carry
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        return None


def restore_output(frame: Frame, image: np.ndarray, management: ColourManagement) -> np.ndarray:
    """``image`` (the stylised frame, network space) in the output space, with the frame's
    highlights and out-of-gamut colours restored (float32)."""
    carry = frame.extra.get(CARRY_KEY)
    if not isinstance(carry, HighlightCarry):
        raise ValueError(f"frame {frame.index} has no colour carry; ToNetworkStage must come first")
    return management.network_to_output(image if image.dtype == np.float32 else to_float32(image), carry)
