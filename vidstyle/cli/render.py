"""``vidstyle render SHOT.toml``: render a film shot from a job file (resumable, deterministic, on Ray)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vidstyle.cli.common import add_command

EPILOG = """a job file (TOML), one per shot:
  input = "plates/sh010.%04d.exr"
  output = "styled/sh010.%04d.exr"
  frames = "1001-1240"
  backend = "feedforward"
  model = "starry_student"             # a shipped name, or a .safetensors file
  seed = 1234
  bit_depth = 32

examples:
  vidstyle render sh010.toml
  vidstyle render sh010.toml --resume                  # after a crash, kill or Ctrl-C
  vidstyle render sh010.toml --frames 1001-1100 --bit-depth 16 --output out/sh010.%04d.png
  vidstyle render sh010.toml --output sh010.mov --codec prores --preset 4444
  vidstyle render sh010.toml --patch --frames 1010-1030  # re-render a range and splice it in
  vidstyle render sh010.toml --ray                     # chunks in parallel on a local Ray
  vidstyle render sh010.toml --ray head-node:6379 --chunk-frames 48 --overlap 24

Every key of the file is also an option (--bit-depth for bit_depth) and the option wins. A manifest
(<output name>.manifest.json) records the parameters, model hash, and each frame's status, hash and
chunk; frames are written under temporary names and renamed, so none is ever half written.
"""


#: keyframe keys whose `vidstyle keyframes` flag means something else in a render (the style model, the stabiliser)
_RENAMED = ("keyframe_model", "keyframe_blend")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from vidstyle.options import add_arguments
    from vidstyle.render.job import JOB_GROUPS

    p = add_command(subparsers, "render", help="render a film shot from a TOML job (resumable, deterministic, on Ray)", description="Render a shot described by a TOML job file: exact frames, full bit depth, a manifest, " "resume after a crash, and chunks in parallel on Ray.", epilog=EPILOG)
    p.add_argument("job", metavar="SHOT.toml", help="the job file")
    p.add_argument("--resume", action="store_true",
                   help="continue the render recorded in the manifest, keeping its finished frames")
    p.add_argument("--patch", action="store_true",
                   help="re-render --frames FIRST-LAST of a finished image-sequence render (warming up on the "
                        "frames before them) and replace those frames in it, updating its manifest")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    from vidstyle.keyframes.options import KeyframeOptions

    for cls in JOB_GROUPS:  # every job key is also an option; the option wins over the file
        add_arguments(p, cls, exclude=("ray", *_RENAMED) if cls is KeyframeOptions else ("ray",), every=True)
    kf = p.add_argument_group("keyframes (render spellings: --model and --blend are taken)")
    kf.add_argument("--keyframe-model", dest="keyframe_model", default=None, metavar="PATH",
                    help="a keyframe network saved by `vidstyle keyframes --save-model` instead of training one")
    kf.add_argument("--keyframe-blend", dest="keyframe_blend", default=None, metavar="{joint,distance}",
                    help="joint: one network on all keyframes; distance: one per keyframe, blended by distance")
    ray = p.add_argument_group("chunks and Ray")
    ray.add_argument("--ray", dest="ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                     help="render the chunks on Ray: local (when given without ADDRESS; put it after SHOT.toml) "
                          "or host:port")
    p.add_argument("-y", dest="overwrite", action="store_const", const=True, help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from vidstyle.render.job import KEYS

    return {name: getattr(args, name) for name in KEYS if getattr(args, name, None) is not None}


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run(args: argparse.Namespace) -> int:
    from vidstyle.errors import VidstyleError
    from vidstyle.render.job import load_job
    from vidstyle.render.runner import render

    job = load_job(args.job, overrides=_overrides(args))

    bar: Any = None
    states: dict[int, str] = {}

    def progress(info: Any) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=info.total, initial=info.done, unit="frame", file=sys.stderr, dynamic_ncols=True,
                       smoothing=0.1, desc=os.path.basename(str(job.output)), leave=True)
        if len(info.chunks) > 1:
            for c in info.chunks:
                if states.get(c.id) != c.state:
                    states[c.id] = c.state
                    if c.state in ("running", "done", "failed", "retrying") and (job.ray or c.state != "running"):
                        extra = f" (attempt {c.attempts})" if c.attempts > 1 else ""
                        bar.write(f"vidstyle: chunk {c.id} frames {c.first}-{c.last}: {c.state}{extra}")
            marks = {"done": "✓", "failed": "✗", "retrying": "↻", "pending": "·"}
            post = " ".join(
                f"c{c.id}:{marks.get(c.state, f'{c.done}/{c.frames}')}" for c in info.chunks[:12]
            )
            bar.set_postfix_str(post + (f" {info.phase}" if info.phase != "render" else ""), refresh=False)
        elif info.phase != "render":
            bar.set_postfix_str(info.phase, refresh=False)
        bar.update(max(0, info.done - bar.n))

    def close_bar() -> None:
        if bar is not None:
            bar.close()

    resume_hint = job.command() + " --resume"  # repeats the command-line overrides
    try:
        result = render(job, resume=args.resume, patch=args.patch, progress=None if args.quiet else progress)
    except KeyboardInterrupt:
        close_bar()
        sys.stderr.write(f"vidstyle: interrupted; finished frames are kept; continue with: {resume_hint}\n")
        return 130
    except VidstyleError:
        close_bar()
        raise
    close_bar()
    for w in result.warnings:
        sys.stderr.write(f"vidstyle: warning: {w}\n")
    if result.failures:
        for f in result.failures:
            sys.stderr.write(f"vidstyle: failed: {f}\n")
        sys.stderr.write(
            f"vidstyle: error: {len(result.failures)} chunk(s) failed after their retries; "
            f"fix the cause and continue with: {resume_hint}\n"
        )
        return 1
    if not args.quiet and args.patch:
        sys.stderr.write(f"vidstyle: patched frames {job.frames[0]}-{job.frames[1]} of {result.output} "
                         f"({result.frames_rendered} frames in {_fmt_time(result.seconds)}); manifest {result.manifest}\n")
    elif not args.quiet:
        sys.stderr.write(
            f"vidstyle: rendered {result.output} — {result.frames} frames "
            f"({result.frames_rendered} this run) in {_fmt_time(result.seconds)} ({result.fps:.2f} fps), "
            f"{result.chunks} chunk(s), 0 failures; manifest {result.manifest}\n"
        )
    return 0
