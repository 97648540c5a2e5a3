"""Keyframe-guided stylization: an artist paints a few frames, vidstyle carries the look through the shot.

Texler et al. 2020, "Interactive Video Stylization Using Few-Shot Patch-Based Training": a small
image-to-image network is trained in minutes on random patches of (frame, painted keyframe) pairs, then
applied to every frame in the streaming pipeline, and the stabiliser removes what flicker remains.
See docs/keyframes.md.

* :mod:`~vidstyle.keyframes.options` — :class:`KeyframeOptions` (the ``vidstyle keyframes`` options)
* :mod:`~vidstyle.keyframes.guides` — the network's input guides (frame, position, tracked coordinates)
* :mod:`~vidstyle.keyframes.net` — :class:`KeyframeNet`, the U-Net-like generator
* :mod:`~vidstyle.keyframes.losses` — L1 + relative perceptual loss
* :mod:`~vidstyle.keyframes.trainer` — patch sampling, the plateau rule, :func:`train_network`
* :mod:`~vidstyle.keyframes.model` — :class:`KeyframeModel`, its file and card
* :mod:`~vidstyle.keyframes.stage` — :class:`KeyframeStage`, the pipeline stage
* :mod:`~vidstyle.keyframes.run` — :func:`stylize_with_keyframes`, end to end
"""

from __future__ import annotations

from vidstyle.keyframes.options import Keyframe, KeyframeOptions

__all__ = ["Keyframe", "KeyframeOptions"]
