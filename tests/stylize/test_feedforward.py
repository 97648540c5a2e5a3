"""FeedForwardStage: order, batching, dtypes and sizes kept; stabilisation removes flicker without
blurring (measured with vidstyle.metrics on a sequence with exact flow); scene cuts; bad options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ff_helpers import (
    DEVICES,
    frames_with_flow,
    random_model,
    run_stage,
    texture,
    translating_sequence,
)

from vidstyle.errors import InvalidOptionError
from vidstyle.frame import Frame, from_float32
from vidstyle.stylize.feedforward import (
    FeedForwardStage,
    image_to_tensor,
    resolve_device,
    tensor_to_image,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _stage(**kw) -> FeedForwardStage:
    kw.setdefault("model", random_model(0))
    kw.setdefault("device", "cpu")
    return FeedForwardStage(**kw)


def _images(n: int, h: int, w: int, dtype: type) -> list[np.ndarray]:
    return [from_float32(texture(h, w, seed=i), dtype) for i in range(n)]


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_frames_out_in_order_with_dtype_and_size_kept(batch_size: int, dtype: type) -> None:
    stage = _stage(batch_size=batch_size, stabilize=0.0)
    images = _images(7, 37, 51, dtype)
    returned_per_call = []
    out: list[Frame] = []
    for i, img in enumerate(images):
        got = stage.process(Frame(index=i, image=img))
        returned_per_call.append(len(got))
        out += got
    out += stage.finish()
    # held back until a batch is full, then all at once
    assert returned_per_call == ([1] * 7 if batch_size == 1 else [0, 0, 3, 0, 0, 3, 0])
    assert [f.index for f in out] == list(range(7))
    for f, img in zip(out, images):
        assert f.image is img
        assert f.stylized.dtype == np.dtype(dtype) and f.stylized.shape == img.shape
        assert f.stylized.flags.c_contiguous
        # each frame is stylised on its own, whatever the batch
        single = stage.stylize_image(img)
        diff = np.abs(f.stylized.astype(np.float64) - single.astype(np.float64))
        scale = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
        assert diff.max() <= 1e-4 * scale + 1
    assert not np.array_equal(out[0].stylized, out[1].stylized)


def test_batched_equals_unbatched() -> None:
    images = _images(5, 24, 40, np.float32)
    one = run_stage(_stage(batch_size=1, stabilize=0.0), [Frame(index=i, image=im) for i, im in enumerate(images)])
    three = run_stage(_stage(batch_size=3, stabilize=0.0), [Frame(index=i, image=im) for i, im in enumerate(images)])
    for a, b in zip(one, three):
        np.testing.assert_allclose(a.stylized, b.stylized, atol=1e-5)


def test_frames_of_different_sizes_in_one_batch() -> None:
    sizes = [(20, 30), (31, 17), (20, 30), (9, 9)]
    frames = [Frame(index=i, image=from_float32(texture(h, w, seed=i), np.uint8)) for i, (h, w) in enumerate(sizes)]
    out = run_stage(_stage(batch_size=4, stabilize=0.0), frames)
    assert [f.index for f in out] == [0, 1, 2, 3]
    assert [f.stylized.shape[:2] for f in out] == sizes


def test_output_is_the_network_output() -> None:
    model = random_model(1)
    img = texture(16, 24, seed=3)
    with torch.no_grad():
        expected = model(torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    got = _stage(model=random_model(1), stabilize=0.0).stylize_image(img)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert (np.abs(got - img)).mean() > 0.02  # the random net changes the picture


def test_image_tensor_conversions() -> None:
    u16 = np.array([[[0, 65535, 32768]]], np.uint16)
    t = image_to_tensor(u16)
    assert t.shape == (3, 1, 1) and t.dtype == torch.float32
    torch.testing.assert_close(t[:, 0, 0], torch.tensor([0.0, 1.0, 32768 / 65535]))
    hdr = np.array([[[1.5, -0.2, 0.25]]], np.float32)
    torch.testing.assert_close(image_to_tensor(hdr)[:, 0, 0], torch.tensor([1.0, 0.0, 0.25]))
    img = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 10).astype(np.uint8)
    assert np.array_equal(tensor_to_image(image_to_tensor(img), np.uint8), img)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tensor_to_image_planar_and_interleaved_memory_agree(dtype: type) -> None:
    torch.manual_seed(0)
    planar = torch.rand(3, 37, 53) * 1.2 - 0.1  # some values outside [0, 1]: clamped
    interleaved = planar.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # H×W×C memory
    want = from_float32(np.clip(planar.permute(1, 2, 0).numpy(), 0.0, 1.0), dtype)
    for t in (planar, interleaved, planar[:, 1:, 2:]):  # and a strided crop
        got = tensor_to_image(t, dtype)
        assert got.dtype == np.dtype(dtype) and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want[1:, 2:] if t.shape[1] == 36 else want)


def test_chw_to_hwc() -> None:
    from vidstyle.frame import chw_to_hwc

    rng = np.random.default_rng(0)
    for c in (1, 3, 4, 5):
        for dtype in (np.uint8, np.uint16, np.float32, np.float64):
            planes = (rng.random((c, 9, 11)) * 200).astype(dtype)
            out = chw_to_hwc(planes)
            assert out.shape == (9, 11, c) and out.dtype == planes.dtype and out.flags.c_contiguous
            np.testing.assert_array_equal(out, planes.transpose(1, 2, 0))
    with pytest.raises(ValueError, match="C×H×W"):
        chw_to_hwc(np.zeros((4, 4)))


# ---- temporal stabilisation -------------------------------------------------------------------------


def _reference(n: int, h: int, w: int, dx: float):
    """Exact forward flows (frame t → t+1 is −d) and masks for vidstyle.metrics.warping_error."""
    from vidstyle.metrics import WarpReference

    flow = np.zeros((2, h, w), np.float32)
    flow[0] = -dx
    xs = np.arange(w)[None, :].repeat(h, 0)
    mask = ((xs - dx >= 0) & (xs - dx <= w - 1)).astype(np.float32)
    return WarpReference(lag=1, flows=[flow] * (n - 1), masks=[mask] * (n - 1), size=(h, w))


def test_stabilize_zero_is_per_frame_even_with_flow() -> None:
    images, flow, cons = translating_sequence(5, 24, 32, dx=1.5, noise=0.02)
    plain = run_stage(_stage(stabilize=0.0), frames_with_flow(images, None, None))
    with_flow = run_stage(_stage(stabilize=0.0), frames_with_flow(images, flow, cons))
    for a, b in zip(plain, with_flow):
        assert np.array_equal(a.stylized, b.stylized)


def test_without_flow_stabilisation_changes_nothing() -> None:
    images, _, _ = translating_sequence(4, 24, 32, dx=1.5, noise=0.02)
    plain = run_stage(_stage(stabilize=0.0), frames_with_flow(images, None, None))
    stab = run_stage(_stage(stabilize=0.85), frames_with_flow(images, None, None))
    for a, b in zip(plain, stab):
        assert np.array_equal(a.stylized, b.stylized)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_stabilisation_removes_flicker_and_keeps_detail(batch_size: int) -> None:
    from vidstyle.metrics import sharpness, warping_error

    n, h, w, dx = 8, 48, 64, 1.5
    images, flow, cons = translating_sequence(n, h, w, dx=dx, noise=0.02)
    ref = _reference(n, h, w, dx)
    per_frame = [f.stylized for f in run_stage(_stage(stabilize=0.0, batch_size=batch_size),
                                               frames_with_flow(images, flow, cons))]
    stable = [f.stylized for f in run_stage(_stage(batch_size=batch_size),  # default strength
                                            frames_with_flow(images, flow, cons))]
    e_frame = warping_error(per_frame, reference=ref).mean
    e_stable = warping_error(stable, reference=ref).mean
    s_frame = np.mean([sharpness(o) for o in per_frame])
    s_stable = np.mean([sharpness(o) for o in stable])
    # the random net flickers: its per-frame error is far above the input's own
    assert e_frame > 20 * warping_error(images, reference=ref).mean
    assert e_stable < 0.5 * e_frame, (e_stable, e_frame)  # measured ≈ 0.05×
    assert s_stable >= 0.9 * s_frame, (s_stable, s_frame)  # measured ≈ 0.97×
    # the first frame has nothing to stabilise against
    assert np.array_equal(stable[0], per_frame[0])


def test_stronger_stabilisation_is_more_stable() -> None:
    from vidstyle.metrics import warping_error

    n, h, w, dx = 6, 32, 48, 2.0
    images, flow, cons = translating_sequence(n, h, w, dx=dx, noise=0.02, seed=4)
    ref = _reference(n, h, w, dx)
    errors = []
    for strength in (0.0, 0.4, 0.9):
        out = run_stage(_stage(stabilize=strength), frames_with_flow(images, flow, cons))
        errors.append(warping_error([f.stylized for f in out], reference=ref).mean)
    assert errors[0] > errors[1] > errors[2]


def test_scene_cut_resets_the_state() -> None:
    images, flow, cons = translating_sequence(6, 24, 32, dx=1.5, noise=0.02)
    frames = frames_with_flow(images, flow, cons)
    frames[3].scene_cut = True
    per_frame = run_stage(_stage(stabilize=0.0), frames_with_flow(images, flow, cons))
    stage = _stage(stabilize=0.9)
    out = run_stage(stage, frames)
    assert np.array_equal(out[0].stylized, per_frame[0].stylized)
    assert not np.array_equal(out[2].stylized, per_frame[2].stylized)  # stabilised
    assert np.array_equal(out[3].stylized, per_frame[3].stylized)  # the cut: nothing carried over
    assert not np.array_equal(out[4].stylized, per_frame[4].stylized)  # and it starts again from there
    # the state after the cut comes from frame 3: same result as a fresh stage started at frame 3
    fresh = run_stage(_stage(stabilize=0.9), frames_with_flow(images[3:], flow, cons))
    for a, b in zip(out[3:], fresh):
        np.testing.assert_array_equal(a.stylized, b.stylized)


def test_close_drops_held_frames_and_state() -> None:
    images, flow, cons = translating_sequence(3, 16, 16, dx=1.0)
    stage = _stage(batch_size=4)
    for f in frames_with_flow(images, flow, cons):
        assert stage.process(f) == []
    stage.close()
    assert stage.finish() == []
    assert stage.stabilizer.previous is None


@pytest.mark.parametrize("device", DEVICES)
def test_device_and_model_name(device: str) -> None:
    stage = _stage(device=device, model=random_model(2), stabilize=0.0)
    assert stage.model_name == "random2" and stage.stylizer.device.type == device
    img = _images(1, 13, 17, np.uint8)[0]
    assert stage.stylize_image(img).shape == img.shape


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"batch_size": -2}, {"batch_size": 2.0}, {"batch_size": "3"}, {"stabilize": -0.1},
     {"stabilize": 1.5}, {"precision": "int8"}, {"device": "warp-drive"}],
)
def test_invalid_options(kwargs: dict) -> None:
    with pytest.raises(InvalidOptionError):
        _stage(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_an_option_error() -> None:
    with pytest.raises(InvalidOptionError, match="use device cpu") as info:
        resolve_device("cuda")
    assert info.value.parameter == "device"  # the library names the parameter; the CLI shows --device
    assert resolve_device(None).type == "cpu"


@pytest.mark.parametrize("batch_size", [1, 3])
def test_in_the_pipeline(batch_size: int) -> None:
    from vidstyle.pipeline.runner import run_pipeline

    images, flow, cons = translating_sequence(7, 20, 28, dx=1.0, noise=0.02)
    expected = run_stage(_stage(batch_size=1), frames_with_flow(images, flow, cons))

    class Sink:
        def __init__(self) -> None:
            self.frames: list[Frame] = []

        def write(self, frame: Frame) -> None:
            self.frames.append(frame)

        def close(self) -> str:
            return "done"

        def abort(self) -> None:
            return None

    sink = Sink()
    stats = run_pipeline(source=frames_with_flow(images, flow, cons), stages=[_stage(batch_size=batch_size)],
                         sink=sink, queue_size=2)
    assert stats.frames == 7 and str(stats.output) == "done"
    assert [f.index for f in sink.frames] == list(range(7))
    for got, want in zip(sink.frames, expected):
        np.testing.assert_allclose(got.stylized, want.stylized, atol=1e-5)


def test_channels_last_and_bfloat16_match_float32() -> None:
    img = texture(24, 33, seed=7)
    ref = _stage(stabilize=0.0).stylize_image(img)
    cl = _stage(stabilize=0.0, channels_last=True).stylize_image(img)
    np.testing.assert_allclose(cl, ref, atol=1e-5)
    stage = _stage(stabilize=0.0, precision="bfloat16")
    assert next(stage.stylizer.model.parameters()).dtype == torch.bfloat16
    bf = stage.stylize_image(img)
    assert bf.dtype == np.float32 and bf.shape == img.shape
    assert np.abs(bf - ref).mean() < 0.03


def test_transformer_nets_run_fused_and_the_caller_model_is_untouched() -> None:
    from vidstyle.nets.fused import FusedTransformerNet
    from vidstyle.nets.transformer import TransformerNet

    model = random_model(4)
    if not isinstance(model.net, TransformerNet):
        pytest.skip("helper model is not a TransformerNet")
    stage = _stage(model=model, stabilize=0.0)
    assert isinstance(stage.stylizer.model.net, FusedTransformerNet)
    assert isinstance(model.net, TransformerNet)  # the caller's model is not replaced
    from vidstyle.stylize.feedforward import FeedForwardStylizer

    unfused = FeedForwardStylizer(model=random_model(4), device="cpu", fuse=False)
    assert isinstance(unfused.model.net, TransformerNet)
    img = texture(20, 30, seed=5)
    x = image_to_tensor(img)[None]
    np.testing.assert_allclose(stage.stylizer(x).numpy(), unfused(x).numpy(), atol=1e-5)


def test_resolve_precision() -> None:
    from vidstyle.stylize.feedforward import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("float32", device=cpu) == torch.float32
    assert resolve_precision("bfloat16", device=cpu) == torch.bfloat16
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert resolve_precision("auto", device=cpu) == (torch.bfloat16 if native else torch.float32)
    with pytest.raises(InvalidOptionError, match="float16 is not supported on the CPU"):
        resolve_precision("float16", device=cpu)
    with pytest.raises(InvalidOptionError, match="precision must be one of"):
        resolve_precision("fp8", device=cpu)


def test_other_nets_run_with_fast_instance_norms_and_the_caller_model_is_untouched() -> None:
    from vidstyle.nets.engstrom import Engstrom2016Net
    from vidstyle.nets.registry import StyleModel
    from vidstyle.stylize.feedforward import FeedForwardStylizer

    torch.manual_seed(0)
    net = Engstrom2016Net().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    model = StyleModel(net=net, name="e", architecture="engstrom2016")
    fast = FeedForwardStylizer(model=model, device="cpu")
    plain = FeedForwardStylizer(model=model, device="cpu", fuse=False)
    norms = [type(m).__name__ for m in fast.model.net.modules() if "Norm" in type(m).__name__]
    assert norms and set(norms) == {"_InstanceNorm"}
    assert all(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules() if "Norm" in type(m).__name__)
    x = image_to_tensor(texture(20, 30, seed=5))[None]
    out, ref = fast(x).numpy(), plain(x).numpy()
    assert 0.05 < ref.std()  # a real image, not a saturated one
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_a_none_view_of_an_image_runs_as_a_real_batch() -> None:
    """``image_to_tensor(img)[None]`` has a batch stride of 3, a layout oneDNN runs 1.4-1.8x slower: the stylizer
    hands the network the same memory with a batch's stride, and the output is the one of a real batch."""
    import numpy as np
    import torch

    from vidstyle.nets.registry import StyleModel
    from vidstyle.nets.transformer import TransformerNet
    from vidstyle.stylize.feedforward import FeedForwardStylizer, image_to_tensor, images_to_batch

    torch.manual_seed(0)
    model = StyleModel(net=TransformerNet(config="tiny"), name="t", architecture="transformer")
    stylizer = FeedForwardStylizer(model=model, device="cpu", channels_last=False)
    seen: list[tuple[int, ...]] = []
    network = stylizer._fn

    def recording(x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        seen.append(x.stride())
        return network(x, *args, **kwargs)

    stylizer._fn = recording
    img = (np.random.default_rng(0).random((24, 40, 3)) * 255).astype(np.uint8)
    view = image_to_tensor(img)[None]
    assert view.stride(0) == 3  # what the guard is for
    a, b = stylizer(view), stylizer(images_to_batch([img], device=torch.device("cpu")))
    assert seen[0][0] == 3 * 24 * 40 and seen[0] == seen[1]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_image_to_tensor_leaves_a_float_frame_alone() -> None:
    """A float32 frame with values outside [0, 1] (an EXR) is clipped in the tensor, not in the caller's array."""
    from vidstyle.stylize.feedforward import image_to_tensor

    frame = np.linspace(-0.5, 1.5, 4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    before = frame.copy()
    t = image_to_tensor(frame)
    assert np.array_equal(frame, before)
    assert float(t.min()) == 0.0 and float(t.max()) == 1.0
    assert torch.equal(t, torch.from_numpy(before).permute(2, 0, 1).clamp(0, 1))
