"""The option groups that the Python API, the CLI, render jobs and live mode share.

Each group is a frozen dataclass; constructing it checks every value once (errors name the
parameter). Field names are unique across all groups, so a flat mapping (a render job, the keyword
arguments of :func:`vidstyle.stylize_video`) routes each name to exactly one field.

=================  =====================================================================
group              fields
=================  =====================================================================
StylizeOptions     backend, model, style (+ the arbitrary back end: method, decoder, fast, stat_smoothing), device, precision, batch_size, compile, threads
TemporalOptions    stabilize (a keyframeable curve), flow
EncodeOptions      codec, crf, pix_fmt, preset
OptimOptions       the optimisation back end: iterations, weights, layers, video settings
=================  =====================================================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vidstyle.options.curve import Curve
from vidstyle.options.spec import OptionValueError, check_group, option

__all__ = [
    "BACKENDS",
    "DEFAULT_STABILIZE",
    "ARBITRARY_TEMPORAL",
    "HEAVY_TEMPORAL",
    "HEAVY_PARAMETERS",
    "LIGHT_TEMPORAL",
    "STUDENT_TEMPORAL",
    "backend_temporal_defaults",
    "with_backend_defaults",
    "EncodeOptions",
    "OptimOptions",
    "METHODS",
    "PRECISIONS",
    "STYLE_LOSSES",
    "StyleImage",
    "StylizeOptions",
    "TemporalOptions",
    "parse_flow",
    "parse_style_mix",
    "parse_styles",
]

BACKENDS = ("feedforward", "optim", "arbitrary")
#: the feature transforms of the arbitrary-style back end
METHODS = ("adain", "wct", "swap")
#: the style losses of the optimisation back end (and, but for the patch loss mrf, of training);
#: see vidstyle.losses.select
STYLE_LOSSES = ("gram", "mmd-linear", "mmd-poly", "mmd-gaussian", "bn", "mrf")
PRECISIONS = ("float32", "bfloat16", "float16", "auto")
#: default stabilisation strength of each back end (the feed-forward stabiliser's blend strength;
#: the optimisation back end's fraction of its temporal weight)
DEFAULT_STABILIZE = {"feedforward": 0.85, "optim": 1.0, "arbitrary": 0.85}
#: the file pipeline's temporal defaults of the arbitrary back end (both variants), where ``flow``, ``stabilizer`` and
#: ``stabilize`` are not given (:func:`backend_temporal_defaults`). Measured on the shared clips (BENCHMARKS.md,
#: "Arbitrary style"): with ``blend`` / dis-fast WCT's style loss rose to 1.38× the per-frame output's on a pan (the
#: strokes smeared); ``resample`` at 0.9 with dis-medium flow keeps WCT within warping error ≤ 0.25×, sharpness
#: ≥ 0.97× and style ≤ 1.04× on all three clips. Both cost ~100 ms of CPU per 640×360 frame next to the VGG
#: network's ~600 ms. The fast variant gets them too: no ``blend`` strength met every target with it (0.85: style
#: 1.36× on the pan; 0.6: warping error 0.47× on sintel), ``resample`` 0.9 / dis-medium meets all three clips
#: (warping error ≤ 0.24×, sharpness ≥ 0.96×, style ≤ 1.01×), at about 0.4× the per-frame pipeline's speed in files
#: (``--stabilizer blend`` gives the speed back). Live mode has its own defaults (``blend``, dis-ultrafast).
#: Its resample crossfade (``resample_fade``) is 0.85 of the lifetime (the stabiliser's default 0.5): AdaIN's warping
#: error on sintel 0.326 → 0.290×, WCT's on the three clips 0.20-0.24 → 0.17-0.20×, for at most 2 % more style loss;
#: the student networks, whose style margins are thinner, keep 0.5 (BENCHMARKS.md, "Arbitrary style").
ARBITRARY_TEMPORAL: dict[str, Any] = {"flow": "dis-medium", "stabilizer": "resample", "stabilize": 0.9,
                                      "resample_fade": 0.85}
#: the same for feed-forward networks of at least :data:`HEAVY_PARAMETERS` weights (Johnson-size: ``--size full``,
#: the engstrom2016 reference nets): ``resample`` with dis-medium flow meets every target of the temporal benchmark on
#: all 16 clip/model pairs (warping error ≤ 0.3×, sharpness ≥ 0.9×, style ≤ 1.1× the per-frame output's), and their
#: 400-600 ms per 640×360 frame hide the tracker and the flow (pipeline 0.97-1.00× the per-frame one, BENCHMARKS.md
#: "Temporal stabilisation"). The tiny and small nets (~40k weights, ~25 ms) keep ``blend``: with resample their
#: pipeline would run at 0.28× the per-frame speed.
HEAVY_TEMPORAL: dict[str, Any] = {"flow": "dis-medium", "stabilizer": "resample"}
#: weights from which a feed-forward network counts as heavy (the tiny and small nets have ~40-50k, full ~1.7M)
HEAVY_PARAMETERS = 1_000_000
#: the file pipeline's temporal defaults of a lighter feed-forward network that is not a shipped model (a shipped
#: one uses its own measured strength, :attr:`vidstyle.nets.registry.ShippedWeights.stabilize`): ``blend`` at 0.75.
#: Blending at 0.85 smeared a strongly textured net's motifs (starry_tiny: style loss 1.21× its per-frame output's on
#: a pan); over the six clip/model pairs of the tiny and small nets 0.75 is the one strength within 0.2 % of every
#: target (warping error ≤ 0.3×, style ≤ 1.1×), BENCHMARKS.md "Temporal stabilisation".
LIGHT_TEMPORAL: dict[str, Any] = {"stabilize": 0.75}
#: the same for one-style networks fine-tuned from the fast arbitrary-style student (``vidstyle train --size student``):
#: the fast variant's own network and texture, so its file-pipeline defaults (:data:`ARBITRARY_TEMPORAL`), with which
#: they meet the temporal benchmark's targets (BENCHMARKS.md, "Style fidelity"); with the stabiliser's own crossfade
#: (0.5 of the lifetime): a longer one cost their style loss 2-3 % more, where their margins are thinnest
STUDENT_TEMPORAL: dict[str, Any] = {k: v for k, v in ARBITRARY_TEMPORAL.items() if k != "resample_fade"}


# ------------------------------------------------------------------------------ custom kinds
@dataclass(frozen=True, slots=True)
class StyleImage:
    """A style image, its blend weight and, for per-region styles, the matte of the region of the frame it
    goes to.

    Written ``PATH[@MATTE][:WEIGHT]`` or ``PATH[:WEIGHT][@MATTE]``: ``a.jpg``, ``a.jpg:0.3``, ``a.jpg@sky.png``,
    ``a.jpg@sky.png:0.5``. The matte (white = the region) is a picture of the output's aspect ratio (colour
    mattes count by their luminance). ``None``: everywhere no other style's matte is (arbitrary back end)."""

    path: str
    weight: float = 1.0
    matte: str | None = None

    def __str__(self) -> str:
        """The command-line form ``PATH[:WEIGHT][@MATTE]``."""
        text = self.path if self.weight == 1.0 else f"{self.path}:{self.weight:g}"
        return text if self.matte is None else f"{text}@{self.matte}"


def _take_weight(text: str) -> tuple[str, float | None]:
    """``"a.jpg:0.3"`` → ``("a.jpg", 0.3)``; no number after the last ``:`` (or an existing file) → ``(text, None)``."""
    head, sep, tail = text.rpartition(":")
    if sep and head and not os.path.exists(text):
        try:
            return head, float(tail)
        except ValueError:
            pass
    return text, None


def _split_style(text: str) -> tuple[str, float, str | None]:
    """``PATH[@MATTE][:WEIGHT]`` or ``PATH[:WEIGHT][@MATTE]`` → (path, weight, matte). A ``:`` or ``@`` that is
    part of an existing file's name is kept (``a:b.jpg``)."""
    if os.path.exists(text):
        return text, 1.0, None
    path, weight = _take_weight(text)
    matte = None
    head, sep, tail = path.rpartition("@")
    if sep and head and not os.path.exists(path):
        path, matte = head, tail
        if weight is None:
            path, weight = _take_weight(path)
    return path, 1.0 if weight is None else weight, matte


def parse_styles(value: Any, name: str) -> tuple[StyleImage, ...]:
    """``"a.jpg"``, ``"a.jpg:0.3"``, ``"a.jpg@matte.png"`` (the style only in that matte's region),
    ``"a.jpg@matte.png:0.3"`` or ``"a.jpg:0.3@matte.png"``, a list of those, ``[path, weight]`` pairs or
    :class:`StyleImage`."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if items and len(items) == 2 and isinstance(items[0], str) and isinstance(items[1], (int, float)) \
            and not isinstance(items[1], bool) and not isinstance(value, tuple):
        items = [items]  # one [path, weight] pair
    out: list[StyleImage] = []
    for item in items:
        if isinstance(item, StyleImage):
            out.append(item)
            continue
        matte: str | None = None
        if isinstance(item, (list, tuple)) and len(item) == 2:
            path, weight = str(item[0]), item[1]
        elif isinstance(item, (str, os.PathLike)):
            path, weight, matte = _split_style(str(item))
            if matte is not None and not matte.strip():
                raise OptionValueError(name, f"{name}: the matte after '@' in {item!r} is empty; give PATH@MATTE")
        else:
            raise OptionValueError(name, f"{name} must be image paths (PATH[@MATTE][:WEIGHT]), got {item!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < math.inf:
            raise OptionValueError(name, f"{name}: the weight of {path} must be a positive number, got {weight!r}")
        if not path.strip():
            raise OptionValueError(name, f"{name} must not be an empty path")
        out.append(StyleImage(path=path, weight=float(weight), matte=matte))
    if not out:
        raise OptionValueError(name, f"{name} needs at least one image path")
    return tuple(out)


def parse_model(value: Any, name: str) -> Any:
    """A model name or path (as a string), or a loaded model object passed through."""
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not text.strip():
            raise OptionValueError(name, f"{name} must be a model name or a .safetensors path, got {value!r}")
        return text
    if hasattr(value, "net"):  # a loaded vidstyle.nets.registry.StyleModel
        return value
    raise OptionValueError(name, f"{name} must be a model name, a .safetensors path or a loaded StyleModel, got {value!r}")


def parse_style_mix(value: Any, name: str) -> tuple[tuple[str, Curve], ...]:
    """Style weights of a multi-style model, each a number or keyframes.

    ``"starry:0.7,wave:0.3"``; ``"starry=0.7; wave=0.3"``; keyframed ``"starry=0:1, 48:0; wave=0:0, 48:1"``
    (a cross-dissolve over 48 frames); ``"starry"`` alone; or a mapping ``{"starry": 0.7, ...}`` (TOML
    table). Weights must be >= 0 and sum to more than 0 at every frame; they are normalised.
    """
    from vidstyle.errors import InvalidOptionError

    form = (f'{name} must be STYLE:WEIGHT,... (e.g. "starry:0.7,wave:0.3") or keyframed STYLE=FRAME:W, '
            f'FRAME:W; ... (e.g. "starry=0:1, 48:0; wave=0:0, 48:1")')
    pairs: list[tuple[str, Any]]
    if isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        pairs = [(str(p[0]), p[1]) for p in value]
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if "=" in text:
            pairs = []
            for part in text.split(";"):
                if part.strip():
                    key, sep, curve = part.partition("=")
                    if not sep:
                        raise OptionValueError(name, f"{form}, got {value!r}")
                    pairs.append((key.strip(), curve.strip()))
        else:
            pairs = []
            for part in text.split(","):
                key, sep, w = part.strip().rpartition(":")
                pairs.append((key.strip(), w.strip()) if sep else (w.strip(), 1.0))
    else:
        raise OptionValueError(name, f"{form}, got {value!r}")
    out: list[tuple[str, Curve]] = []
    for key, weight in pairs:
        if not key or any(key == k for k, _ in out):
            raise OptionValueError(name, f"{name}: style names must be given once each, got {value!r}")
        try:
            curve = Curve.parse(weight, name=f"{name} weight of {key!r}")
        except InvalidOptionError as exc:
            raise OptionValueError(name, str(exc)) from None
        if curve.minimum < 0:
            raise OptionValueError(name, f"{name}: the weight of {key!r} must be >= 0, got {curve.minimum:g}")
        out.append((key, curve))
    if not out:
        raise OptionValueError(name, f"{form}, got {value!r}")
    frames = sorted({f for _, c in out for f, _ in c.keys})
    for f in frames:  # piecewise linear: positive at every key frame means positive everywhere
        if sum(c.at(f) for _, c in out) <= 0:
            raise OptionValueError(name, f"{name}: the weights sum to 0 at frame {f:g}; give a style a positive weight")
    return tuple(out)


def parse_flow(value: Any, name: str) -> str:
    """An estimator name, aliases resolved (``dis`` → ``dis-fast``); ``"none"``/``"off"`` → ``"none"``."""
    from vidstyle.errors import InvalidOptionError
    from vidstyle.flow.estimators import canonical_flow_name

    try:
        key = canonical_flow_name(value if isinstance(value, str) else str(value))
    except InvalidOptionError as exc:
        raise OptionValueError(name, str(exc)) from None
    return "none" if key is None else key


# ------------------------------------------------------------------------------ groups
@dataclass(frozen=True)
class StylizeOptions:
    """What stylizes the frames and where it runs."""

    backend: str = option("feedforward", kind="choice", choices=BACKENDS, group="stylization",
                          help="feedforward: a trained network (fast); optim: per-frame optimisation (slow, any style)")
    model: Any = option(None, kind="custom", parse=parse_model, group="stylization", short="-m", metavar="NAME|PATH",
                               help="feed-forward model: a shipped name (see `vidstyle models`) or a .safetensors file "
                                    "(default: the default model)")
    style: tuple[StyleImage, ...] | None = option(None, kind="custom", parse=parse_styles, group="stylization",
                                                  short="-s", repeat=True, metavar="STYLE[@MATTE][:W]",
                                                  help="style image of the optim and arbitrary back ends, optionally "
                                                       "with a blend weight (repeat to blend several); @MATTE puts it "
                                                       "only where that matte is white (per-region styles)")
    style_mix: tuple[tuple[str, Curve], ...] | None = option(
        None, kind="custom", parse=parse_style_mix, group="stylization", metavar="STYLE:W,...",
        help="styles of a multi-style model and their weights, e.g. starry:0.7,wave:0.3; keyframed "
             "\"starry=0:1, 48:0; wave=0:0, 48:1\" cross-dissolves (default: the model's first style)")
    style_strength: Curve | None = option(None, kind="curve", minimum=0.0, maximum=1.0, group="stylization",
                                          metavar="S|F:S,...",
                                          help="how much style: 0 (the photo) to 1 (full, default); keyframeable")
    method: str | None = option(None, kind="choice", choices=METHODS, group="stylization",
                                help="arbitrary back end: adain (default, fast), wct (whitening and colouring) or swap "
                                     "(style patches)")
    decoder: str | None = option(None, kind="str", group="stylization", metavar="NAME|PATH",
                                 help="arbitrary back end: the decoder (a shipped name or a .safetensors file; default: "
                                      "the shipped relu3_1 decoder)")
    fast: bool = option(False, kind="bool", group="stylization",
                        help="arbitrary back end: the fast variant, a small encoder and decoder distilled from the VGG "
                             "one (no VGG per frame, ~1.5 GFLOP at 640x360: live mode on a CPU); its model file is "
                             "the decoder option's (default: student_relu31 from the models folder)")
    preserve_color: str | None = option(None, kind="choice", choices=("luminance", "histogram"), group="stylization",
                                        help="keep the input's colours (optim and arbitrary back ends)")
    style_scale: float = option(1.0, kind="float", minimum=0.05, maximum=8.0, group="stylization", metavar="S",
                                help="brush size: the style image's size relative to the frame (optim and arbitrary); "
                                     "feed-forward: the network runs at 1/S of the frame size, resized back (S > 1: "
                                     "bigger strokes, faster; S < 1: finer strokes, S^-2 times the work)")
    style_rotate: float = option(0.0, kind="float", minimum=-360.0, maximum=360.0, group="stylization",
                                 metavar="DEG", help="turn the style image DEG degrees counter-clockwise before it is "
                                                     "analysed, so the strokes follow that direction (optim and "
                                                     "arbitrary)")
    mask: str | None = option(None, kind="path", group="mask", metavar="PATH",
                              help="stylise only where this matte is white (soft edges kept): a sequence "
                                   "'matte.%04d.png' (frame numbers follow the input's) or one image for every "
                                   "frame; colour mattes use their luminance")
    stat_smoothing: float = option(0.0, kind="float", minimum=0.0, maximum=0.99, group="stylization", metavar="λ",
                                   help="arbitrary back end, adain and wct on video: average each frame's feature "
                                        "statistics with the previous frames' (weight λ of the past; restarts at "
                                        "scene cuts); 0 = each frame's own")
    vgg_weights: str | None = option(None, kind="str", group="loss network (optim and arbitrary back ends)", metavar="PATH", aliases=("vgg",),
                                     help="VGG19 weights (.safetensors) or 'torchvision' "
                                          "(default: $VIDSTYLE_VGG_WEIGHTS, else torchvision)")
    vgg_convention: str | None = option(None, kind="choice", choices=("caffe", "torchvision"), group="loss network (optim and arbitrary back ends)",
                                        help="input convention of a weights file whose metadata does not say")

    seed: int = option(0, kind="int", minimum=0, group="stylization", metavar="N",
                       help="random seed (noise init, any sampling); recorded for repeatable results")
    device: str | None = option(None, kind="str", group="processing", metavar="D", affects_output=False,
                                help="torch device: cpu, cuda, cuda:1, mps (default: best available)")
    precision: str = option("float32", kind="choice", choices=PRECISIONS, group="processing",
                            help="network number format: float32 (exact); bfloat16 (about 2x faster on CPUs with "
                                 "AVX512-BF16/AMX, ~0.5 of 255 levels off); float16 (GPUs); auto (bfloat16 where native)")
    batch_size: int = option(1, kind="int", minimum=1, group="processing", metavar="N",
                             help="frames per network call")
    compile: bool = option(False, kind="bool", group="processing",
                           help="use torch.compile (slow start, faster afterwards)")
    threads: int | None = option(None, kind="int", minimum=1, group="processing", metavar="N", affects_output=False,
                                 help="CPU threads for the network (default: the cores available, less those other jobs keep busy by the 1-minute load average)")

    def __post_init__(self) -> None:
        check_group(self)
        if self.backend == "optim" and self.model is not None:
            raise OptionValueError("model", "model is for the feed-forward back end; drop it, or leave out `backend` optim",
                                   also=("backend",))
        if self.backend in ("optim", "arbitrary") and not self.style:
            raise OptionValueError("style", f"`backend` {self.backend} needs a style image: add `style` PATH",
                                   also=("backend",))
        if self.backend != "arbitrary" and (self.method is not None or self.decoder is not None or self.fast):
            which = "method" if self.method is not None else "decoder" if self.decoder is not None else "fast"
            raise OptionValueError(which, f"{which} is for the arbitrary back end: give a painting with `style` "
                                          "(and `backend` arbitrary)", also=("style", "backend"))
        if self.backend == "arbitrary" and self.method is None:
            object.__setattr__(self, "method", "adain")
        if self.backend == "arbitrary" and self.model is not None:
            raise OptionValueError("model", "model is for the feed-forward back end; the arbitrary back end takes "
                                            "`style` (and `decoder`)", also=("backend", "decoder"))
        if self.backend == "optim" and (self.style_mix is not None or self.style_strength is not None):
            raise OptionValueError("style_mix", "style_mix and style_strength are for feed-forward models; use "
                                                "style PATH:WEIGHT to blend styles in the optim back end",
                                   also=("style_strength", "style"))
        if self.backend == "feedforward" and self.style_rotate:
            raise OptionValueError("style_rotate", "style_rotate turns the painting of the arbitrary and optim back "
                                                   "ends; a feed-forward model's strokes are fixed when it is trained",
                                   also=("backend",))
        if self.backend == "feedforward" and self.style and any(s.matte for s in self.style):
            raise OptionValueError("style", "per-region styles (STYLE@MATTE) work with the optim and arbitrary back "
                                            "ends; add `backend` optim or arbitrary", also=("backend",))
        if self.backend == "optim" and self.style and any(s.matte for s in self.style) \
                and not all(s.matte for s in self.style):
            raise OptionValueError("style", "style: with the optim back end, give every style image a region matte "
                                            "(PATH@MATTE) or none")
        if self.backend == "feedforward" and self.style:
            raise OptionValueError("style", "style is for the optim and arbitrary back ends; add `backend` arbitrary "
                                            "(or optim), or use a `model`",
                                   also=("backend", "model"))


def backend_temporal_defaults(stylize: StylizeOptions) -> dict[str, Any]:
    """Temporal option values that replace :class:`TemporalOptions`' own defaults for ``stylize``'s back end in the
    file pipeline (``vidstyle stylize``, :func:`vidstyle.api.stylize_video`), for the options not given:
    :data:`ARBITRARY_TEMPORAL` for the arbitrary back end (VGG and fast variants), :data:`STUDENT_TEMPORAL` for the one- and
    multi-style student networks, :data:`HEAVY_TEMPORAL` for a feed-forward
    model of at least :data:`HEAVY_PARAMETERS` weights (counted from its file's header), a shipped model's own
    strength (:func:`vidstyle.nets.registry.shipped_entry`; also for the default model; a shipped multi-style
    student's per style, weighted by ``style_mix`` frame by frame:
    :meth:`~vidstyle.nets.registry.ShippedWeights.stabilize_for`), :data:`LIGHT_TEMPORAL` for
    another model file, none otherwise (a model object, several models, a file that cannot be read). Nothing is
    loaded or downloaded."""
    if stylize.backend == "arbitrary":
        return dict(ARBITRARY_TEMPORAL)
    if stylize.backend == "feedforward" and isinstance(stylize.model, (str, os.PathLike, type(None))):
        from vidstyle.nets import registry

        model = registry.DEFAULT_MODEL if stylize.model is None else stylize.model
        if registry.architecture_of(model) in (registry.STUDENT_STYLE, registry.STUDENT_MULTISTYLE):
            # the student's look (its decoder paints) takes its stabiliser; a shipped one: its own measured strength
            entry = registry.shipped_entry(model)
            if entry is None:
                return dict(STUDENT_TEMPORAL)
            # a multi-style one: the strength of the styles in the mix (some have their own), frame by frame
            return {**STUDENT_TEMPORAL, "stabilize": entry.stabilize_for(stylize.style_mix)}
        weights = registry.parameter_count(model)
        if weights is not None and weights >= HEAVY_PARAMETERS:
            return dict(HEAVY_TEMPORAL)
        entry = registry.shipped_entry(model)
        if entry is not None:
            return {"stabilize": entry.stabilize}
        if weights is not None:
            return dict(LIGHT_TEMPORAL)
    return {}


def with_backend_defaults(temporal: "TemporalOptions", stylize: StylizeOptions, *, given: Any) -> "TemporalOptions":
    """``temporal`` with :func:`backend_temporal_defaults` for the options not in ``given`` (names the caller
    received): the one place the library (:func:`vidstyle.api.options_from`) and the CLI fill them."""
    import dataclasses

    fill = {k: v for k, v in backend_temporal_defaults(stylize).items() if k not in given}
    return dataclasses.replace(temporal, **fill) if fill else temporal


@dataclass(frozen=True)
class TemporalOptions:
    """Temporal coherence: stabilisation strength (keyframeable) and the optical flow it uses."""

    stabilize: Curve | None = option(None, kind="curve", minimum=0.0, maximum=1.0, group="temporal",
                                     metavar="S|F:S,...",
                                     help="temporal stabilisation, 0 (per-frame, flickers) to 1 (strongest); "
                                          "keyframes \"0:0.3, 48:0.85\" interpolate over frame numbers "
                                          "(default: 0.85 feed-forward, 1.0 optim; see `vidstyle stylize --help` for its own)")
    flow: str = option("dis-fast", kind="custom", parse=parse_flow, group="temporal", metavar="NAME",
                       help="optical flow for stabilisation: dis-fast, dis-ultrafast, dis-medium, farneback, "
                            "deepflow, raft-small, raft-large, or none (aliases: dis, raft, off)")

    stabilizer: str = option("blend", kind="choice", choices=("blend", "resample"), group="temporal",
                             help="blend: the warped previous output blended in, detail restored (fast, default); "
                                  "resample: each texel tracked and sampled once from where it was generated (keeps "
                                  "the style's motifs on pans; ~5x the cost; weaker on fast motion)")

    resample_fade: float | None = option(None, kind="float", minimum=0.1, maximum=1.0, group="temporal",
                                         metavar="F",
                                         help="resample: a refreshed texel crossfades to its new track over this "
                                              "fraction of the track's lifetime (longer: less flicker, a little less "
                                              "style; default 0.5, 0.85 for the arbitrary back end)")

    def __post_init__(self) -> None:
        check_group(self)

    def strength(self, backend: str) -> Curve:
        """The stabilisation curve, the back end's default when not given."""
        return self.stabilize if self.stabilize is not None else Curve.constant(DEFAULT_STABILIZE[backend])

    def uses_flow(self, backend: str) -> bool:
        """Whether any frame is stabilised (so the flow stage is needed); checks that flow is on."""
        on = self.strength(backend).maximum > 0
        if on and self.flow == "none":
            raise OptionValueError("stabilize", "stabilize needs optical flow; pick an estimator (e.g. `flow` "
                                                "dis-fast) or use `stabilize` 0", also=("flow",))
        return on


@dataclass(frozen=True)
class EncodeOptions:
    """Encoder settings of video outputs (checked against the container when the output is known)."""

    codec: str | None = option(None, kind="str", group="encoding", metavar="CODEC",
                               help="h264 (default for .mp4/.mkv/.mov), hevc, prores, ffv1, vp9, av1")
    crf: int | None = option(None, kind="int", minimum=0, group="encoding", metavar="N",
                             help="quality, lower is better: h264/hevc 0-51 (18/20), vp9/av1 0-63 (31/35)")
    pix_fmt: str | None = option(None, kind="str", group="encoding", metavar="FMT",
                                 help="pixel format, e.g. yuv420p, yuv444p10le")
    preset: str | None = option(None, kind="str", group="encoding", metavar="P",
                                help="encoder speed preset (medium, slow...) or the ProRes profile (hq, 4444...)")

    def __post_init__(self) -> None:
        check_group(self)


_OPT = "optimisation back end (backend optim)"


@dataclass(frozen=True)
class OptimOptions:
    """Settings of the optimisation back end (Gatys et al. images, Ruder et al. 2016 video)."""

    iterations: int = option(300, kind="int", minimum=1, group=_OPT, metavar="N",
                             help="iterations of a frame started from scratch, per scale level")
    warm_iterations: int | None = option(None, kind="int", minimum=1, group=_OPT, metavar="N",
                                         help="iterations of a frame started from the warped previous result "
                                              "(default: iterations/4)")
    optimizer: str = option("lbfgs", kind="choice", choices=("lbfgs", "adam"), group=_OPT, help="optimiser")
    lr: float | None = option(None, kind="float", above=0.0, group=_OPT, metavar="LR", cli=False,
                              help="Adam step size (default 0.02)")
    content_weight: float = option(1.0, kind="float", minimum=0.0, group=_OPT, metavar="A", help="content weight α")
    style_weight: float = option(10.0, kind="float", minimum=0.0, group=_OPT, metavar="B",
                                 help="style weight β (higher = more style, less content)")
    tv_weight: float = option(1e-3, kind="float", minimum=0.0, group=_OPT, metavar="T", help="smoothness weight")
    temporal_weight: float = option(200.0, kind="float", minimum=0.0, group=_OPT, metavar="G",
                                    help="temporal loss weight γ at stabilize 1")
    long_term: tuple[int, ...] = option((1, 2, 4), kind="ints", minimum=1, group=_OPT, cli=False,
                                        help="previous frames J of the long-term temporal loss (must contain 1)")
    content_layer: str | None = option(None, kind="str", group=_OPT, cli=False, help="VGG19 content layer")
    style_layers: tuple[str, ...] | None = option(None, kind="strs", group=_OPT, cli=False, help="VGG19 style layers")
    pooling: str = option("avg", kind="choice", choices=("avg", "max"), group=_OPT, cli=False, help="VGG pooling")
    scales: int | None = option(None, kind="int", minimum=1, maximum=6, group=_OPT, cli=False,
                                help="coarse-to-fine levels")
    init: str = option("content", kind="choice", choices=("content", "noise"), group=_OPT, cli=False,
                       help="start of a cold frame")
    tolerance: float = option(1e-3, kind="float", minimum=0.0, group=_OPT, cli=False,
                              help="early stop of warm-started frames (relative loss change)")
    size: int | None = option(None, kind="int", minimum=16, group=_OPT, metavar="PX",
                              help="optimise at most at this long side; the output is resized back")
    passes: int = option(1, kind="int", minimum=1, group=_OPT, metavar="N",
                         help="multi-pass: N alternating forward/backward passes over the whole file")
    pass_iterations: int | None = option(None, kind="int", minimum=1, group=_OPT, cli=False,
                                         help="iterations per frame of the later passes")
    blend: float = option(0.5, kind="float", minimum=0.0, maximum=1.0, group=_OPT, cli=False,
                          help="multi-pass blend with the warped neighbour")
    fill: str = option("content", kind="choice", choices=("content", "warped"), group=_OPT,
                       help="start of disoccluded pixels in a warm-started frame")
    style_loss: str | None = option(None, kind="choice", choices=STYLE_LOSSES, group=_OPT,
                                    help="gram (Gatys), mmd-linear, mmd-poly, mmd-gaussian (Li et al. 2017), bn "
                                         "(channel mean and std) or mrf (3x3 patches, Li & Wand) (default: gram; "
                                         "mrf with --style-map)")
    style_map: str | None = option(None, kind="path", group=_OPT, metavar="PATH",
                                   help="semantic map of the style image (flat colours, one per region); with "
                                        "--content-map the mrf loss matches patches within the same colour")
    content_map: str | None = option(None, kind="path", group=_OPT, metavar="PATH",
                                     help="semantic map of the content (the same colours as --style-map)")
    map_weight: float = option(1.0, kind="float", minimum=0.0, group=_OPT, metavar="W",
                               help="weight of the semantic maps in the patch matching (1: as much as the features)")
    mask_weight: float = option(100.0, kind="float", minimum=0.0, group=_OPT, metavar="L",
                                help="with --mask: how firmly the picture is held to the input outside the matte "
                                     "(the style loss sees only the matte)")
    portrait: bool = option(False, kind="bool", group=_OPT,
                            help="head portraits (Selim et al.): the style portrait's face aligned to the photo's, "
                                 "gain-map content loss; no face found: a note and a plain stylisation")
    portrait_strict: bool = option(False, kind="bool", group=_OPT,
                                   help="with --portrait: no face found is an error instead")

    def __post_init__(self) -> None:
        check_group(self)
        if (self.style_map is None) != (self.content_map is None):
            which = "style_map" if self.style_map is None else "content_map"
            raise OptionValueError(which, f"semantic maps come in pairs: add `{which}` PATH",
                                   also=("style_map", "content_map"))
        if self.portrait_strict and not self.portrait:
            raise OptionValueError("portrait_strict", "portrait_strict goes with `portrait`: add `portrait`",
                                   also=("portrait",))
        if self.style_loss is None:
            object.__setattr__(self, "style_loss", "mrf" if self.style_map is not None else "gram")
        elif self.style_map is not None and self.style_loss != "mrf":
            raise OptionValueError("style_loss", f"semantic maps guide the mrf loss; use `style_loss` mrf (or leave it "
                                                 f"out), not {self.style_loss}", also=("style_map",))
        if self.content_weight == 0 and self.style_weight == 0:
            raise OptionValueError("style_weight", "content_weight and style_weight are both 0; give at least one a "
                                                   "positive weight")
        if 1 not in self.long_term:
            raise OptionValueError("long_term", f"long_term must contain 1, got {list(self.long_term)}")

    def config(self, *, seed: int = 0, preserve_color: str | None = None, style_scale: float = 1.0) -> Any:
        """The per-image :class:`~vidstyle.stylize.optim_config.OptimConfig` these options make (with the
        stylization options ``seed``, ``preserve_color`` and ``style_scale``)."""
        from vidstyle.stylize.optim_config import OptimConfig

        return OptimConfig(iterations=self.iterations, optimizer=self.optimizer, lr=self.lr,  # type: ignore[arg-type]
                           content_weight=self.content_weight, style_weight=self.style_weight,
                           tv_weight=self.tv_weight, content_layer=self.content_layer, style_layers=self.style_layers,
                           pooling=self.pooling, scales=self.scales, init=self.init,  # type: ignore[arg-type]
                           preserve_color=preserve_color, style_scale=style_scale, seed=seed,  # type: ignore[arg-type]
                           style_loss=self.style_loss or "gram", map_weight=self.map_weight,
                           mask_weight=self.mask_weight)

    def stage_kwargs(self) -> dict[str, Any]:
        """The video settings of :class:`~vidstyle.stylize.optim.OptimStage`."""
        return {"temporal_weight": self.temporal_weight, "long_term": self.long_term,
                "warm_iterations": self.warm_iterations, "tolerance": self.tolerance, "size": self.size,
                "passes": self.passes, "pass_iterations": self.pass_iterations, "blend": self.blend,
                "fill": self.fill}
