"""Style models: file format, the shipped-model registry, loading and saving.

A model file is **safetensors** (never pickle) holding the network's state dict and metadata:
``vidstyle.format`` = ``1``, ``vidstyle.architecture`` (``transformer``, ``multistyle`` or ``engstrom2016``;
a multi-style model also has ``vidstyle.styles``, its style names as JSON),
``vidstyle.config`` (the :class:`~vidstyle.nets.transformer.NetConfig` as JSON), ``vidstyle.name``,
``vidstyle.style`` and ``vidstyle.card`` (the model card as JSON). Files without vidstyle metadata are
accepted when their keys are exactly those of a known architecture (e.g. Engstrom's networks), and
loaded strictly.

Shipped models live in the repository's ``models/`` folder (``NAME.safetensors`` + ``NAME.md``), or in
``$VIDSTYLE_MODELS``; :data:`ShippedWeights` also lists each with its download URL and SHA-256 for
installs without the folder (downloaded into the torch hub cache only when that model is loaded).
"""

from __future__ import annotations

import enum
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from vidstyle.errors import InputNotFoundError, ModelError, WeightsUnavailableError
from vidstyle.io.hashing import file_sha256
from vidstyle.nets.engstrom import Engstrom2016Net
from vidstyle.nets.transformer import NetConfig, TransformerNet
from vidstyle.io.files import publish

__all__ = [
    "parameter_count",
    "architecture_of",
    "StyleModel",
    "ModelInfo",
    "ShippedWeights",
    "ShippedArbitraryWeights",
    "shipped_entry",
    "shipped_arbitrary_file",
    "list_models",
    "load_model",
    "save_model",
    "build_net",
    "models_dirs",
    "STUDENT_STYLE",
    "STUDENT_MULTISTYLE",
    "DEFAULT_MODEL",
    "RETIRED",
    "retired_error",
    "file_sha256",
]

DEFAULT_MODEL = "starry_student"
FORMAT_VERSION = "1"
_RELEASE_URL = "https://github.com/vidstyle/vidstyle/releases/download/models-v1"


class ShippedWeights(enum.Enum):
    """Models trained by this project (torchvision-style weights entries: url, sha256, meta).

    ``sha256`` is that of the file in ``models/`` (a test keeps them equal); a download is checked
    against it before it is used. ``meta["note"]``, where present, is what ``vidstyle models`` says of the model
    before its description. ``stabilize`` is the model's own default stabilisation strength in the file
    pipeline (the ``resample`` stabiliser for the student models, ``blend`` for TransformerNets;
    :func:`vidstyle.options.backend_temporal_defaults`), the strength at which
    it meets the temporal benchmark's targets on the shared clips (warping error ≤ 0.3×, style loss ≤ 1.1× its
    per-frame output's; BENCHMARKS.md, "Temporal stabilisation"): a strongly textured model (``starry_student``)
    loses its fine strokes to the stabiliser sooner and gets less.
    """

    # one-style networks fine-tuned from the fast student (`vidstyle train --size student`, seventh session); their
    # strength is that of the resample stabiliser, their file-pipeline default (options.STUDENT_TEMPORAL)
    # the default model (seventh session; retrained with the lattice loss in the thirteenth): it meets the default-model
    # quality target; resample at 0.75 keeps its warping error <= 0.3x on the three clips (style 1.12-1.22x its
    # per-frame output's; BENCHMARKS.md)
    STARRY_STUDENT = (
        "starry_student",
        f"{_RELEASE_URL}/starry_student.safetensors",
        "529f51862dbedb6fb6dbaab5ddb860a4fe0480c303e609cff85c06cb6cf9dd35",
        {"architecture": "student-style", "size": "student", "style": "vangogh_starry_night"},
        0.75,
    )
    SCREAM_STUDENT = (
        "scream_student",
        f"{_RELEASE_URL}/scream_student.safetensors",
        "853e1e16ada4e4d6da3224c410780f0651a123e51bd61a6e3679af2326f9d4eb",
        {"architecture": "student-style", "size": "student", "style": "munch_the_scream"},
        0.9,
    )
    TURNER_STUDENT = (
        "turner_student",
        f"{_RELEASE_URL}/turner_student.safetensors",
        "4e77c0970c5ef57d5cf2438522431b4b758ef52babb15861b88138a9be180c59",
        {"architecture": "student-style", "size": "student", "style": "turner_shipwreck_of_the_minotaur"},
        0.9,
    )
    GAUGUIN_STUDENT = (
        "gauguin_student",
        f"{_RELEASE_URL}/gauguin_student.safetensors",
        "243759e09b2fa1825df94d1765fe88eb020d5070d4ccf603995257d7954a7005",
        {"architecture": "student-style", "size": "student", "style": "gauguin_te_fare"},
        0.9,
    )
    MONET_STUDENT = (
        "monet_student",
        f"{_RELEASE_URL}/monet_student.safetensors",
        "3e687818e189fa0069a6abe0fd077b0caf14068e57f6f7151b3477ab4dfb4915",
        {"architecture": "student-style", "size": "student", "style": "monet_charing_cross_bridge"},
        0.9,
    )
    BEDROOM_STUDENT = (
        "bedroom_student",
        f"{_RELEASE_URL}/bedroom_student.safetensors",
        "4be2596c08961f5bded5d4f57cdcf880b4104cc21fc46075c5e9fcbde70727d4",
        {"architecture": "student-style", "size": "student", "style": "vangogh_bedroom_in_arles"},
        0.9,
    )

    WAVE_STUDENT = (
        "wave_student",
        f"{_RELEASE_URL}/wave_student.safetensors",
        "e254a4c5774681a1967a19691d5e74636a5faa3444b56ec1da55b81a5eddd414",
        {"architecture": "student-style", "size": "student", "style": "hokusai_great_wave"},
        0.9,
    )
    KANDINSKY_STUDENT = (
        "kandinsky_student",
        f"{_RELEASE_URL}/kandinsky_student.safetensors",
        "15d2a51c860b2e45f765ff10c16a0db0149a7961aa10035e3685d17d51726f3d",
        {"architecture": "student-style", "size": "student", "style": "kandinsky_composition_vii"},
        0.9,
    )

    # the multi-style student (eighth session; retrained with a head per painting in the tenth, with the Great Wave and
    # Composition VII twice per cycle in the eleventh, three times and The Scream twice in the twelfth; with the lattice
    # loss, but for those two, in the fourteenth; those two rows trained further with --tune-style in the fifteenth):
    # twelve paintings in one network (eleven trained together, the twelfth, Degas, added with --add-style); the
    # student models' resample default
    PAINTINGS_STUDENT = (
        "paintings_student",
        f"{_RELEASE_URL}/paintings_student.safetensors",
        "bb30247af16813df67fb5fe8217bbeef2bc1c72b289df4e835ba2e59f6ef0808",
        {"architecture": "student-multistyle", "size": "student",
         "style": "starry,wave,scream,turner,gauguin,monet,bedroom,kandinsky,monet_dusk,lautrec,rhone,degas"},
        0.9,
        # Starry Night's fine strokes lose 29-57 % of their style to resample at 0.9 (style loss 1.29-1.57x its per-frame
        # output's); at 0.75, the one-style starry_student's strength, 20-44 % (1.20-1.44x) with warping error still
        # <= 0.3x (0.22-0.27x) on the three clips (BENCHMARKS.md, "The multi-style student")
        {"starry": 0.75},
    )

    def __init__(self, model_name: str, url: str, sha256: str, meta: dict[str, str], stabilize: float,
                 style_stabilize: dict[str, float] | None = None) -> None:
        self.model_name = model_name
        self.url = url
        self.sha256 = sha256
        self.meta = meta
        self.stabilize = stabilize
        #: a multi-style model's own strength for some of its styles (the others: ``stabilize``)
        self.style_stabilize = dict(style_stabilize or {})

    def stabilize_for(self, mix: Sequence[tuple[str, Any]] | None) -> Any:
        """The default strength for a style mix (:func:`vidstyle.options.parse_style_mix`'s ``(name, Curve)`` pairs;
        ``None``: the model's first style): each style's own strength, weighted by its normalised weight at each
        key frame of the mix (a :class:`~vidstyle.options.curve.Curve`, constant unless the mix is keyframed)."""
        from vidstyle.options.curve import Curve

        def own(name: str) -> float:
            return self.style_stabilize.get(name, self.stabilize)

        if not mix:
            first = self.meta.get("style", "").split(",")[0]
            return Curve.constant(own(first))
        frames = sorted({f for _, curve in mix for f, _ in curve.keys})
        keys = []
        for f in frames:
            weights = [(own(name), curve.at(f)) for name, curve in mix]
            total = sum(w for _, w in weights)
            keys.append((f, sum(s * w for s, w in weights) / total if total > 0 else self.stabilize))
        if len({round(v, 12) for _, v in keys}) == 1:
            return Curve.constant(keys[0][1])
        return Curve(keys=tuple(keys))


#: models shipped before and retired because they miss the zoo's quality target (style ratio <= 0.25, texture <= 0.4
#: on held-out photos): name -> (what they measured, the model to use). Their files and cards are kept for comparison
#: in the source tree's benchmarks/baselines/; a file of that name found in a models folder still loads
RETIRED: dict[str, tuple[str, str]] = {
    "starry_tiny": ("held-out style ratio 0.35, texture 0.71", "starry_student"),
    "wave_small": ("held-out style ratio 1.03: a tint", "wave_student"),
}


def retired_error(name: str) -> ModelError:
    """The one line for a :data:`RETIRED` model's name: what it measured and the model to use instead."""
    why, instead = RETIRED[name]
    return ModelError(f"model {name!r} was retired: it missed the quality target ({why}); use {instead} "
                      f"(its file is kept for comparison in vidstyle's source, benchmarks/baselines/)")


class ShippedArbitraryWeights(enum.Enum):
    """The arbitrary-style back end's files trained by this project (url and sha256, like :class:`ShippedWeights`):
    the VGG variant's decoder and the fast variant's student. They are no style networks (any painting is given at
    run time), so they are not among the ``--model`` names; :func:`shipped_arbitrary_file` downloads them."""

    DECODER_RELU31 = ("decoder_relu31", f"{_RELEASE_URL}/decoder_relu31.safetensors",
                      "d3620aa0163aea480c0c5f8dbb12bf4674bbb85f83c608829096134fa7868728")
    STUDENT_RELU31 = ("student_relu31", f"{_RELEASE_URL}/student_relu31.safetensors",
                      "817617c7f665cd72bc259a2cb7ff8740f58225d3694c598da61d3ee86ca3df87")

    def __init__(self, model_name: str, url: str, sha256: str) -> None:
        self.model_name = model_name
        self.url = url
        self.sha256 = sha256


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``vidstyle models`` lists about a model file."""

    name: str
    path: Path
    card_path: Path | None
    architecture: str
    style: str
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


class StyleModel(nn.Module):
    """A style network with its metadata. ``forward``: RGB [0, 1] N×3×H×W → same size, [0, 1]."""

    def __init__(self, *, net: nn.Module, name: str, architecture: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.architecture = architecture
        self.metadata = dict(metadata or {})

    @property
    def styles(self) -> list[str]:
        """The style names of a multi-style model (slot 0 is the identity); ``[]`` for one-style models."""
        return list(getattr(self.net, "styles", []))

    def forward(self, x: torch.Tensor, mix: torch.Tensor | None = None,
                strength: torch.Tensor | None = None) -> torch.Tensor:
        """``mix``: the style weights of a multi-style model (``N×S``; see :mod:`vidstyle.nets.multistyle`);
        ``strength``: per-image style strength of a network that applies it itself (``feature_strength``)."""
        if strength is not None:
            return self.net(x, strength=strength).clamp(0.0, 1.0)
        if mix is not None or self.styles:
            return self.net(x, mix).clamp(0.0, 1.0)
        return self.net(x).clamp(0.0, 1.0)


#: the architecture name of a one-style network fine-tuned from the fast arbitrary-style student
#: (:class:`vidstyle.nets.student_style.StudentStyleNet`)
STUDENT_STYLE = "student-style"


#: the architecture name of the multi-style student (:class:`vidstyle.nets.student_multistyle.StudentMultiStyleNet`)
STUDENT_MULTISTYLE = "student-multistyle"


def build_net(architecture: str, config: Any = None, *, styles: list[str] | None = None) -> nn.Module:
    """A fresh (randomly initialised) network of the given architecture."""
    if architecture == "multistyle":
        from vidstyle.nets.multistyle import MultiStyleNet

        return MultiStyleNet(config=config or "tiny", styles=styles or [])
    if architecture == "engstrom2016":
        return Engstrom2016Net()
    if architecture == "transformer":
        return TransformerNet(config=config or "tiny")
    if architecture == STUDENT_STYLE:
        from vidstyle.nets.student import StudentConfig
        from vidstyle.nets.student_style import StudentStyleNet

        if config is not None and not isinstance(config, StudentConfig):
            raise ModelError(f"a {STUDENT_STYLE} network takes a student architecture, got {config!r}")
        return StudentStyleNet(config=config)
    if architecture == STUDENT_MULTISTYLE:
        from vidstyle.nets.student import StudentConfig
        from vidstyle.nets.student_multistyle import StudentMultiStyleNet

        if config is not None and not isinstance(config, StudentConfig):
            raise ModelError(f"a {STUDENT_MULTISTYLE} network takes a student architecture, got {config!r}")
        return StudentMultiStyleNet(config=config, styles=styles or [])
    raise ModelError(f"unknown architecture {architecture!r}; known: transformer, multistyle, engstrom2016, "
                     f"{STUDENT_STYLE}, {STUDENT_MULTISTYLE}")


def models_dirs() -> list[Path]:
    """Folders searched for shipped models, in order."""
    dirs = []
    env = os.environ.get("VIDSTYLE_MODELS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "models")  # source checkout / editable install
    dirs.append(Path.cwd() / "models")  # running from a checkout with a non-editable install
    dirs.append(Path(torch.hub.get_dir()) / "vidstyle")  # downloaded shipped models
    return dirs


def _looks_like_path(text: str) -> bool:
    """A model spec that names a file (a separator or a weights extension), not a shipped model's name."""
    return os.sep in text or text.endswith((".safetensors", ".pt", ".pth", ".ckpt", ".bin"))


def _local_file(text: str) -> Path | None:
    """The model file a spec names here, found as :func:`load_model` finds it (a path, or a name in
    :func:`models_dirs`); ``None`` when it is not here (nothing is downloaded)."""
    path = Path(text)
    if path.is_file():
        return path
    return None if _looks_like_path(text) else _find_named(text)


def _read_header(name_or_path: str | os.PathLike[str], read: Any) -> Any:
    """``read(f)`` on the safetensors header of a model file found locally as :func:`load_model` finds it (``f``: an
    open ``safe_open``; no tensor is loaded, nothing downloaded); ``None`` when the file is not here or is not a
    readable safetensors file (a pickle is never unpickled: :func:`load_model` refuses it later, with its message)."""
    from safetensors import safe_open

    path = _local_file(str(name_or_path))
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if f.read(9)[8:9] != b"{":
                return None
        with safe_open(str(path), framework="pt") as f:
            return read(f)
    except Exception:  # noqa: BLE001 - any unreadable file: the loader reports it with its own message
        return None


def parameter_count(name_or_path: str | os.PathLike[str]) -> int | None:
    """The number of weights in a model file (a path, or a model name found locally as :func:`load_model` finds
    it), read from the safetensors header alone: no tensor is loaded and nothing is downloaded. ``None`` when the
    file is not found locally or is not a readable safetensors file (:func:`load_model` says why, later)."""
    return _read_header(name_or_path, lambda f: int(sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())))


def architecture_of(name_or_path: str | os.PathLike[str]) -> str | None:
    """The ``vidstyle.architecture`` a model file declares (a path, or a model name found locally as
    :func:`load_model` finds it), read from the safetensors header alone; ``None`` when the file is not here, not
    readable, or declares none. Nothing is loaded or downloaded."""
    return _read_header(name_or_path, lambda f: (f.metadata() or {}).get("vidstyle.architecture"))


def card_of(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model card a model file carries (a path, or a model name found locally as :func:`load_model` finds it),
    read from the safetensors header alone; ``{}`` when the file is not here, not readable or has no card."""
    card = _read_header(name_or_path, lambda f: _card_of(dict(f.metadata() or {})))
    return card or {}


#: files larger than this are not hashed by :func:`shipped_entry` (the shipped models are ~0.2 MB)
_MAX_SHIPPED_BYTES = 16 * 2**20


def shipped_entry(name_or_path: str | os.PathLike[str]) -> ShippedWeights | None:
    """The :class:`ShippedWeights` entry a model name or file is, or ``None``: a file found locally (a path, or a
    name found as :func:`load_model` finds it) is that entry when its bytes' SHA-256 is the entry's (a retrained
    file under a shipped name is not); a shipped name not found locally is its entry (:func:`load_model` downloads
    it and checks that hash). Nothing is loaded or downloaded."""
    text = str(name_or_path)
    path = _local_file(text)
    if path is None:
        return next((e for e in ShippedWeights if e.model_name == text), None)
    try:
        if path.stat().st_size > _MAX_SHIPPED_BYTES:
            return None
        digest = file_sha256(path)
    except OSError:  # unreadable: the loader says why, later
        return None
    return next((e for e in ShippedWeights if e.sha256 == digest), None)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    with open(path, "rb") as f:
        head = f.read(16)
    # safetensors: an 8-byte little-endian header length, then the JSON header ('{'); its first byte can be
    # anything, 0x80 included, so only a file that is not that is checked for pickle (0x80) or zip (PK)
    is_safetensors = head[8:9] == b"{"
    if not is_safetensors and (head[:1] == b"\x80" or head[:2] == b"PK"):
        raise ModelError(
            f"{path} is a pickle/zip torch file, which can run code when loaded; vidstyle loads only "
            "safetensors model files: convert it or use a model trained with 'vidstyle train'"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path} is not a valid safetensors model file ({exc}); use a model from 'vidstyle models' or 'vidstyle train'") from exc
    return sd, meta


def _card_of(meta: dict[str, str]) -> dict[str, Any]:
    """The model card stored in a file's metadata; ``{}`` when absent or not a JSON object."""
    try:
        card = json.loads(meta.get("vidstyle.card", "{}") or "{}")
    except ValueError:
        return {}
    return card if isinstance(card, dict) else {}


def _detect_architecture(sd: dict[str, torch.Tensor], path: Path) -> str:
    engstrom_keys = set(Engstrom2016Net().state_dict())
    if set(sd) == engstrom_keys:
        return "engstrom2016"
    raise ModelError(
        f"{path} does not hold a vidstyle model (no vidstyle metadata, and its {len(sd)} tensors match no "
        "known architecture); use a model from 'vidstyle models' or one made by 'vidstyle train'"
    )


def _find_named(name: str) -> Path | None:
    for d in models_dirs():
        p = d / f"{name}.safetensors"
        if p.is_file():
            return p
    return None


def _download_shipped(name: str) -> Path:
    for entry in ShippedWeights:
        if entry.model_name == name:
            return _download(entry)
    raise KeyError(name)


def _download(entry: "ShippedWeights | ShippedArbitraryWeights") -> Path:
    """Download a shipped file into the torch hub folder, kept only when its sha256 matches."""
    name = entry.model_name
    target = Path(torch.hub.get_dir()) / "vidstyle" / f"{name}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # writes to a temporary file and moves it into place only when its sha256 matches
        torch.hub.download_url_to_file(entry.url, str(target), hash_prefix=entry.sha256, progress=False)
    except Exception as exc:
        if isinstance(exc, RuntimeError) and "hash" in str(exc).lower():
            raise ModelError(
                f"the downloaded {name} does not match its sha256 {entry.sha256[:12]}…; it was not kept: "
                f"try again, or put a verified {name}.safetensors in $VIDSTYLE_MODELS"
            ) from exc
        raise WeightsUnavailableError(
            f"model {name} is not installed and could not be downloaded from {entry.url} "
            f"({type(exc).__name__}); connect to the internet or put {name}.safetensors in "
            "$VIDSTYLE_MODELS"
        ) from exc
    return target


def shipped_arbitrary_file(name: str) -> Path | None:
    """Download a shipped decoder or student (:class:`ShippedArbitraryWeights`) by name, hash-checked, into the torch
    hub folder; ``None`` for any other name. For a name not found in :func:`models_dirs`: called by the builder
    (:func:`vidstyle.stylize.arbitrary.find_decoder`) after its own search, never at import."""
    entry = next((e for e in ShippedArbitraryWeights if e.model_name == name), None)
    return None if entry is None else _download(entry)


def list_models() -> list[ModelInfo]:
    """Models found in :func:`models_dirs` (first occurrence of each name wins)."""
    seen: dict[str, ModelInfo] = {}
    for d in models_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.safetensors")):
            if p.stem in seen or p.name.endswith(".ckpt.safetensors"):  # training checkpoints are not models
                continue
            try:
                from safetensors import safe_open

                with safe_open(str(p), framework="pt") as f:
                    meta = dict(f.metadata() or {})
            except Exception:
                continue
            if "vidstyle.architecture" not in meta:  # not a vidstyle file (it still loads with --model PATH)
                continue
            card = p.with_suffix(".md")
            card_json = _card_of(meta)
            seen[p.stem] = ModelInfo(
                name=p.stem,
                path=p,
                card_path=card if card.is_file() else None,
                architecture=meta.get("vidstyle.architecture", "?"),
                # the arbitrary back end's decoder and student take any painting (--style) at run time
                style=meta.get("vidstyle.style", "any (--style)" if meta.get("vidstyle.architecture") in
                               ("decoder", "student") else "?"),
                description=card_json.get("description", ""),
                metadata=card_json,
            )
    return list(seen.values())


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device | None = None) -> StyleModel:
    """Load a shipped model by name, or a model file by path, strictly and without pickle.

    Raises:
        ModelError: unknown name, not a safetensors file, wrong architecture or mismatching tensors.
        InputNotFoundError: a path that does not exist.
    """
    text = str(name_or_path)
    if _looks_like_path(text) or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise InputNotFoundError(f"model file {path} not found; check the path or pick a name from 'vidstyle models'")
    else:
        found = _find_named(text)
        if found is None:
            if text in {e.model_name for e in ShippedWeights}:
                found = _download_shipped(text)
            elif text in RETIRED:
                raise retired_error(text)
            else:
                names = sorted({m.name for m in list_models()} | {e.model_name for e in ShippedWeights})
                raise ModelError(f"unknown model {text!r}; choose one of {', '.join(names)} or give a .safetensors path")
        path = found
    sd, meta = _read_safetensors(path)
    arch = meta.get("vidstyle.architecture") or _detect_architecture(sd, path)
    if arch == "decoder":
        raise ModelError(f"{path.name} is a decoder of the arbitrary-style back end, not a style model; use it with "
                         f"--style PAINTING --decoder {path.stem}")
    if arch == "student":
        raise ModelError(f"{path.name} is the fast arbitrary-style variant (a student), not a style model; use it "
                         f"with --style PAINTING --fast --decoder {path.stem}")
    config = None
    styles: list[str] | None = None
    if arch in ("multistyle", STUDENT_MULTISTYLE):
        try:
            styles = [str(x) for x in json.loads(meta["vidstyle.styles"])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: a multi-style model without its style names ({exc}); re-export it") from exc
    if arch in (STUDENT_STYLE, STUDENT_MULTISTYLE):
        from vidstyle.nets.student import StudentConfig

        try:
            config = StudentConfig.from_json(meta["vidstyle.config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: missing or bad student architecture in its metadata ({exc}); re-export it "
                             "with 'vidstyle train --size student'") from exc
    if arch in ("transformer", "multistyle"):
        try:
            data = json.loads(meta["vidstyle.config"])
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            config = NetConfig.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError and InvalidOptionError are ValueErrors
            raise ModelError(
                f"{path}: missing or bad network config in its metadata ({exc}); re-export it with 'vidstyle train'"
            ) from exc
    net = build_net(arch, config, styles=styles)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"{path}: tensors do not fit the {arch} architecture ({first}); the file is of another model") from exc
    net.eval()
    model = StyleModel(
        net=net,
        name=meta.get("vidstyle.name", path.stem),
        architecture=arch,
        metadata={"path": str(path), "style": meta.get("vidstyle.style", meta.get("style", "?")), **_card_of(meta)},
    )
    if device is not None:
        model = model.to(device)
    return model.eval()


def save_model(
    path: str | os.PathLike,
    *,
    net: nn.Module,
    name: str,
    style: str,
    card: dict[str, Any] | None = None,
) -> Path:
    """Write a model file (safetensors + vidstyle metadata) atomically."""
    from safetensors.torch import save_file

    from vidstyle.nets.multistyle import MultiStyleNet
    from vidstyle.nets.student_multistyle import StudentMultiStyleNet
    from vidstyle.nets.student_style import StudentStyleNet

    if isinstance(net, StyleModel):
        net = net.net
    extra: dict[str, str] = {}
    if isinstance(net, MultiStyleNet):
        arch, config = "multistyle", net.config.to_json()
        extra["vidstyle.styles"] = json.dumps(net.styles)
    elif isinstance(net, TransformerNet):
        arch, config = "transformer", net.config.to_json()
    elif isinstance(net, Engstrom2016Net):
        arch, config = "engstrom2016", "{}"
    elif isinstance(net, StudentStyleNet):
        arch, config = STUDENT_STYLE, net.config.to_json()
    elif isinstance(net, StudentMultiStyleNet):
        arch, config = STUDENT_MULTISTYLE, net.config.to_json()
        extra["vidstyle.styles"] = json.dumps(net.styles)
    else:
        raise ModelError(f"cannot save a {type(net).__name__}; expected TransformerNet, MultiStyleNet, Engstrom2016Net "
                         "StudentStyleNet or StudentMultiStyleNet")
    meta = {
        "vidstyle.format": FORMAT_VERSION,
        "vidstyle.architecture": arch,
        "vidstyle.config": config,
        "vidstyle.name": name,
        "vidstyle.style": style,
        "vidstyle.card": json.dumps(card or {}, sort_keys=True),
        **extra,
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    sd = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(sd, str(tmp), metadata=meta)
    publish(tmp, path)
    return path
