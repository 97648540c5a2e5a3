"""The pure parts of a render: the plan (chunks, what each owns, cross-fade zones), what the
journals say is done, the resources, and the typed manifest's round trip."""

from __future__ import annotations

import pytest

from vidstyle.errors import InvalidInputError, InvalidOptionError
from vidstyle.render.manifest import ChunkRecord, Manifest, OutputRecord, RenderLayout, RunRecord, ShotRecord
from vidstyle.render.plan import JournalState, RenderPlan, done_counts, finished_chunks, plan_chunks, resolve_resources

# a numbering with a gap (1004 is missing): positions count frames that exist
NUMBERS = [1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011]


def _plan() -> RenderPlan:
    return RenderPlan.new(NUMBERS, chunk_frames=4, overlap=3, crossfade=2)


def test_plan_chunks_owners_and_crossfade_zones() -> None:
    plan = _plan()
    assert [(c.first, c.last, c.frames) for c in plan.chunks] == [(1001, 1005, 4), (1006, 1009, 4), (1010, 1011, 2)]
    c0, c1, c2 = plan.chunks
    assert (c0.warmup_from, c0.crossfade_from, c0.warmup) == (1001, None, 0)
    assert (c1.warmup_from, c1.crossfade_from, c1.warmup) == (1002, 1003, 3)
    assert plan.own_frames(c1) == [1006, 1007, 1008, 1009]
    assert plan.position(1005) == 3
    owner = plan.owner()
    assert [owner[n] for n in NUMBERS] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert plan.next_crossfade(c0) == 1003 and plan.next_crossfade(c2) is None
    assert plan.crossfade_zone(c0) == []
    assert plan.crossfade_zone(c1) == [(1003, pytest.approx(1 / 3)), (1005, pytest.approx(2 / 3))]
    assert plan.crossfade_zone(c2) == [(1008, pytest.approx(1 / 3)), (1009, pytest.approx(2 / 3))]


def _frame(n: int, attempt: int = 1) -> dict[str, object]:
    return {"e": "frame", "n": n, "attempt": attempt, "sha256": f"s{n}", "pixels_sha256": f"p{n}"}


def test_journal_state_and_what_is_left() -> None:
    plan = _plan()
    records = {
        0: [{"e": "start"}, *(_frame(n) for n in (1001, 1002, 1003, 1005))],
        # chunk 1: all frames, but only one of its two cross-fade copies (head) is on disk
        1: [{"e": "head", "n": 1003}, *(_frame(n) for n in (1006, 1007, 1008, 1009)), _frame(1009, attempt=2)],
        2: [_frame(1010), _frame(1001)],  # a frame outside the chunk is ignored
    }
    xfade = {"e": "xfade", "n": 1003, "sha256": "x", "pixels_sha256": "px", "crossfade": {"with_chunk": 1}}
    state = JournalState.from_records(plan, chunk_records=records, driver_records=[xfade],
                                      heads=frozenset({(1, 1005)}))
    assert sorted(state.frames) == [1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010]
    assert state.frames[1009]["attempt"] == 2  # the latest record wins
    assert state.frames[1003]["sha256"] == "x" and state.frames[1003]["crossfade"] == {"with_chunk": 1}
    assert state.frames[1001]["sha256"] == "s1001"
    assert state.crossfaded == {1003}
    assert done_counts(plan, state) == {0: 4, 1: 4, 2: 1}
    # chunk 1's zone: 1003 is cross-faded already, 1005 has its head copy → done; chunk 2 is not
    assert finished_chunks(plan, state) == {0, 1}
    assert finished_chunks(plan, JournalState.from_records(plan, chunk_records=records)) == {0}
    assert finished_chunks(plan, JournalState()) == set()


def test_resources() -> None:
    assert resolve_resources(ray=None, threads=None, workers=None, cpus=8) == (8, 1)
    assert resolve_resources(ray=None, threads=2, workers=4, cpus=8) == (2, 1)
    assert resolve_resources(ray="local", threads=None, workers=None, cpus=8) == (1, 8)
    assert resolve_resources(ray="local", threads=None, workers=3, cpus=8) == (2, 3)
    assert resolve_resources(ray="local", threads=4, workers=None, cpus=8) == (4, 2)
    assert resolve_resources(ray="head:6379", threads=None, workers=None, cpus=8) == (1, 0)


def test_manifest_round_trip_keeps_order_and_unknown_keys() -> None:
    plan = _plan()
    layout = RenderLayout(manifest="m.json", work=".w", frames="out/sh.%04d.png", frames_final=True, bit_depth=16,
                          work_dtype="uint16", shot_first=1001)
    m = Manifest(
        vidstyle_version="1", status="running", created="c", updated="u", job_file=None, parameters={"seed": 5},
        parameter_sources={}, command="vidstyle render", model={"sha256": "abc"},
        shot=ShotRecord(input="in", kind="images", width=4, height=2, bit_depth=16, fps=None, timecode=None,
                        first=NUMBERS[0], last=NUMBERS[-1], count=len(NUMBERS), numbers=NUMBERS),
        output=OutputRecord(path="out/sh.%04d.png", kind="images", frames="out/sh.%04d.png", bit_depth=16,
                            dtype="uint16", codec=None),
        layout=layout, chunks=[ChunkRecord(chunk=c) for c in plan.chunks],
        runs=[RunRecord(started="s", resume=False, executor="local", address=None, workers=1, threads=2, host="h")],
    )
    data = m.to_json()
    assert list(data)[:4] == ["format", "vidstyle_version", "status", "created"]
    assert "encoder" not in data["output"] and "ended" not in data["runs"][0]
    assert data["chunks"][1]["crossfade_from"] == 1003 and data["chunks"][1]["status"] == "pending"
    data["future_key"] = {"x": 1}
    data["runs"][0]["note"] = "kept"
    back = Manifest.from_json(data)
    assert back.to_json() == data and list(back.to_json()) == list(data)
    assert [c.chunk for c in back.chunks] == list(plan.chunks)
    with pytest.raises(InvalidInputError, match="damaged"):
        Manifest.from_json({"format": data["format"]})


def test_a_sub_range_warms_up_on_the_frames_before_it() -> None:
    numbers = list(range(1010, 1031))
    c = plan_chunks(numbers, chunks=2, overlap=6, crossfade=2, lead_in=range(1001, 1010))
    assert (c[0].first, c[0].warmup_from, c[0].warmup, c[0].crossfade_from) == (1010, 1004, 6, None)
    assert (c[1].first, c[1].warmup_from, c[1].crossfade_from) == (1021, 1015, 1019)  # later chunks as before
    short = plan_chunks(numbers, overlap=6, lead_in=[1007, 1008, 1009])  # fewer frames before than the overlap
    assert (short[0].warmup_from, short[0].warmup) == (1007, 3)
    assert plan_chunks(numbers, overlap=0, lead_in=range(1001, 1010))[0].warmup_from == 1010
    with pytest.raises(InvalidOptionError):
        plan_chunks(numbers, overlap=6, lead_in=[1009, 1010])  # reaches into the shot
