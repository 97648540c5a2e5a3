"""The carried keyframe (``warp_blend``) and masked keyframes (``mask``): unit behaviour and end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from vidstyle.frame import Frame  # noqa: E402
from vidstyle.keyframes.carry import TOLERANCE, KeyframeCarry, blend_carry  # noqa: E402
from vidstyle.keyframes.losses import KeyframeLoss  # noqa: E402
from vidstyle.keyframes.model import KeyframeModel  # noqa: E402
from vidstyle.keyframes.net import KeyframeNet  # noqa: E402
from vidstyle.keyframes.stage import KeyframeStage  # noqa: E402
from vidstyle.keyframes.trainer import TrainingPair, TrainSettings, masked_target, sample_patches, train_network  # noqa: E402

H, W = 40, 56


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((H // 4 + 2, W // 4 + 2, 3)).astype(np.float32)
    return cv2.resize(small, (W + 8, H + 8), interpolation=cv2.INTER_CUBIC).clip(0, 1)[:H, :W].copy()


def _shift(img: np.ndarray, dx: int) -> np.ndarray:
    """The picture moved ``dx`` pixels right; the column entering on the left is new content (noise)."""
    out = np.roll(img, dx, axis=1)
    out[:, :dx] = np.random.default_rng(9).random((img.shape[0], dx) + img.shape[2:]).astype(np.float32)
    return out


def test_carry_gives_the_painting_at_its_keyframe_and_moves_it_with_the_flow() -> None:
    frame0 = _texture(0)
    painting = 1.0 - frame0  # any look
    carry = KeyframeCarry(paintings={3: painting})
    assert carry.step(2, frame0, None) is None  # before the keyframe: nothing to carry
    warped, r = carry.step(3, frame0, None)
    assert np.array_equal(warped, painting) and np.all(r == 1)
    frame1 = _shift(frame0, 2)
    flow = np.zeros((2, H, W), np.float32)
    flow[0] = -2.0  # each pixel came from 2 px to its left
    warped, r = carry.step(4, frame1, flow)
    inner = (slice(4, -4), slice(10, -4))  # (the feather spreads the new column's mismatch a few pixels)
    assert np.abs(warped[inner] - np.roll(painting, 2, axis=1)[inner]).max() < 1e-4  # integer shift: exact
    assert r[inner].min() > 0.99
    assert np.all(r[:, :2] == 0)  # what entered the frame has no source: never trusted


def test_carry_is_not_trusted_where_the_frame_does_not_match_and_stops_at_a_cut() -> None:
    frame0 = _texture(1)
    carry = KeyframeCarry(paintings={0: frame0 * 0.5})
    carry.step(0, frame0, None)
    changed = frame0.copy()
    changed[10:30, 20:40] = 1.0 - changed[10:30, 20:40]  # something the flow does not explain
    warped, r = carry.step(1, changed, np.zeros((2, H, W), np.float32))
    assert r[18:22, 28:32].max() == 0.0 and r[:4, :10].min() > 0.99
    net = np.full((H, W, 3), 0.25, np.float32)
    out = blend_carry(net, (warped, r), strength=1.0)
    assert np.allclose(out[20, 30], 0.25) and np.allclose(out[1, 1], warped[1, 1])  # the network where untrusted
    assert np.allclose(blend_carry(net, (warped, r), strength=0.0), net)
    assert carry.step(2, changed, np.zeros((2, H, W), np.float32), scene_cut=True) is None
    assert carry.step(3, changed, np.zeros((2, H, W), np.float32)) is None  # until the next keyframe
    assert TOLERANCE > 0


def test_stage_outputs_the_painting_at_a_keyframe_and_the_network_without_flow() -> None:
    torch.manual_seed(0)
    model = KeyframeModel(nets=[KeyframeNet()], keys=(0,), guides=(), blend="joint")
    frame = (_texture(2) * 255).astype(np.uint8)
    painting = _texture(3)
    stage = KeyframeStage(model=model, paintings={0: painting}, warp_blend=1.0, raw_output=True)
    out0 = stage.process(Frame(index=0, image=frame))[0].stylized
    assert np.allclose(out0, painting, atol=1e-6)
    plain = KeyframeStage(model=model, raw_output=True)
    net1 = plain.process(Frame(index=1, image=frame))[0].stylized
    out1 = stage.process(Frame(index=1, image=frame))[0].stylized  # no flow: nothing carried
    assert np.array_equal(out1, net1) and not np.allclose(net1, painting, atol=0.05)


def test_stage_holds_frames_until_the_keyframe_ahead_and_takes_the_more_reliable_painting() -> None:
    torch.manual_seed(0)
    model = KeyframeModel(nets=[KeyframeNet()], keys=(0, 2), guides=(), blend="joint")
    f0 = _texture(4)
    f2 = f0.copy()
    f2[10:30, 20:40] = 1.0 - f2[10:30, 20:40]  # something appears by frame 2...
    f1 = f2.copy()  # ...already there in frame 1: only the keyframe ahead explains it
    p0, p2 = np.full((H, W, 3), 0.2, np.float32), np.full((H, W, 3), 0.8, np.float32)
    zero = np.zeros((2, H, W), np.float32)
    frames = [Frame(index=i, image=(f * 255 + 0.5).astype(np.uint8)) for i, f in enumerate((f0, f1, f2))]
    for f in frames[1:]:
        f.flow_bwd, f.flow_fwd = zero, zero
    stage = KeyframeStage(model=model, paintings={0: p0, 2: p2}, warp_blend=1.0, raw_output=True)
    assert [f.index for f in stage.process(frames[0])] == [0]
    assert stage.process(frames[1]) == []  # held: the keyframe ahead is carried back to it
    out = stage.process(frames[2])
    assert [f.index for f in out] == [1, 2]
    mid = out[0].stylized
    assert np.allclose(mid[16:24, 26:34], 0.8, atol=1e-5)  # from the keyframe ahead
    assert np.allclose(mid[:5, :10], 0.2, atol=1e-5)  # both agree: the keyframe behind
    assert np.allclose(out[1].stylized, p2, atol=1e-6)
    # a stream that ends before the keyframe ahead: the held frames go out at finish, carried from behind
    stage2 = KeyframeStage(model=model, paintings={0: p0, 2: p2}, warp_blend=1.0, raw_output=True)
    stage2.process(Frame(index=0, image=frames[0].image))
    f = Frame(index=1, image=frames[1].image)
    f.flow_bwd, f.flow_fwd = zero, zero
    assert stage2.process(f) == []
    left = stage2.finish()
    assert [x.index for x in left] == [1] and np.allclose(left[0].stylized[:5, :10], 0.2, atol=1e-5)


def _pairs(outside_seed: int) -> list[TrainingPair]:
    g = torch.Generator().manual_seed(0)
    pairs = []
    for i in range(2):
        x = torch.rand(3, 32, 48, generator=g)
        t = 1.0 - x
        matte = torch.zeros(1, 32, 48)
        matte[:, 8:24, 10:30] = 1.0
        matte[:, 8:24, 30:34] = 0.5  # a soft edge
        junk = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(outside_seed + i))
        pairs.append(TrainingPair(index=i, inputs=x, painted=torch.where(matte > 0, t, junk), matte=matte))
    return pairs


def test_masked_training_learns_from_the_painted_pixels_only() -> None:
    """What a painting holds outside its matte changes nothing: the networks are bit-identical."""
    settings = TrainSettings(patch_size=16, patch_batch=4, max_steps=15, learning_rate=5e-3)
    a = train_network(_pairs(100), settings=settings, loss=KeyframeLoss(vgg=None))
    b = train_network(_pairs(200), settings=settings, loss=KeyframeLoss(vgg=None))
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(pa, pb)
    # and the mattes matter: without them the junk is learnt
    plain = [TrainingPair(index=p.index, inputs=p.inputs, painted=p.painted) for p in _pairs(100)]
    c = train_network(plain, settings=settings, loss=KeyframeLoss(vgg=None))
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.net.parameters(), c.net.parameters()))


def test_masked_patches_are_centred_on_the_matte_and_the_target_keeps_the_output_outside() -> None:
    pairs = _pairs(100)
    _, _, mats = sample_patches(pairs, size=8, batch=32, gen=torch.Generator().manual_seed(1))
    assert mats is not None and mats.shape == (32, 1, 8, 8)
    assert bool((mats[:, :, 4, 4] >= 0.5).all())  # every patch's centre is painted
    y = torch.rand(2, 3, 4, 4)
    t = torch.rand(2, 3, 4, 4)
    m = torch.zeros(2, 1, 4, 4)
    m[:, :, :2] = 1.0
    m[:, :, 2] = 0.25
    got = masked_target(y, t, m)
    assert torch.equal(got[:, :, :2], t[:, :, :2]) and torch.equal(got[:, :, 3], y[:, :, 3])
    assert torch.allclose(got[:, :, 2], 0.25 * t[:, :, 2] + 0.75 * y[:, :, 2])
    assert masked_target(y, t, None) is t


# ------------------------------------------------------------------------------------------- end to end
av = pytest.importorskip("av")


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_cli_mask_paints_inside_the_matte_only(capsys, tmp_path: Path) -> None:
    from media import make_video

    from vidstyle.cli.main import main

    w, h, n = 64, 48, 10
    clip = make_video(tmp_path / "shot.mp4", frames=n, width=w, height=h, audio=1)
    frames = _decoded(clip)
    alpha = np.zeros((h, w), np.float32)
    alpha[8:40, 8:40] = 1.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), 2.0)  # a soft edge
    cv2.imwrite(str(tmp_path / "matte.png"), (alpha * 255 + 0.5).astype(np.uint8))
    alpha = cv2.imread(str(tmp_path / "matte.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    for k in (0, 8):  # painted inside the matte only: the rest is the frame as it was
        f = frames[k].astype(np.float32) / 255
        p = alpha[:, :, None] * (1.0 - f) + (1 - alpha[:, :, None]) * f
        cv2.imwrite(str(tmp_path / f"p{k}.png"), (p * 255 + 0.5).astype(np.uint8)[:, :, ::-1])
    (tmp_path / "out").mkdir()
    code = main(["keyframes", str(clip), "--key", f"0:{tmp_path / 'p0.png'}", "--key", f"8:{tmp_path / 'p8.png'}",
                 "--mask", str(tmp_path / "matte.png"), "-o", str(tmp_path / "out" / "%04d.png"), "-q",
                 "--max-steps", "20", "--perceptual-weight", "0", "--patch-size", "16", "--patch-batch", "8",
                 "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) == n
    outside = alpha == 0
    inside = alpha >= 0.999
    for k in (0, 4, 8):
        got = cv2.imread(str(written[k]))[:, :, ::-1]
        assert np.array_equal(got[outside], frames[k][outside])  # the input, exactly, outside the matte
        assert np.abs(got[inside].astype(int) - frames[k][inside]).mean() > 20  # painted inside
    got0 = cv2.imread(str(written[0]))[:, :, ::-1].astype(np.float32) / 255
    painted0 = cv2.imread(str(tmp_path / "p0.png"))[:, :, ::-1].astype(np.float32) / 255
    assert np.abs(got0 - painted0)[inside].max() <= 2 / 255  # at a keyframe, inside the matte: the painting
    edge = (alpha > 0.1) & (alpha < 0.9)  # the soft edge: the composite a·S + (1 − a)·I over the input
    f0 = frames[0].astype(np.float32) / 255
    assert np.all(np.abs(got0 - f0)[edge].max(axis=-1) <= alpha[edge] * 1.0 + 2 / 255)


def test_cli_black_matte_at_a_keyframe_is_one_line(capsys, tmp_path: Path) -> None:
    from media import make_video

    from vidstyle.cli.main import main

    clip = make_video(tmp_path / "shot.mp4", frames=6, width=32, height=24)
    cv2.imwrite(str(tmp_path / "matte.png"), np.zeros((24, 32), np.uint8))
    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((24, 32, 3), np.uint8))
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["keyframes", str(clip), "--key", f"0:{tmp_path / 'p.png'}", "--mask", str(tmp_path / "matte.png"),
                 "-o", str(tmp_path / "o.mp4"), "--max-steps", "2", "--threads", "1"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1 and "keyframe 0: its matte is black" in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_relative_gram_loss_is_the_written_out_formula_and_ignores_positions() -> None:
    from vidstyle.keyframes.losses import relative_gram_loss

    g = torch.Generator().manual_seed(0)
    f = {"a": torch.rand(2, 3, 4, 5, generator=g)}
    t = {"a": torch.rand(2, 3, 4, 5, generator=g)}
    expected_num, expected_den = 0.0, 0.0
    for n in range(2):
        for i in range(3):
            for j in range(3):
                gf = sum(float(f["a"][n, i].reshape(-1)[k] * f["a"][n, j].reshape(-1)[k]) for k in range(20)) / 20
                gt = sum(float(t["a"][n, i].reshape(-1)[k] * t["a"][n, j].reshape(-1)[k]) for k in range(20)) / 20
                expected_num += (gf - gt) ** 2 / 2
                expected_den += gt ** 2 / 2
    got = float(relative_gram_loss(f, t, layers=("a",)))
    assert abs(got - expected_num / expected_den) < 1e-5
    shuffled = {"a": t["a"].flip(-1).flip(-2)}  # the same statistics elsewhere in the patch: no Gram loss
    assert float(relative_gram_loss(shuffled, t, layers=("a",))) < 1e-10


# ------------------------------------------------------------------------------------------- checkpoints
def _small_pairs() -> list[TrainingPair]:
    g = torch.Generator().manual_seed(0)
    return [TrainingPair(index=i, inputs=torch.rand(3, 24, 32, generator=g), painted=torch.rand(3, 24, 32, generator=g))
            for i in range(2)]


def test_training_resumed_from_a_checkpoint_is_bit_identical() -> None:
    pairs = _small_pairs()
    settings = dict(patch_size=16, patch_batch=4, learning_rate=5e-3)
    full = train_network(pairs, settings=TrainSettings(max_steps=12, **settings), loss=KeyframeLoss(vgg=None))
    snaps: list[dict] = []
    train_network(pairs, settings=TrainSettings(max_steps=6, **settings), loss=KeyframeLoss(vgg=None),
                  checkpoint=snaps.append, checkpoint_every=0.0)
    mid = [s for s in snaps if "done" not in s][-1]  # the state after step 6, as an interruption leaves it
    assert int(mid["progress"][0]) == 6
    res = train_network(pairs, settings=TrainSettings(max_steps=12, **settings), loss=KeyframeLoss(vgg=None), resume=mid)
    assert res.steps == 12 and res.ema == full.ema
    for a, b in zip(full.net.parameters(), res.net.parameters()):
        assert torch.equal(a, b)
    # a finished network's final checkpoint gives it back without training
    fin: list[dict] = []
    done = train_network(pairs, settings=TrainSettings(max_steps=5, **settings), loss=KeyframeLoss(vgg=None),
                         checkpoint=fin.append, checkpoint_every=1e9)
    again = train_network(pairs, settings=TrainSettings(max_steps=5, **settings), loss=KeyframeLoss(vgg=None),
                          resume=fin[-1])
    assert again.stopped == "max steps" and again.steps == 5
    for a, b in zip(done.net.parameters(), again.net.parameters()):
        assert torch.equal(a, b)


def test_interrupted_keyframes_run_resumes_its_training(tmp_path: Path, monkeypatch) -> None:
    from media import make_video

    from vidstyle.keyframes import run as kfrun
    from vidstyle.keyframes.model import load_keyframe_model
    from vidstyle.keyframes.options import KeyframeOptions
    from vidstyle.options import StylizeOptions, TemporalOptions

    monkeypatch.setattr(kfrun, "CHECKPOINT_SECONDS", 0.0)
    clip = make_video(tmp_path / "shot.mp4", frames=6, width=32, height=24)
    frames = _decoded(clip)
    cv2.imwrite(str(tmp_path / "p.png"), 255 - frames[0][:, :, ::-1])

    def options(name: str) -> KeyframeOptions:
        return KeyframeOptions(keys=[f"0:{tmp_path / 'p.png'}"], max_steps=14, patch_size=16, patch_batch=4,
                               perceptual_weight=0.0, save_model=str(tmp_path / name))

    common = dict(stylize=StylizeOptions(threads=1, seed=2), temporal=TemporalOptions(stabilize=0.0))
    kfrun.stylize_with_keyframes(clip, tmp_path / "a.mp4", keyframes=options("a"), **common)

    def stop_at_8(p: object) -> None:
        if p.step == 8:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kfrun.stylize_with_keyframes(clip, tmp_path / "b.mp4", keyframes=options("b"), train_progress=stop_at_8, **common)
    kept = kfrun.checkpoint_paths(tmp_path / "b", 1)[0]
    assert kept.is_file() and not (tmp_path / "b.mp4").exists()
    notes: list[str] = []
    kfrun.stylize_with_keyframes(clip, tmp_path / "b.mp4", keyframes=options("b"), note=notes.append, **common)
    assert any("training resumed at step 8" in n for n in notes), notes  # step 7 was the last one checkpointed
    assert not kept.exists()  # removed once the model is saved
    a, b = load_keyframe_model(tmp_path / "a.safetensors"), load_keyframe_model(tmp_path / "b.safetensors")
    for pa, pb in zip(a.nets[0].parameters(), b.nets[0].parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("rule", ["reliable", "behind"])
def test_full_strength_selection_is_the_blend_formula(rule: str, monkeypatch) -> None:
    """At s = 1 the masked copies give exactly m·S + (1 − m)·N with m = [max r > TRUST] and S the chosen painting."""
    import vidstyle.keyframes.carry as carry_mod

    monkeypatch.setattr(carry_mod, "RULE", rule)
    rng = np.random.default_rng(3)
    net, wa, wb = (rng.random((H, W, 3), dtype=np.float32) for _ in range(3))
    ra, rb = (rng.random((H, W), dtype=np.float32) * 0.3 for _ in range(2))
    for other in (None, (wb, rb)):
        out = blend_carry(net, (wa, ra), strength=1.0, other=other)
        if other is None:
            chosen, best = wa, ra
        else:
            ahead = (ra <= carry_mod.TRUST) & (rb > carry_mod.TRUST) if rule == "behind" else rb > ra
            chosen, best = np.where(ahead[:, :, None], wb, wa), np.maximum(ra, rb)
        m = (best > carry_mod.TRUST).astype(np.float32)[:, :, None]
        assert out.dtype == np.float32 and out is not net
        assert np.array_equal(out, m * chosen + (1 - m) * net)
        assert 0.1 < m.mean() < 0.9  # both sides of the threshold are exercised
