"""engstrom2016: TensorFlow "SAME" padding, transposed convs, strict loading, and the five real networks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nets_helpers import DEVICES

from vidstyle.errors import ModelError
from vidstyle.nets.engstrom import Engstrom2016Net, _Deconv, same_pad
from vidstyle.nets.registry import load_model

STYLES = ["la_muse", "udnie", "wave", "rain_princess", "scream"]


def _tf_same_total(n: int, k: int, s: int) -> int:
    """TensorFlow's documented SAME padding (nn.convolution docs: pad_along_height)."""
    return max(k - s, 0) if n % s == 0 else max(k - (n % s), 0)


@pytest.mark.parametrize("k", [1, 3, 9])
@pytest.mark.parametrize("s", [1, 2])
def test_same_pad_matches_tensorflow(k: int, s: int) -> None:
    for n_h in range(1, 12):
        for n_w in (1, 2, 7, 10):
            x = torch.ones(1, 1, n_h, n_w)
            p = same_pad(x, k, s)
            th, tw = _tf_same_total(n_h, k, s), _tf_same_total(n_w, k, s)
            assert p.shape[-2:] == (n_h + th, n_w + tw)
            # the extra pixel goes bottom/right: top = total // 2
            top, left = th // 2, tw // 2
            torch.testing.assert_close(p[..., top : top + n_h, left : left + n_w], x)
            assert p.sum() == x.sum()  # zero padding
            out = F.conv2d(p, torch.ones(1, 1, k, k), stride=s)
            assert out.shape[-2:] == (math.ceil(n_h / s), math.ceil(n_w / s))


def test_deconv_is_the_adjoint_of_the_same_strided_conv() -> None:
    """TF conv2d_transpose(SAME) is by definition the transpose of conv2d(SAME, stride 2) on 2H×2W."""
    torch.manual_seed(0)
    for h, w in [(3, 5), (4, 4), (1, 2)]:
        deconv = _Deconv(4, 3).double()
        x = torch.randn(2, 4, h, w, dtype=torch.float64)
        z = torch.randn(2, 3, 2 * h, 2 * w, dtype=torch.float64)
        y = deconv(x)
        assert y.shape == z.shape
        conv_z = F.conv2d(same_pad(z, 3, 2), deconv.weight, stride=2)  # 2H×2W → H×W
        assert conv_z.shape == x.shape
        torch.testing.assert_close((y * z).sum(), (x * conv_z).sum())


@pytest.mark.parametrize("device", DEVICES)
def test_random_net_any_size_in_unit_range(device: str) -> None:
    torch.manual_seed(0)
    net = Engstrom2016Net().to(device).eval()
    with torch.no_grad():
        for h, w in [(1, 1), (3, 4), (4, 4), (17, 9), (37, 51)]:
            y = net(torch.rand(1, 3, h, w, device=device))
            assert y.shape == (1, 3, h, w) and y.min() >= 0 and y.max() <= 1


def test_state_dict_has_the_documented_48_tensors() -> None:
    sd = Engstrom2016Net().state_dict()
    assert len(sd) == 48
    assert sd["deconv1.weight"].shape == (128, 64, 3, 3)  # [in, out, kh, kw]
    assert sd["conv1.weight"].shape == (32, 3, 9, 9)
    assert not any(k.startswith("conv") and k.endswith(".bias") for k in sd)  # convs have no bias
    for name in ("norm_out", "denorm1", "denorm2", "res5.norm2"):
        assert f"{name}.weight" in sd and f"{name}.bias" in sd


# ---- strict loading (no ../shared needed) -----------------------------------------------------------


def _save(path: Path, sd: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)
    return path


def test_file_without_metadata_is_detected_and_loaded_exactly(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = Engstrom2016Net().eval()
    path = _save(tmp_path / "eng.safetensors", net.state_dict(), {"style": "noise"})
    model = load_model(path)
    assert model.architecture == "engstrom2016" and model.metadata["style"] == "noise"
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)


@pytest.mark.parametrize("metadata", [None, {"vidstyle.architecture": "engstrom2016"}])
def test_missing_or_extra_tensor_is_a_model_error(tmp_path: Path, metadata: dict | None) -> None:
    sd = Engstrom2016Net().state_dict()
    missing = {k: v for k, v in sd.items() if k != "res3.norm1.bias"}
    with pytest.raises(ModelError):
        load_model(_save(tmp_path / "missing.safetensors", missing, metadata))
    extra = {**sd, "conv_out.bias": torch.zeros(3)}
    with pytest.raises(ModelError):
        load_model(_save(tmp_path / "extra.safetensors", extra, metadata))
    wrong = {**sd, "conv1.weight": torch.zeros(32, 3, 7, 7)}
    with pytest.raises(ModelError):
        load_model(_save(tmp_path / "wrong.safetensors", wrong, metadata))


# ---- the five real networks (../shared/weights) -----------------------------------------------------


def _reference_forward(sd: dict[str, torch.Tensor], x255: torch.Tensor) -> torch.Tensor:
    """Written from shared/weights/README.md alone; returns the *unclamped* tanh·150+127.5 output."""

    def pad(t: torch.Tensor, k: int, s: int) -> torch.Tensor:
        h, w = t.shape[-2:]
        th, tw = _tf_same_total(h, k, s), _tf_same_total(w, k, s)
        return F.pad(t, (tw // 2, tw - tw // 2, th // 2, th - th // 2))

    def conv(t: torch.Tensor, name: str, s: int) -> torch.Tensor:
        wgt = sd[f"{name}.weight"]
        return F.conv2d(pad(t, wgt.shape[-1], s), wgt, stride=s)

    def norm(t: torch.Tensor, name: str) -> torch.Tensor:
        mean = t.mean(dim=(2, 3), keepdim=True)
        var = t.var(dim=(2, 3), keepdim=True, unbiased=False)
        scale, shift = sd[f"{name}.weight"].view(1, -1, 1, 1), sd[f"{name}.bias"].view(1, -1, 1, 1)
        return (t - mean) / torch.sqrt(var + 1e-3) * scale + shift

    def deconv(t: torch.Tensor, name: str) -> torch.Tensor:
        h, w = t.shape[-2:]
        return F.conv_transpose2d(t, sd[f"{name}.weight"], stride=2)[..., : 2 * h, : 2 * w]

    y = F.relu(norm(conv(x255, "conv1", 1), "norm1"))
    y = F.relu(norm(conv(y, "conv2", 2), "norm2"))
    y = F.relu(norm(conv(y, "conv3", 2), "norm3"))
    for i in range(1, 6):
        r = F.relu(norm(conv(y, f"res{i}.conv1", 1), f"res{i}.norm1"))
        y = y + norm(conv(r, f"res{i}.conv2", 1), f"res{i}.norm2")
    y = F.relu(norm(deconv(y, "deconv1"), "denorm1"))
    y = F.relu(norm(deconv(y, "deconv2"), "denorm2"))
    return torch.tanh(norm(conv(y, "conv_out", 1), "norm_out")) * 150.0 + 127.5


def _photo(path: Path, h: int, w: int) -> torch.Tensor:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.shared
def test_real_networks_load_strictly_and_stylize(shared_weights: Path, content_photo: Path) -> None:
    from safetensors.torch import load_file

    x = _photo(content_photo, 75, 101)  # odd size
    outputs = {}
    for style in STYLES:
        path = shared_weights / f"engstrom2016_{style}.safetensors"
        model = load_model(path)
        assert model.architecture == "engstrom2016" and model.metadata["style"] == style
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and y.dtype == torch.float32
        assert y.min() >= 0.0 and y.max() <= 1.0
        # stylised: far from the input, and not a flat image
        assert (y - x).abs().mean() > 0.1, style
        assert y.std() > 0.1, style
        # documented behaviour: output = clamp(tanh(·)·150 + 127.5, 0, 255) / 255 of the README's network
        raw = _reference_forward(load_file(str(path)), x * 255.0)
        # odd sizes: the transposed convs give 2·ceil(ceil(n/2)/2) ≥ n; the top-left n is kept
        assert raw.shape[-2:] == (76, 104)
        raw = raw[..., :75, :101]
        assert raw.min() >= -22.5 and raw.max() <= 277.5
        torch.testing.assert_close(y, raw.clamp(0, 255) / 255.0, atol=2e-5, rtol=0)
        outputs[style] = y
    # five different styles give five different pictures
    for a in STYLES:
        for b in STYLES:
            if a < b:
                assert (outputs[a] - outputs[b]).abs().mean() > 0.08, (a, b)


@pytest.mark.shared
def test_real_network_with_a_tensor_removed_is_a_model_error(shared_weights: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    sd = load_file(str(shared_weights / "engstrom2016_wave.safetensors"))
    del sd["norm_out.weight"]
    with pytest.raises(ModelError, match="architecture"):
        load_model(_save(tmp_path / "cut.safetensors", sd))
