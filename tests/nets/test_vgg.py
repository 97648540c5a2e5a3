"""VGG19 loss network: local files (safetensors, weights-only torch files), input conventions, layer
validation against the loaded prefix, and the offline torchvision path (never touches the network)."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from nets_helpers import DEVICES, fake_vgg_state_dict, write_fake_vgg

from vidstyle.cli.common import error_line
from vidstyle.errors import (
    InputNotFoundError,
    InvalidOptionError,
    ModelError,
    WeightsUnavailableError,
)
from vidstyle.nets.vgg import VGG19_LAYERS, VGGFeatures, load_vgg_state

CAFFE_MEAN = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def test_layer_names_follow_vgg19() -> None:
    assert VGG19_LAYERS[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert VGG19_LAYERS.count("pool5") == 1 and len([n for n in VGG19_LAYERS if n.startswith("conv")]) == 16


# ---- conventions ------------------------------------------------------------------------------------


def test_convention_from_metadata(fake_vgg_caffe: Path) -> None:
    state = load_vgg_state(weights=fake_vgg_caffe)
    assert state.convention == "caffe" and state.last_conv == "conv3_4" and len(state.convs) == 8
    # the file's own statement wins over the argument
    assert load_vgg_state(weights=fake_vgg_caffe, convention="torchvision").convention == "caffe"


def test_convention_from_an_input_description(tmp_path: Path) -> None:
    meta = {"input": "RGB in [0,255] minus mean (123.68,116.779,103.939), no std division (Caffe convention)"}
    path = write_fake_vgg(tmp_path / "v.safetensors", n_convs=2, metadata=meta)
    assert load_vgg_state(weights=path).convention == "caffe"


def test_convention_from_argument_or_missing(tmp_path: Path) -> None:
    path = write_fake_vgg(tmp_path / "plain.safetensors", n_convs=2)
    assert load_vgg_state(weights=path, convention="torchvision").convention == "torchvision"
    assert load_vgg_state(weights=path, convention="caffe").convention == "caffe"
    with pytest.raises(InvalidOptionError, match="pass `vgg_convention` caffe") as info:
        load_vgg_state(weights=path)
    assert "pass --vgg-convention caffe" in error_line(info.value)
    with pytest.raises(InvalidOptionError, match="caffe"):
        load_vgg_state(weights=path, convention="bgr")  # type: ignore[arg-type]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("convention", ["caffe", "torchvision"])
def test_features_follow_the_convention(tmp_path: Path, convention: str, device: str) -> None:
    path = write_fake_vgg(tmp_path / "v.safetensors", n_convs=4, metadata={"convention": convention})
    sd = fake_vgg_state_dict(n_convs=4)
    vgg = VGGFeatures(layers=["relu1_1", "conv1_2", "pool1", "relu2_2"], state=load_vgg_state(weights=path)).to(device)
    x = torch.rand(2, 3, 12, 10)
    feats = {k: v.cpu() for k, v in vgg(x.to(device)).items()}
    if convention == "caffe":
        h, gain = x * 255.0 - CAFFE_MEAN, 1.0
    else:
        h, gain = (x - IMAGENET_MEAN) / IMAGENET_STD, 255.0 * 0.226  # features brought to the Caffe scale
    c11 = F.relu(F.conv2d(h, sd["features.0.weight"], sd["features.0.bias"], padding=1))
    c12 = F.conv2d(c11, sd["features.2.weight"], sd["features.2.bias"], padding=1)
    p1 = F.avg_pool2d(F.relu(c12), 2)
    c21 = F.relu(F.conv2d(p1, sd["features.5.weight"], sd["features.5.bias"], padding=1))
    r22 = F.relu(F.conv2d(c21, sd["features.7.weight"], sd["features.7.bias"], padding=1))
    tol = {"rtol": 1e-4, "atol": 1e-3 * gain}
    torch.testing.assert_close(feats["relu1_1"], c11 * gain, **tol)
    torch.testing.assert_close(feats["conv1_2"], c12 * gain, **tol)
    torch.testing.assert_close(feats["pool1"], p1 * gain, **tol)
    torch.testing.assert_close(feats["relu2_2"], r22 * gain, **tol)
    assert feats["relu2_2"].shape == (2, 128, 6, 5)


def test_frozen_but_differentiable_wrt_input(fake_vgg_caffe: Path) -> None:
    vgg = VGGFeatures(layers=["relu2_1"], state=load_vgg_state(weights=fake_vgg_caffe), pooling="max")
    assert not any(p.requires_grad for p in vgg.parameters()) and not vgg.training
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    vgg(x)["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_in_place_relus_keep_the_gradient(tmp_path: Path) -> None:
    """The ReLUs run in place on the convs' outputs: the input gradient equals the out-of-place reference's."""
    path = write_fake_vgg(tmp_path / "v.safetensors", n_convs=2, metadata={"convention": "caffe"})
    sd = fake_vgg_state_dict(n_convs=2)
    vgg = VGGFeatures(layers=["relu1_2"], state=load_vgg_state(weights=path))
    x = torch.rand(1, 3, 9, 7, requires_grad=True)
    vgg(x)["relu1_2"].square().sum().backward()
    got, x.grad = x.grad.clone(), None
    h = F.relu(F.conv2d(x * 255.0 - CAFFE_MEAN, sd["features.0.weight"], sd["features.0.bias"], padding=1))
    F.relu(F.conv2d(h, sd["features.2.weight"], sd["features.2.bias"], padding=1)).square().sum().backward()
    torch.testing.assert_close(got, x.grad, rtol=1e-4, atol=1e-4 * float(x.grad.abs().max()))


# ---- layer validation -------------------------------------------------------------------------------


def test_deeper_layer_than_loaded_names_the_available_ones(fake_vgg_caffe: Path) -> None:
    state = load_vgg_state(weights=fake_vgg_caffe)
    with pytest.raises(InvalidOptionError) as info:
        VGGFeatures(layers=["relu2_2", "relu4_1"], state=state)
    msg = str(info.value)
    assert "relu4_1" in msg and "conv3_4" in msg
    for name in ("relu1_1", "relu2_2", "relu3_1", "relu3_4"):
        assert name in msg
    assert "relu4_1, " not in msg.split("choose from")[1]


def test_partial_block_prefix(tmp_path: Path) -> None:
    state = load_vgg_state(weights=write_fake_vgg(tmp_path / "v.safetensors", n_convs=5), convention="caffe")
    assert state.last_conv == "conv3_1"
    VGGFeatures(layers=["relu3_1", "pool2"], state=state)
    for deeper in ("relu3_2", "pool3"):
        with pytest.raises(InvalidOptionError, match="relu3_1"):
            VGGFeatures(layers=[deeper], state=state)


def test_unknown_layer_and_pooling(fake_vgg_caffe: Path) -> None:
    state = load_vgg_state(weights=fake_vgg_caffe)
    with pytest.raises(InvalidOptionError, match="relu9_1"):
        VGGFeatures(layers=["relu9_1"], state=state)
    with pytest.raises(InvalidOptionError, match="at least one"):
        VGGFeatures(layers=[], state=state)
    with pytest.raises(InvalidOptionError, match="pooling"):
        VGGFeatures(layers=["relu1_1"], state=state, pooling="min")  # type: ignore[arg-type]


# ---- bad files --------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="nope.safetensors not found; pass an existing file as `vgg_weights`") as info:
        load_vgg_state(weights=tmp_path / "nope.safetensors")
    assert "pass an existing file as --vgg-weights" in error_line(info.value)


def test_bad_files_are_model_errors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError):
        load_vgg_state(weights=junk, convention="caffe")
    sd = fake_vgg_state_dict(n_convs=3)
    gap = {k: v for k, v in sd.items() if not k.startswith("features.2.")}  # conv1_2 missing
    save_file(gap, str(tmp_path / "gap.safetensors"))
    with pytest.raises(ModelError, match="prefix"):
        load_vgg_state(weights=tmp_path / "gap.safetensors", convention="caffe")
    odd = {**sd, "features.2.weight": torch.zeros(64, 32, 3, 3)}
    save_file(odd, str(tmp_path / "odd.safetensors"))
    with pytest.raises(ModelError, match="conv1_2"):
        load_vgg_state(weights=tmp_path / "odd.safetensors", convention="caffe")
    save_file({"classifier.0.weight": torch.zeros(2, 2)}, str(tmp_path / "cls.safetensors"))
    with pytest.raises(ModelError, match="classifier"):
        load_vgg_state(weights=tmp_path / "cls.safetensors", convention="caffe")


def test_torch_file_loads_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "vgg.pth"
    torch.save(fake_vgg_state_dict(n_convs=2, prefix=""), path)  # plain tensors: fine with weights_only
    state = load_vgg_state(weights=path, convention="torchvision")
    assert list(state.convs) == ["conv1_1", "conv1_2"]


class _Trap:
    """Unpickling this object would create the flag file: proof that code ran."""

    flag: Path | None = None

    def __reduce__(self):
        return (Path.touch, (self.flag,))


def test_pickle_with_code_is_refused_without_running_it(tmp_path: Path) -> None:
    flag = tmp_path / "code_ran"
    trap = _Trap()
    trap.flag = flag
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "trap": trap}, path)
    with pytest.raises(ModelError, match="safetensors"):
        load_vgg_state(weights=path, convention="caffe")
    assert not flag.exists()


# ---- torchvision source, offline ----------------------------------------------------------------------


def _offline(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The torchvision builder fails as it does offline without cached weights (building the real
    143M-parameter VGG19 first would only cost seconds)."""
    import torchvision.models

    calls: list[object] = []

    def no_network(*args, weights=None, **kwargs):
        calls.append(weights)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torchvision.models, "vgg19", no_network)
    return calls


def test_offline_torchvision_is_weights_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _offline(monkeypatch)
    with pytest.raises(WeightsUnavailableError) as info:
        load_vgg_state(weights="torchvision")
    msg = str(info.value)
    assert "`vgg_weights`" in msg and "VIDSTYLE_VGG_WEIGHTS" in msg and "internet" in msg
    assert "--vgg-weights" in error_line(info.value) and "--vgg-weights" not in msg
    assert "\n" not in msg
    from torchvision.models import VGG19_Weights

    assert calls == [VGG19_Weights.IMAGENET1K_V1]


def test_default_source_is_env_then_torchvision(monkeypatch: pytest.MonkeyPatch, fake_vgg_caffe: Path) -> None:
    calls = _offline(monkeypatch)
    monkeypatch.setenv("VIDSTYLE_VGG_WEIGHTS", str(fake_vgg_caffe))
    assert load_vgg_state().source == str(fake_vgg_caffe)
    assert not calls
    monkeypatch.delenv("VIDSTYLE_VGG_WEIGHTS")
    with pytest.raises(WeightsUnavailableError):
        load_vgg_state()
    assert calls


def test_importing_the_module_downloads_nothing() -> None:
    """Checked in a fresh interpreter where any network access fails (reloading the module in this
    process would replace VGGState and break isinstance checks in other tests)."""
    import subprocess
    import sys

    code = (
        "import socket\n"
        "def refuse(*a, **k):\n    raise AssertionError('network access at import')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import vidstyle.nets.vgg, vidstyle.train, vidstyle.nets.registry, vidstyle.flow.estimators\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ---- the real prefix (../shared/weights) --------------------------------------------------------------


@pytest.mark.shared
def test_shared_vgg_prefix(shared_weights: Path, content_photo: Path) -> None:
    import cv2
    import numpy as np

    from vidstyle.losses import gram_matrix

    state = load_vgg_state(weights=shared_weights / "vgg19_imagenet_conv1_1-conv3_4.safetensors")
    assert state.convention == "caffe" and state.last_conv == "conv3_4"
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu3_4"]
    vgg = VGGFeatures(layers=layers, state=state)
    with pytest.raises(InvalidOptionError, match="relu3_4"):
        VGGFeatures(layers=["relu4_1"], state=state)

    def load(p: Path) -> torch.Tensor:
        img = cv2.resize(cv2.imread(str(p))[:, :, ::-1], (96, 64), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0

    a = load(content_photo)
    other = load(sorted(content_photo.parent.glob("*.jpg"))[7])
    with torch.no_grad():
        fa, fm, fo = vgg(a), vgg(a.flip(-1)), vgg(other)
    # Gram matrices see texture, not layout: a mirrored photo is far closer than another photo
    for layer in ("relu2_1", "relu3_1"):
        ga, gm, go = gram_matrix(fa[layer]), gram_matrix(fm[layer]), gram_matrix(fo[layer])
        assert (ga - gm).norm() < 0.5 * (ga - go).norm(), layer


def test_a_style_model_as_vgg_weights_is_named_for_what_it_is(tmp_path) -> None:
    """Checked by keys first: the metadata question (which input convention) would mislead."""
    from vidstyle.cli.common import error_line
    from vidstyle.errors import ModelError
    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet
    from vidstyle.nets.vgg import load_vgg_state

    path = save_model(tmp_path / "style.safetensors", net=TransformerNet(config="tiny"), name="s", style="s")
    with pytest.raises(ModelError, match="is not VGG19 weights") as info:
        load_vgg_state(weights=path)
    assert "--vgg-weights" in error_line(info.value)
