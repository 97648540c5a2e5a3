"""Model files: save/load round trip, model discovery in $VIDSTYLE_MODELS, and every bad-file case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from nets_helpers import DEVICES

from vidstyle.errors import InputNotFoundError, ModelError
from vidstyle.nets.engstrom import Engstrom2016Net
from vidstyle.nets.registry import (
    ShippedWeights,
    StyleModel,
    list_models,
    load_model,
    save_model,
)
from vidstyle.nets.transformer import NetConfig, TransformerNet


def _random_net(config: NetConfig | str = "tiny", seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet(config=config)
    with torch.no_grad():  # move every parameter off its default so a bad load would show
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return net.eval()


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    monkeypatch.setenv("VIDSTYLE_MODELS", str(d))
    return d


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("config", ["tiny", "full", NetConfig(channels=(4, 6, 8), n_res=1, depthwise=True, kernel_in=5, kernel_out=3)])
def test_round_trip_gives_identical_outputs(tmp_path: Path, config: NetConfig | str, device: str) -> None:
    net = _random_net(config)
    card = {"description": "test model", "iterations": 3}
    path = save_model(tmp_path / "m.safetensors", net=net, name="mine", style="noise", card=card)
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    model = load_model(path, device=device)
    assert isinstance(model, StyleModel) and not model.training
    assert model.name == "mine" and model.architecture == "transformer"
    assert model.net.config == net.config
    assert model.metadata["style"] == "noise" and model.metadata["iterations"] == 3
    assert next(model.parameters()).device.type == device
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        torch.testing.assert_close(model(x.to(device)).cpu(), net(x), rtol=0, atol=0 if device == "cpu" else 1e-5)
    # saving a StyleModel saves its net
    again = save_model(tmp_path / "again.safetensors", net=model.to("cpu"), name="again", style="noise")
    assert load_model(again).net.config == net.config


def test_engstrom_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = Engstrom2016Net().eval()
    model = load_model(save_model(tmp_path / "e.safetensors", net=net, name="e", style="s"))
    assert model.architecture == "engstrom2016"
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)


def test_save_refuses_other_modules(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="Conv2d"):
        save_model(tmp_path / "x.safetensors", net=torch.nn.Conv2d(3, 3, 1), name="x", style="y")


def test_list_models_finds_models_in_env_folder(models_dir: Path) -> None:
    save_model(models_dir / "alpha.safetensors", net=_random_net(), name="alpha", style="waves",
               card={"description": "alpha in waves"})
    (models_dir / "alpha.md").write_text("# alpha\n")
    save_model(models_dir / "beta.safetensors", net=_random_net("small"), name="beta", style="stars")
    (models_dir / "broken.safetensors").write_bytes(b"not a model")  # skipped, not fatal
    found = {m.name: m for m in list_models()}
    assert {"alpha", "beta"} <= set(found) and "broken" not in found
    a = found["alpha"]
    assert a.path == models_dir / "alpha.safetensors" and a.card_path == models_dir / "alpha.md"
    assert a.architecture == "transformer" and a.style == "waves" and a.description == "alpha in waves"
    assert found["beta"].card_path is None
    # and by name
    assert load_model("alpha").name == "alpha"


def test_unknown_name_lists_the_known_ones(models_dir: Path) -> None:
    save_model(models_dir / "gamma.safetensors", net=_random_net(), name="gamma", style="s")
    with pytest.raises(ModelError) as info:
        load_model("no_such_style")
    msg = str(info.value)
    assert "no_such_style" in msg and "gamma" in msg
    for entry in ShippedWeights:
        assert entry.model_name in msg


def test_missing_path_is_input_not_found(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(InputNotFoundError):
        load_model(str(tmp_path / "sub" / "model"))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors"])
def test_pickle_file_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    torch.save(_random_net().state_dict(), path)
    with pytest.raises(ModelError, match="safetensors"):
        load_model(path)
    legacy = tmp_path / f"legacy{suffix}"
    torch.save(_random_net().state_dict(), legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelError, match="safetensors"):
        load_model(legacy)


def test_a_safetensors_file_whose_header_length_starts_with_0x80_loads(tmp_path: Path) -> None:
    """The first byte of a safetensors file is the low byte of its header length: 0x80 is as valid as any
    (found by benchmarks/bench_train.py, whose multi-style model was refused as a pickle)."""
    net = _random_net()
    for pad in range(0, 4096):
        path = save_model(tmp_path / "m.safetensors", net=net, name="m" + "x" * pad, style="s.jpg")
        if path.read_bytes()[:1] == b"\x80":
            break
    else:  # pragma: no cover - the header length takes every value mod 256 as the name grows
        pytest.fail("no header length with a 0x80 low byte was produced")
    loaded = load_model(path)
    assert loaded.name.startswith("m") and set(loaded.state_dict()) == {f"net.{k}" for k in net.state_dict()}


def test_garbage_and_empty_files(tmp_path: Path) -> None:
    for name, data in [("empty.safetensors", b""), ("junk.safetensors", b"\x12\x00" * 40)]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelError):
            load_model(tmp_path / name)


def test_wrong_architecture_tensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    # tiny tensors under a 'small' config
    sd = {k: v.contiguous() for k, v in _random_net("tiny").state_dict().items()}
    meta = {"vidstyle.architecture": "transformer", "vidstyle.config": TransformerNet(config="small").config.to_json()}
    save_file(sd, str(tmp_path / "a.safetensors"), metadata=meta)
    with pytest.raises(ModelError, match="transformer"):
        load_model(tmp_path / "a.safetensors")
    # a TransformerNet's tensors without metadata: matches no known architecture
    save_file(sd, str(tmp_path / "b.safetensors"))
    with pytest.raises(ModelError, match="no\\s.*architecture|known architecture"):
        load_model(tmp_path / "b.safetensors")
    # an Engstrom net's tensors declared as a transformer
    eng = {k: v.contiguous() for k, v in Engstrom2016Net().state_dict().items()}
    save_file(eng, str(tmp_path / "c.safetensors"), metadata=meta)
    with pytest.raises(ModelError):
        load_model(tmp_path / "c.safetensors")
    # an unknown architecture name
    save_file(sd, str(tmp_path / "d.safetensors"), metadata={"vidstyle.architecture": "resnet"})
    with pytest.raises(ModelError, match="resnet"):
        load_model(tmp_path / "d.safetensors")


@pytest.mark.parametrize("config", ["", "not json", "[1, 2]", json.dumps({"channels": [8, 24, 48], "wings": 2}),
                                    json.dumps({"channels": [8, 0, 48]})])
def test_bad_config_metadata_is_a_model_error(tmp_path: Path, config: str) -> None:
    from safetensors.torch import save_file

    sd = {k: v.contiguous() for k, v in _random_net("tiny").state_dict().items()}
    meta = {"vidstyle.architecture": "transformer"}
    if config:
        meta["vidstyle.config"] = config
    save_file(sd, str(tmp_path / "m.safetensors"), metadata=meta)
    with pytest.raises(ModelError, match="config"):
        load_model(tmp_path / "m.safetensors")


@pytest.mark.parametrize("card", ["{not json", "[1, 2]", "3"])
def test_bad_card_metadata_does_not_break_listing_or_loading(models_dir: Path, card: str) -> None:
    from safetensors.torch import load_file, save_file

    path = save_model(models_dir / "odd.safetensors", net=_random_net(), name="odd", style="s")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    meta["vidstyle.card"] = card
    save_file(load_file(str(path)), str(path), metadata=meta)
    (info,) = [m for m in list_models() if m.name == "odd"]
    assert info.description == "" and info.metadata == {}
    model = load_model(path)
    assert model.name == "odd" and model.metadata["style"] == "s"


def test_shipped_entries_match_the_files_in_models() -> None:
    """The weights enum's sha256 is the one of the file shipped in models/ (retraining must update it)."""
    from vidstyle.nets.registry import file_sha256

    root = Path(__file__).resolve().parents[2] / "models"
    for entry in ShippedWeights:
        path = root / f"{entry.model_name}.safetensors"
        assert path.is_file(), path
        assert file_sha256(path) == entry.sha256, entry
        assert load_model(path).metadata.get("architecture", {}).get("size") == entry.meta["size"]


def test_download_is_hash_checked(monkeypatch, tmp_path: Path) -> None:
    from vidstyle.errors import WeightsUnavailableError
    from vidstyle.nets import registry

    seen = {}

    def fake_download(url, dst, hash_prefix=None, progress=True):  # noqa: ANN001
        seen.update(url=url, hash_prefix=hash_prefix)
        raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "0000")')

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(ModelError, match="does not match its sha256"):
        registry._download_shipped("scream_student")
    assert seen["hash_prefix"] == ShippedWeights.SCREAM_STUDENT.sha256
    assert not (tmp_path / "vidstyle" / "scream_student.safetensors").exists()

    def offline(url, dst, hash_prefix=None, progress=True):  # noqa: ANN001
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailableError, match="could not be downloaded"):
        registry._download_shipped("scream_student")


def test_models_by_path_and_listing_skips_checkpoints(tmp_path, capsys, monkeypatch) -> None:
    """`vidstyle models PATH` prints the card next to a model file; checkpoints and foreign files are not listed."""
    import torch

    from vidstyle.cli.main import main
    from vidstyle.nets.registry import list_models, save_model
    from vidstyle.nets.transformer import TransformerNet

    folder = tmp_path / "models"
    folder.mkdir()
    save_model(folder / "mine.safetensors", net=TransformerNet(config="tiny"), name="mine", style="x")
    (folder / "mine.md").write_text("# mine\n\nthe card\n")
    (folder / "mine.ckpt.safetensors").write_bytes((folder / "mine.safetensors").read_bytes())
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(folder / "foreign.safetensors"))
    monkeypatch.setenv("VIDSTYLE_MODELS", str(folder))
    names = [m.name for m in list_models()]
    assert "mine" in names and "mine.ckpt" not in names and "foreign" not in names
    assert main(["models", str(folder / "mine.safetensors")]) == 0
    assert "the card" in capsys.readouterr().out


def test_listing_shows_the_arbitrary_back_ends_files_for_any_painting(tmp_path, capsys, monkeypatch) -> None:
    """The decoder and the student take any painting: their STYLE column says so, and the student's GFLOP come from
    its card (nested under ``architecture``), the same figure as ``student_gflop``."""
    from vidstyle.cli.main import main
    from vidstyle.nets.decoder import Decoder, save_decoder
    from vidstyle.nets.student import Student, StudentConfig, save_student, student_gflop

    folder = tmp_path / "models"
    folder.mkdir()
    save_decoder(folder / "dec.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source="vgg.safetensors",
                 convention="caffe")
    config = StudentConfig(width=16, blocks=1)
    save_student(folder / "stu.safetensors", student=Student(config=config), vgg_source="vgg", fingerprint="",
                 card={"architecture": {"gflop_640x360": round(student_gflop(config), 3)}})
    monkeypatch.setenv("VIDSTYLE_MODELS", str(folder))
    monkeypatch.setattr("vidstyle.nets.registry.models_dirs", lambda: [folder])
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["dec"][1:4] == ["decoder", "any", "(--style)"]
    assert rows["stu"][1:5] == ["student", "any", "(--style)", f"{student_gflop(config):.2f}"]


def test_shipped_arbitrary_entries_match_the_files_in_models() -> None:
    """The decoder's and the student's sha256 in the weights enum are those of the files in models/."""
    from vidstyle.nets.registry import ShippedArbitraryWeights, file_sha256

    root = Path(__file__).resolve().parents[2] / "models"
    assert {e.model_name for e in ShippedArbitraryWeights} == {"decoder_relu31", "student_relu31"}
    for entry in ShippedArbitraryWeights:
        assert file_sha256(root / f"{entry.model_name}.safetensors") == entry.sha256, entry


@pytest.mark.parametrize("fast, name", [(False, "decoder_relu31"), (True, "student_relu31")])
def test_a_shipped_decoder_or_student_not_installed_is_downloaded_hash_checked(monkeypatch, tmp_path: Path,
                                                                               fast: bool, name: str) -> None:
    """Not in any models folder: find_decoder downloads the shipped file by its url with its sha256 as the hash
    prefix (torchvision-style) into the hub folder; offline it is one WeightsUnavailableError naming the remedy;
    other names are not downloaded."""
    import shutil

    from vidstyle.errors import WeightsUnavailableError
    from vidstyle.nets import registry
    from vidstyle.nets.registry import ShippedArbitraryWeights
    from vidstyle.stylize.arbitrary import find_decoder

    shipped = Path(__file__).resolve().parents[2] / "models" / f"{name}.safetensors"
    entry = next(e for e in ShippedArbitraryWeights if e.model_name == name)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):  # noqa: ANN001
        calls.append((url, hash_prefix))
        shutil.copyfile(shipped, dst)

    monkeypatch.setattr(registry, "models_dirs", lambda: [tmp_path / "nowhere"])
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    got = find_decoder(None, fast=fast)
    assert got == tmp_path / "hub" / "vidstyle" / f"{name}.safetensors" and got.read_bytes() == shipped.read_bytes()
    assert calls == [(entry.url, entry.sha256)]
    with pytest.raises(ModelError, match="no (decoder|student model) named 'mine'"):
        find_decoder("mine", fast=fast)
    assert len(calls) == 1

    def offline(url, dst, hash_prefix=None, progress=True):  # noqa: ANN001
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    got.unlink()
    with pytest.raises(WeightsUnavailableError, match=f"model {name} is not installed and could not be downloaded"):
        find_decoder(None, fast=fast)


def test_models_listing_marks_the_default_and_lists_no_retired_model(capsys, monkeypatch) -> None:
    """``vidstyle models`` on the shipped files: the default model says so; the retired models are not listed; a
    shipped entry's note (what a user should know of it) comes before its card's description, and no shipped
    model needs one now (every shipped style meets the quality target)."""
    from vidstyle.cli.main import main
    from vidstyle.nets.registry import DEFAULT_MODEL, RETIRED, ShippedWeights

    assert not [e.model_name for e in ShippedWeights if e.meta.get("note")]
    assert main(["models"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows[DEFAULT_MODEL].split()[1] == "(default)"
    assert "(default)" not in rows["wave_student"] and "quality target" not in rows["wave_student"]
    assert not set(RETIRED) & set(rows) and {"starry_student", "wave_student", "paintings_student"} <= set(rows)
    monkeypatch.setitem(ShippedWeights.PAINTINGS_STUDENT.meta, "note", "its wave misses the target; use wave_student")
    assert main(["models"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "its wave misses the target; use wave_student; student multi-style network" in rows["paintings_student"]
    assert "use wave_student" not in rows["starry_student"]


def test_a_retired_model_name_is_one_clear_error(tmp_path, capsys, monkeypatch) -> None:
    """``--model starry_tiny`` (retired: below the quality target) names what it measured and the model to use,
    exit 1, nothing written and nothing downloaded; a file of that name in a models folder still loads (a user's own);
    the retired files are kept as benchmark baselines and still load by path."""
    import shutil

    from vidstyle.cli.main import main
    from vidstyle.nets import registry
    from vidstyle.nets.registry import RETIRED, load_model

    assert RETIRED == {"starry_tiny": ("held-out style ratio 0.35, texture 0.71", "starry_student"),
                       "wave_small": ("held-out style ratio 1.03: a tint", "wave_student")}
    monkeypatch.setattr(registry, "_download_shipped", lambda name: pytest.fail(f"downloaded {name}"))
    with pytest.raises(ModelError, match="'starry_tiny' was retired: it missed the quality target .*use starry_student"):
        load_model("starry_tiny")
    clip = Path(__file__).resolve().parents[2] / "samples" / "clip.mp4"
    assert main(["stylize", str(clip), "-o", str(tmp_path / "out.mp4"), "--model", "wave_small", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "use wave_student" in err[0], err
    assert not list(tmp_path.iterdir())
    assert main(["models", "starry_tiny"]) == 1  # its card: the same line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was retired" in err[0] and "use starry_student" in err[0], err
    baseline = Path(__file__).resolve().parents[2] / "benchmarks" / "baselines" / "starry_tiny.safetensors"
    assert load_model(baseline).architecture == "transformer"
    mine = tmp_path / "models"
    mine.mkdir()
    shutil.copyfile(baseline, mine / "starry_tiny.safetensors")
    monkeypatch.setenv("VIDSTYLE_MODELS", str(mine))
    assert load_model("starry_tiny").architecture == "transformer"
