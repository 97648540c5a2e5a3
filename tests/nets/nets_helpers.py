"""Helpers of the network tests: device list, ../shared location, fake VGG19 weights."""

from __future__ import annotations

from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
WEIGHTS = SHARED / "weights"
CONTENT = SHARED / "data" / "content"

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# torchvision vgg19().features index and (out, in) channels of the convs conv1_1 … conv3_4
VGG_PREFIX = [(0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256), (14, 256, 256), (16, 256, 256)]


def fake_vgg_state_dict(*, n_convs: int = 8, seed: int = 0, prefix: str = "features.") -> dict[str, torch.Tensor]:
    """Random (He-initialised) VGG19 conv weights of the first ``n_convs`` layers, torchvision keys."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for index, cout, cin in VGG_PREFIX[:n_convs]:
        sd[f"{prefix}{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5
        sd[f"{prefix}{index}.bias"] = torch.randn(cout, generator=g) * 0.01
    return sd


def write_fake_vgg(path: Path, *, n_convs: int = 8, metadata: dict[str, str] | None = None, seed: int = 0) -> Path:
    from safetensors.torch import save_file

    save_file(fake_vgg_state_dict(n_convs=n_convs, seed=seed), str(path), metadata=metadata)
    return path


def write_vgg_and_decoder(folder: Path) -> tuple[Path, Path]:
    """A fake Caffe-convention VGG19 file and a random relu3_1 decoder trained "on" it (its fingerprint
    recorded), in ``folder``: what the arbitrary back end needs, seeded."""
    import torch

    from vidstyle.nets.decoder import Decoder, save_decoder, vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state

    vgg = write_fake_vgg(folder / "vgg.safetensors", metadata={"convention": "caffe"})
    torch.manual_seed(0)
    dec = save_decoder(folder / "dec.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source=str(vgg),
                       convention="caffe", fingerprint=vgg_fingerprint(load_vgg_state(weights=vgg)))
    return vgg, dec
