"""Fuzz the decode path: mutated videos, pictures, image sequences and model files through `vidstyle stylize`.

Every case must end in **correct output** (exit 0, the output decodes, nothing else left in the output
folder) or a **clean error** (exit ≠ 0, exactly one ``vidstyle: error: ...`` line, no traceback, no
file left behind — a partial output the error line names counts as announced, not as left behind).
Anything else is a failure: a traceback, a crash (the process dies of a signal: a segfault in FFmpeg),
a hang (no answer within ``--timeout``), more than one error line, or a silent leftover.

Cases are made from seed files by a seeded RNG (``--seed``), so a run is reproducible:

* seeds: the project's ``samples/clip.mp4`` and, when ``../shared/data`` is there, ``realshort.mp4``
  (AAC audio), ``cockatoo_60f.mp4``, a Middlebury PNG frame, a content JPEG, a 4-frame PNG sequence and a
  tiny model file (``--model`` is fuzzed with an intact clip);
* mutations: ``truncate`` (cut at a random point), ``flip`` (1–64 random bytes changed), ``header``
  (bytes of the first KiB changed), ``zero_block`` (a block zeroed, as a lost sector), ``insert``
  (random bytes inserted), ``zero_length`` and ``wrong_ext`` (intact content under another type's
  extension).

Each case runs in a worker subprocess that imports vidstyle once and calls ``vidstyle.cli.main.main``
with the case's arguments, its stderr captured at the file-descriptor level (FFmpeg's own messages
included). A crash or a hang kills only the worker: the case is recorded and a new worker takes the
next case. Run it niced:

    nice -n 10 python scripts/fuzz_decode.py --cases 500 --seed 17 --workers 3 --report /tmp/fuzz.json

It prints a table (cases, correct outputs, clean errors, tracebacks, crashes, hangs, other failures,
and ``noise``: cases whose stderr also has lines that are not vidstyle's, e.g. libpng's own messages)
per seed kind and mutation, and the failing cases with their files kept under ``--keep``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
MUTATIONS = ("truncate", "flip", "header", "zero_block", "insert", "zero_length", "wrong_ext")


@dataclass
class Case:
    index: int
    seed_kind: str  # video, picture, sequence, model
    seed_file: str
    mutation: str
    argv: list[str]
    inputs: list[str]  # files made for the case (removed afterwards unless it fails)
    out_dir: str
    output: str


@dataclass
class Outcome:
    case: int
    seed_kind: str
    seed_file: str
    mutation: str
    verdict: str  # output, error, traceback, crash, hang, bad
    code: int | None
    stderr: str
    why: str = ""
    seconds: float = 0.0
    files_left: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ seeds
def seeds(work: Path, model: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {"video": [REPO / "samples" / "clip.mp4"], "picture": [], "sequence": [],
                                  "model": [model]}
    video = SHARED / "video"
    if video.is_dir():  # realshort (36 small frames, with audio) three times as often as the larger two
        out["video"] += [video / "realshort.mp4"] * 3 + [video / "cockatoo_60f.mp4"]
        frames = sorted((video / "middlebury_rubberwhale").glob("*.png"))
        if frames:
            out["picture"].append(frames[0])
            seq = work / "seed_sequence"
            seq.mkdir(exist_ok=True)
            for i, f in enumerate(frames[:4]):
                shutil.copy(f, seq / f"{i + 1:04d}.png")
            out["sequence"].append(seq)
    content = SHARED / "content"
    if content.is_dir():
        jpgs = sorted(content.glob("*.jpg"))
        if jpgs:
            out["picture"].append(jpgs[0])
    return {k: [p for p in v if p.exists()] for k, v in out.items() if v}


def make_model(path: Path) -> Path:
    import torch

    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    torch.manual_seed(0)
    return save_model(path, net=TransformerNet(config="tiny"), name="fuzz_tiny", style="noise")


def mutate(data: bytes, mutation: str, rng: random.Random) -> bytes:
    n = len(data)
    if mutation == "truncate":
        return data[: rng.randrange(0, max(1, n))]
    if mutation == "flip":
        b = bytearray(data)
        for _ in range(rng.randint(1, 64)):
            b[rng.randrange(n)] = rng.randrange(256)
        return bytes(b)
    if mutation == "header":
        b = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            b[rng.randrange(min(n, 1024))] = rng.randrange(256)
        return bytes(b)
    if mutation == "zero_block":
        start = rng.randrange(n)
        size = rng.choice((512, 4096, 32768))
        return data[:start] + bytes(min(size, n - start)) + data[start + size:]
    if mutation == "insert":
        at = rng.randrange(n)
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 256))) + data[at:]
    if mutation == "zero_length":
        return b""
    return data  # wrong_ext: the content is intact


_OTHER_EXT = {".mp4": [".png", ".jpg", ".mkv", ".avi"], ".png": [".mp4", ".jpg", ".exr", ".tif"],
              ".jpg": [".png", ".mkv", ".webp"], ".safetensors": [".pt", ".png"]}


def make_case(index: int, kind: str, seed: Path, mutation: str, rng: random.Random, work: Path,
              model: Path, clip: Path) -> Case:
    case_dir = work / f"case{index:04d}"
    in_dir, out_dir = case_dir / "in", case_dir / "out"
    in_dir.mkdir(parents=True)
    out_dir.mkdir()
    common = ["--stabilize", "0", "--preset", "ultrafast", "--threads", "1", "-q"]
    # videos are stylized in part (--end), to bound the time a case takes on a busy machine: the whole
    # file is still opened and indexed (MP4's index, Matroska's cues), and the mutation lands anywhere in it
    limit = {"clip.mp4": ["--end", "12f"], "cockatoo_60f.mp4": ["--end", "6f"],
             "realshort.mp4": ["--end", "18f"]}.get(seed.name, [])
    if kind == "sequence":
        frames = sorted(seed.glob("*.png"))
        victim = rng.randrange(len(frames))
        ext = ".png"
        for i, f in enumerate(frames):
            data = f.read_bytes()
            if i == victim:
                data = mutate(data, mutation, rng)
            name = f"{i + 1:04d}.png"
            if i == victim and mutation == "wrong_ext":
                ext = rng.choice(_OTHER_EXT[".png"])
                name = f"{i + 1:04d}{ext}"
            (in_dir / name).write_bytes(data)
        output = str(out_dir / "%04d.png")
        argv = ["stylize", str(in_dir / "%04d.png"), "-o", output, "--model", str(model), *common]
        return Case(index, kind, seed.name, mutation, argv, [str(in_dir)], str(out_dir), output)
    ext = seed.suffix.lower()
    data = mutate(seed.read_bytes(), mutation, rng)
    if mutation == "wrong_ext":
        ext = rng.choice(_OTHER_EXT.get(ext, [".bin"]))
    target = in_dir / f"{seed.stem}{ext}"
    target.write_bytes(data)
    if kind == "model":
        output = str(out_dir / "o.mp4")
        argv = ["stylize", str(clip), "-o", output, "--model", str(target), *common, "--end", "6f"]
    elif kind == "picture":
        output = str(out_dir / "o.png")
        argv = ["stylize", str(target), "-o", output, "--model", str(model), *common]
    else:
        output = str(out_dir / "o.mp4")
        argv = ["stylize", str(target), "-o", output, "--model", str(model), *common, *limit]
    return Case(index, kind, seed.name, mutation, argv, [str(target)], str(out_dir), output)


# ------------------------------------------------------------------------------------------------ worker
def worker() -> None:
    """Read one case (JSON) per line on stdin, run it, answer one JSON line on stdout."""
    import traceback

    from vidstyle.cli.main import main

    answer = os.fdopen(os.dup(1), "w")  # fd 1 and 2 are redirected per case
    for line in sys.stdin:
        case = json.loads(line)
        log = tempfile.TemporaryFile()
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            try:
                code = main(case["argv"])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:  # noqa: BLE001 - what the user would see: a traceback
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
        log.close()
        playable = None
        if code == 0:
            playable = _plays(case["output"])
        answer.write(json.dumps({"code": code, "stderr": text, "plays": playable}) + "\n")
        answer.flush()


def _plays(output: str) -> str | None:
    """None when the output reads back (every frame of an image sequence, a video's frames), else why not."""
    import glob

    import av

    try:
        if "%" in output:
            files = sorted(glob.glob(output.replace("%04d", "*")))
            if not files:
                return "no frames written"
            for f in files:
                with av.open(f) as c:
                    next(c.decode(video=0))
            return None
        with av.open(output) as c:
            if sum(1 for _ in c.decode(video=0)) == 0:
                return "no frames"
        return None
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"


class Worker:
    def __init__(self, nice: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("VIDSTYLE_DEBUG", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=env, preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )

    def run(self, case: Case, timeout: float) -> tuple[str, dict | None]:
        """("ok", answer) | ("crash", {"code": -signal}) | ("hang", None)."""
        import selectors

        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"argv": case.argv, "output": case.output}) + "\n")
        self.proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.kill()
            return "hang", None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(10)
            return "crash", {"code": code}
        return "ok", json.loads(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc.poll() is None


def judge(case: Case, status: str, answer: dict | None, seconds: float) -> Outcome:
    out_dir = Path(case.out_dir)
    left = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    base = dict(case=case.index, seed_kind=case.seed_kind, seed_file=case.seed_file, mutation=case.mutation,
                seconds=round(seconds, 2), files_left=left)
    if status == "hang":
        return Outcome(verdict="hang", code=None, stderr="", why="no answer within the timeout", **base)
    if status == "crash":
        return Outcome(verdict="crash", code=answer["code"] if answer else None, stderr="",
                       why=f"the process died (exit {answer and answer['code']})", **base)
    assert answer is not None
    code, err = answer["code"], answer["stderr"]
    if "Traceback (most recent call last)" in err:
        return Outcome(verdict="traceback", code=code, stderr=err, **base)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code == 0:
        if answer["plays"] is not None:
            return Outcome(verdict="bad", code=code, stderr=err, why=f"exit 0 but the output does not read: "
                           f"{answer['plays']}", **base)
        extra = [f for f in left if ".partial." in f]
        if extra:
            return Outcome(verdict="bad", code=code, stderr=err, why=f"temporary files left: {extra}", **base)
        return Outcome(verdict="output", code=code, stderr=err, **base)
    errors = [ln for ln in lines if ln.startswith("vidstyle: error: ")]
    if len(errors) != 1:
        return Outcome(verdict="bad", code=code, stderr=err, why=f"{len(errors)} error lines", **base)
    silent = [f for f in left if not _named(os.path.join(case.out_dir, f), err)]
    if silent:
        return Outcome(verdict="bad", code=code, stderr=err, why=f"files left and not named: {silent}", **base)
    return Outcome(verdict="error", code=code, stderr=err, **base)


def _named(path: str, text: str) -> bool:
    """``path`` is named in ``text``, itself or by a frame-number pattern (``out/%04d.png``) it matches."""
    import re

    if path in text:
        return True
    for word in re.findall(r"\S*%0?\d*d\S*", text):
        parts = re.split(r"%0?\d*d", word.strip("'\";,"), maxsplit=1)
        if len(parts) == 2 and re.fullmatch(re.escape(parts[0]) + r"\d+" + re.escape(parts[1]), path):
            return True
    return False


# ------------------------------------------------------------------------------------------------ driver
def run_cases(*, n: int, seed: int, work: Path, timeout: float, nice: int, keep: Path | None,
              kinds: list[str] | None = None, verbose: bool = False, workers: int = 1) -> list[Outcome]:
    """Make and run ``n`` cases; ``workers`` worker processes take them in turn. The cases are made in
    index order from one seeded RNG, so the set of cases does not depend on ``workers``."""
    import threading

    rng = random.Random(seed)
    model = make_model(work / "fuzz_tiny.safetensors")
    pool = seeds(work, model)
    if kinds:
        pool = {k: v for k, v in pool.items() if k in kinds}
    clip = REPO / "samples" / "clip.mp4"
    weights = {"video": 5, "picture": 2, "sequence": 2, "model": 1}
    kinds_list = [k for k in pool for _ in range(weights[k])]
    results: dict[int, Outcome] = {}
    lock = threading.Lock()
    next_index = [0]

    def next_case() -> Case | None:
        with lock:  # one RNG, used in index order
            i = next_index[0]
            if i >= n:
                return None
            next_index[0] += 1
            kind = rng.choice(kinds_list)
            seed_file = rng.choice(pool[kind])
            mutation = rng.choice(MUTATIONS)
            return make_case(i, kind, seed_file, mutation, rng, work, model, clip)

    def run_worker() -> None:
        w = Worker(nice)
        try:
            while (case := next_case()) is not None:
                if not w.alive():
                    w = Worker(nice)
                t0 = time.monotonic()
                status, answer = w.run(case, timeout)
                outcome = judge(case, status, answer, time.monotonic() - t0)
                if status != "ok":
                    w = Worker(nice)
                failed = outcome.verdict not in ("output", "error")
                if failed and keep is not None:
                    shutil.copytree(Path(case.out_dir).parent, keep / f"case{case.index:04d}", dirs_exist_ok=True)
                shutil.rmtree(Path(case.out_dir).parent, ignore_errors=True)
                with lock:
                    results[case.index] = outcome
                    done = len(results)
                if verbose or failed:
                    first = outcome.stderr.strip().splitlines()[:1]
                    print(f"[{done}/{n}] case {case.index} {case.seed_kind}:{case.seed_file} {case.mutation}: "
                          f"{outcome.verdict} {outcome.why} {first[0][:160] if first else ''}", file=sys.stderr,
                          flush=True)
        finally:
            w.kill()

    threads = [threading.Thread(target=run_worker, daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[i] for i in sorted(results)]


def table(results: list[Outcome]) -> str:
    cols = ("output", "error", "traceback", "crash", "hang", "bad", "noise")
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        noisy = any(ln.strip() and not ln.startswith("vidstyle") for ln in r.stderr.splitlines())
        for key in (f"{r.seed_kind} / {r.mutation}", "all"):
            rows[key][r.verdict] += 1
            rows[key]["noise"] += noisy
    head = f"{'seed kind / mutation':28} {'cases':>6} " + " ".join(f"{c:>9}" for c in cols)
    lines = [head, "-" * len(head)]
    for key in sorted(k for k in rows if k != "all") + ["all"]:
        c = rows[key]
        cases = sum(c[v] for v in cols if v != "noise")  # noise is a property of some cases, not a verdict
        lines.append(f"{key:28} {cases:6d} " + " ".join(f"{c[v]:9d}" for v in cols))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds a case may take before it counts as a hang")
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1, help="worker processes running cases side by side")
    ap.add_argument("--kinds", default=None, help="only these seed kinds (video,picture,sequence,model)")
    ap.add_argument("--keep", default=None, help="copy the files of failing cases here")
    ap.add_argument("--report", default=None, help="write every outcome as JSON here")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker()
        return 0
    sys.path.insert(0, str(REPO))
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vidstyle_fuzz_") as tmp:
        results = run_cases(n=args.cases, seed=args.seed, work=Path(tmp), timeout=args.timeout, nice=args.nice,
                            keep=keep, kinds=args.kinds.split(",") if args.kinds else None, verbose=args.verbose,
                            workers=args.workers)
    print(table(results))
    print(f"{len(results)} cases in {time.monotonic() - t0:.0f} s (seed {args.seed})")
    if args.report:
        Path(args.report).write_text(json.dumps([asdict(r) for r in results], indent=1))
    failures = [r for r in results if r.verdict not in ("output", "error")]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
