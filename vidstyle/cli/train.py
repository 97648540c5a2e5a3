"""``vidstyle train``: train a feed-forward style network (see :mod:`vidstyle.train`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
import sys

EXAMPLES = """examples:
  vidstyle train --size student --style starry.jpg --content photos/ -o models/my_starry \\
      --vgg-weights vgg19_imagenet_conv1_1-conv3_4.safetensors   # the shipped models' recipe: minutes on a CPU
  vidstyle train ... --resume          # continue from models/my_starry.ckpt.safetensors
  vidstyle train ... --temporal-weight 10   # add the temporal (anti-flicker) loss
  vidstyle train --kind decoder --layer relu3_1 --content photos/ -o models/decoder_relu31 \\
      --vgg-weights vgg19_imagenet_conv1_1-conv3_4.safetensors   # arbitrary-style decoder (no style image)
  vidstyle train --kind student --content photos/ --style paintings/ -o models/student_relu31 \\
      --vgg-weights vgg19_imagenet_conv1_1-conv3_4.safetensors --time-budget 30   # the fast variant, distilled
"""


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(t) for t in text.split(",") if t)


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written, and every option's default shown."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from vidstyle.train_config import TrainConfig

    d = TrainConfig(style=("x",), content="", output="")
    p = sub.add_parser("train", help="train a feed-forward style network", epilog=EXAMPLES,
                       formatter_class=_Formatter,
                       description="Train a TransformerNet on a folder of photos with perceptual losses (Johnson et al.).")
    p.add_argument("--kind", choices=("style", "decoder", "student"), default="style",
                   help="style: a feed-forward network for the --style image(s); decoder: the decoder that inverts "
                        "VGG19 features at --layer, for arbitrary-style transfer (no style image); student: the fast "
                        "arbitrary-style encoder and decoder, distilled from VGG19 relu3_1 and --decoder, with the "
                        "--style paintings (files or folders) for its stylised term (default %(default)s)")
    p.add_argument("--decoder", default=None, metavar="NAME|PATH",
                   help="with --kind student: the teacher decoder (default: the shipped decoder_relu31)%(default).0s")
    p.add_argument("--held-out-styles", default=None, metavar="A.jpg,B.jpg",
                   help="with --kind student: paintings (file names) kept out of training to measure on (default: "
                        "hokusai_great_wave.jpg,munch_the_scream.jpg)%(default).0s")
    p.add_argument("--width", type=int, default=None,
                   help="with --kind student: channels of the student's body (default 48: 1.48 GFLOP per 640x360 "
                        "frame)%(default).0s")
    p.add_argument("--layer", choices=("relu3_1", "relu2_1", "relu1_1"), default="relu3_1",
                   help="with --kind decoder: the VGG19 layer whose features the decoder inverts (default %(default)s)")
    which = p.add_mutually_exclusive_group(required=False)
    which.add_argument("--style", action="append", default=None,
                   help="style image (repeat to blend several into one style, or with --multi-style to learn each)")
    p.add_argument("--multi-style", action="store_true",
                   help="one network for all --style images (conditional instance norm, Dumoulin et al.); "
                        "select and mix them with `vidstyle stylize --style-mix`")
    which.add_argument("--add-style", action="append", default=None, metavar="PAINTING",
                   help="add a style to the multi-style model given by --init: only its (γ, β) are trained "
                        "(minutes on a CPU); repeatable")
    which.add_argument("--tune-style", action="append", default=None, metavar="PAINTING",
                   help="train further a style the multi-style model given by --init already has (the painting's file "
                        "name, or --style-names, names it): only that style's rows learn, the other styles stay "
                        "bit-identical; repeatable")
    p.add_argument("--style-names", default=None, metavar="A,B,...",
                   help="names of the styles of a multi-style model (default: the image file names)")
    p.add_argument("--style-repeats", default=None, metavar="NAME=N,...",
                   help="with --multi-style: train these paintings N times per cycle instead of once (names as "
                        "--style-names gives them, or the file names), for paintings that need more iterations than "
                        "their share; with --size student the recipe's iterations count them (300 per batch of a cycle)")
    p.add_argument("--style-lattice", default=None, metavar="NAME=W,...",
                   help="with --multi-style: the lattice weight of these paintings instead of --lattice-weight (names "
                        "as for --style-repeats), e.g. wave=0 for a painting whose line work sits on the grid")
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="stop after this many minutes and save the model as it is (default: run every iteration)")
    p.add_argument("--style-mix", type=_floats, default=None, help="comma-separated weights of the style images")
    p.add_argument("--content", required=True, help="folder of content photos")
    p.add_argument("-o", "--output", required=True, help="output model path without extension (writes .safetensors, .md, .json)")
    p.add_argument("--name", default=None, help="model name (default: output file name)")
    p.add_argument("--size", default=None,
                   help="network size: tiny (real time on a CPU), small, full (Johnson et al.), tiny_pyramid "
                        "(the earlier tiny layout), or student: fine-tune the fast arbitrary-style student for this "
                        "one painting (--init STUDENT, default the shipped one; minutes instead of hours on a CPU; "
                        "with --multi-style one network for all --style paintings; its options default to the "
                        "measured recipe: 300 iterations per painting, --batch-size 2, --style-size 512, "
                        "--style-reduction sum, --style-weight 1e-3, --tv-weight 10, --lr 1e-3) "
                        f"(default {d.size}; student for --add-style or --tune-style with a multi-style student)")
    p.add_argument("--image-size", type=int, default=d.image_size, help="training crop size in pixels (default %(default)s)")
    p.add_argument("--style-size", type=int, default=d.style_size, help="longer side of the style image: the brush size (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--iterations", type=int, default=d.iterations)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-decay", type=float, default=d.lr_decay, metavar="FRACTION",
                   help="decay the rate (cosine) over this last fraction of --iterations, to --lr-final x --lr: 0 keeps it "
                        "constant, 1 decays over the whole run; a decay at the end settles a multi-style network's "
                        "shared decoder (default %(default)s)")
    p.add_argument("--lr-final", type=float, default=d.lr_final, metavar="FACTOR",
                   help="the last iteration's rate as a fraction of --lr, with --lr-decay (default %(default)s)")
    p.add_argument("--content-weight", type=float, default=d.content_weight)
    p.add_argument("--style-weight", type=float, default=d.style_weight,
                   help="weight of the Gram style loss; with --kind student: of the Gram (texture) term between the "
                        "student's and the teacher's stylised outputs (default 1e-3 there)")
    p.add_argument("--tv-weight", type=float, default=d.tv_weight)
    p.add_argument("--temporal-weight", type=float, default=d.temporal_weight,
                   help="weight of the output-consistency loss on synthetic frame pairs (0 = off)")
    p.add_argument("--lattice-weight", type=float, default=None,
                   help="weight of the lattice loss: the output's fine strokes equally strong at every position of "
                        "the 4×4 grid a student's output layer paints, so they do not line up on it (0 = off; "
                        "default 1e6 with --size student, 0 otherwise)")
    p.add_argument("--style-reduction", choices=("mean", "sum"), default=d.style_reduction,
                   help="per-layer Gram distance: mean of the squared entries, or sum (the standard form of Gatys "
                        "and Johnson, which weighs deep layers, where motifs live, more) (default %(default)s)")
    p.add_argument("--style-loss", default=d.style_loss, metavar="LOSS",
                   help="gram (default), mmd-linear, mmd-poly, mmd-gaussian (Li et al. 2017) or bn (channel mean and "
                        "std); mrf is for `vidstyle image` and --backend optim")
    p.add_argument("--content-layer", default=d.content_layer)
    p.add_argument("--style-layers", default=",".join(d.style_layers), help="comma-separated VGG19 layers")
    p.add_argument("--vgg-weights", default=None,
                   help="local VGG19 weights file, or 'torchvision' to download (default: $VIDSTYLE_VGG_WEIGHTS or torchvision)")
    p.add_argument("--vgg-convention", choices=["caffe", "torchvision"], default=None,
                   help="input convention of a local VGG file whose metadata does not say")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="start from this trained model (name or .safetensors of the same --size; with --kind student, "
                        "a student of the same --width; with --size student, the student to fine-tune): fine-tuning")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint next to the output")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, mps)")
    p.add_argument("--max-images", type=int, default=None, help="use only the first N content images")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    for action in p._actions:  # ArgumentDefaultsHelpFormatter shows a default only next to a help text
        if action.help is None:
            action.help = "(default: %(default)s)"
    p.set_defaults(func=run, train_parser=p)


def _progress_bar(total: int | None, quiet: bool):  # noqa: ANN202
    """A tqdm bar (or a line every 100 iterations without tqdm); ``total`` None: counted, no end (a time budget)."""
    try:
        from tqdm import tqdm
    except ImportError:  # a bare machine (e.g. a lent GPU with torch only): a line every 100 iterations
        tqdm = None
    bar = None if quiet or tqdm is None else tqdm(total=total, unit="it", file=sys.stderr, dynamic_ncols=True)

    def progress(p):  # noqa: ANN001
        if bar is None and tqdm is None and not quiet and p.iteration % 100 == 0:
            sys.stderr.write(f"{p.iteration}{'' if total is None else f'/{total}'} it, {p.elapsed:.0f} s: "
                             + ", ".join(f"{k} {v:.4g}" for k, v in p.losses.items()) + "\n")
        if bar is not None:
            bar.n = p.iteration
            bar.set_postfix({k: f"{v:.3g}" for k, v in p.losses.items() if k != "total" and v}, refresh=False)
            bar.refresh()

    return bar, progress


def _style_default(name: str) -> object:
    import dataclasses

    from vidstyle.train_config import TrainConfig

    return next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)


def run_decoder(args: argparse.Namespace) -> int:
    from vidstyle.options.spec import OptionValueError
    from vidstyle.train_decoder import DecoderTrainConfig, train_decoder

    if args.style or args.add_style or args.tune_style:
        raise OptionValueError("style", "a decoder is trained on photos only (kind decoder): drop `style`",
                               also=("add_style", "tune_style"))
    config = DecoderTrainConfig(
        content=args.content, output=args.output, name=args.name, layer=args.layer, image_size=args.image_size,
        batch_size=args.batch_size, iterations=args.iterations, lr_decay=args.lr_decay, lr_final=args.lr_final,
        **({} if args.lr == _style_default("lr") else {"lr": args.lr}),  # a decoder's own default lr
        vgg_weights=args.vgg_weights, vgg_convention=args.vgg_convention, seed=args.seed,
        checkpoint_every=args.checkpoint_every, threads=args.threads, max_images=args.max_images,
        time_budget=None if args.time_budget is None else args.time_budget * 60.0,
    )
    result = _run_training(train_decoder, config, args)
    if result is None:
        return 130
    psnr = "n/a" if result.psnr is None else f"{result.psnr:.2f} dB"
    print(f"decoder: {result.model_path}\ncard: {result.card_path}\n"
          f"{result.iterations} iterations in {result.seconds / 60:.1f} min; held-out PSNR {psnr}; final losses "
          + ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items()))
    return 0


def run_student(args: argparse.Namespace) -> int:
    import dataclasses

    from vidstyle.options.spec import OptionValueError
    from vidstyle.train_student import StudentTrainConfig, train_student

    if args.add_style or args.tune_style or args.multi_style:
        raise OptionValueError("add_style", "a student is distilled for any painting (`kind` student): drop `add_style`, "
                                            "`tune_style` and `multi_style`", also=("tune_style", "multi_style", "kind"))
    if not args.style:
        raise OptionValueError("style", "`kind` student needs paintings for its stylised term: add `style` FOLDER "
                                        "(or painting files)", also=("kind",))
    own = {f.name: f.default for f in dataclasses.fields(StudentTrainConfig)}
    mine = {k: getattr(args, k) for k in ("lr", "batch_size", "iterations", "image_size")
            if getattr(args, k) != _style_default(k)}  # the student's own defaults unless given
    if args.style_size != _style_default("style_size"):
        mine["style_size"] = args.style_size
    if args.width is not None:
        mine["width"] = args.width
    if args.style_weight != _style_default("style_weight"):
        mine["texture_weight"] = args.style_weight
    if args.init is not None:
        mine["init"] = args.init
    if args.held_out_styles is not None:
        mine["held_out_styles"] = tuple(n.strip() for n in args.held_out_styles.split(",") if n.strip())
    config = StudentTrainConfig(
        content=args.content, style=tuple(args.style), output=args.output, name=args.name, decoder=args.decoder,
        vgg_weights=args.vgg_weights, vgg_convention=args.vgg_convention, seed=args.seed,
        checkpoint_every=args.checkpoint_every, threads=args.threads, max_images=args.max_images,
        time_budget=None if args.time_budget is None else args.time_budget * 60.0,
        lr_decay=args.lr_decay, lr_final=args.lr_final,
        **{k: v for k, v in mine.items() if k in own},
    )
    config.validate()  # a bad option is one line, before the progress bar appears
    result = _run_training(train_student, config, args)
    if result is None:
        return 130

    def db(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} dB"

    print(f"student: {result.model_path}\ncard: {result.card_path}\n"
          f"{result.iterations} iterations in {result.seconds / 60:.1f} min; held-out PSNR {db(result.psnr)}, "
          f"stylised PSNR vs the VGG variant {db(result.stylised_psnr)}; final losses "
          + ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items()))
    return 0


def run(args: argparse.Namespace) -> int:
    from vidstyle.train import TrainConfig, train

    if args.kind == "decoder":
        return run_decoder(args)
    if args.kind == "student":
        return run_student(args)
    if args.decoder is not None or args.held_out_styles is not None or args.width is not None:
        from vidstyle.options.spec import OptionValueError

        raise OptionValueError("decoder", "`decoder`, `held_out_styles` and `width` are for `kind` student",
                               also=("held_out_styles", "width", "kind"))
    if not (args.style or args.add_style or args.tune_style):  # what argparse said when one of them was required
        args.train_parser.error("one of the arguments --style --add-style --tune-style is required (or --kind decoder)")

    size = args.size
    if size is None:  # --add-style or --tune-style with a multi-style student: its size is the student's
        from vidstyle.nets.registry import STUDENT_MULTISTYLE, architecture_of
        from vidstyle.train_plan import STUDENT_SIZE

        student = bool((args.add_style or args.tune_style) and args.init
                       and architecture_of(args.init) == STUDENT_MULTISTYLE)
        size = STUDENT_SIZE if student else TrainConfig.__dataclass_fields__["size"].default
    names = tuple(n.strip() for n in args.style_names.split(",")) if args.style_names else None
    repeats = _style_repeats(args.style_repeats, names or tuple(Path(f).stem for f in args.style or ()))
    _student_recipe(args, size, batches=sum(repeats) if repeats else None)
    lattice = _style_default("lattice_weight") if args.lattice_weight is None else args.lattice_weight
    per_style_lattice = _style_lattice(args.style_lattice, names or tuple(Path(f).stem for f in args.style or ()),
                                       default=lattice)
    config = TrainConfig(
        style=tuple(args.add_style or args.tune_style or args.style or ()), style_mix=args.style_mix,
        multi_style=args.multi_style, add_style=bool(args.add_style), tune_style=bool(args.tune_style),
        style_names=names, style_repeats=repeats,
        time_budget=None if args.time_budget is None else args.time_budget * 60.0, content=args.content, output=args.output, name=args.name,
        size=size, image_size=args.image_size, style_size=args.style_size, batch_size=args.batch_size,
        iterations=args.iterations, lr=args.lr, content_weight=args.content_weight, style_weight=args.style_weight,
        tv_weight=args.tv_weight, temporal_weight=args.temporal_weight,
        lattice_weight=lattice, style_lattice=per_style_lattice,
        content_layer=args.content_layer,
        style_layers=tuple(s for s in args.style_layers.split(",") if s), vgg_weights=args.vgg_weights,
        vgg_convention=args.vgg_convention, seed=args.seed, checkpoint_every=args.checkpoint_every,
        threads=args.threads, max_images=args.max_images, init=args.init, style_reduction=args.style_reduction,
        style_loss=args.style_loss, lr_decay=args.lr_decay, lr_final=args.lr_final,
    )
    config.validate()  # a bad option is one line, before the progress bar appears
    result = _run_training(train, config, args)
    if result is None:
        return 130
    print(f"model: {result.model_path}\ncard: {result.card_path}\n"
          f"{result.iterations} iterations in {result.seconds / 60:.1f} min; final losses "
          + ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items()))
    return 0


#: ``--iterations`` of a ``--size student`` run with a ``--time-budget`` and no ``--iterations``: the budget decides
UNTIL_BUDGET = 1_000_000


def _style_repeats(text: str | None, names: tuple[str, ...]) -> tuple[int, ...] | None:
    """``--style-repeats wave=2,kandinsky=2`` as one count per painting (1 for those not named)."""
    return _per_style("style_repeats", text, names, default=1, convert=int, form="N with N a whole number")


def _style_lattice(text: str | None, names: tuple[str, ...], *, default: float) -> tuple[float, ...] | None:
    """``--style-lattice wave=0,kandinsky=0`` as one lattice weight per painting (``default`` for those not named)."""
    return _per_style("style_lattice", text, names, default=float(default), convert=float, form="W with W a number")


def _per_style(parameter: str, text: str | None, names: tuple[str, ...], *, default: Any, convert: Any,
               form: str) -> tuple[Any, ...] | None:
    """``NAME=VALUE,...`` as one value per painting, in ``names``' order (``default`` for those not named)."""
    from vidstyle.options.spec import OptionValueError

    if text is None:
        return None
    values = dict.fromkeys(names, default)
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, value = item.partition("=")
        if name.strip() not in values:
            raise OptionValueError(parameter, f"{parameter} names {name.strip()!r}, which is not among the "
                                              f"styles: {', '.join(names) or 'none'}", also=("style_names",))
        try:
            values[name.strip()] = convert(value)
        except ValueError:
            raise OptionValueError(parameter, f"{parameter} takes NAME={form}, got {item!r}") from None
    return tuple(values[n] for n in names)


#: options whose flag defaults to None, so that the recipe can tell a value given from one left out
_NONE_UNTIL_GIVEN = frozenset({"lattice_weight"})


def _student_recipe(args: argparse.Namespace, size: str, *, batches: int | None = None) -> None:
    """``size`` student: the measured recipe (:func:`vidstyle.train_plan.student_recipe`) for every option of it left at
    its default, so ``vidstyle train --size student --style P --content D -o OUT`` trains what the shipped models are;
    with ``--time-budget``, as many iterations as the budget allows."""
    from vidstyle.train_plan import STUDENT_SIZE, student_recipe

    if size != STUDENT_SIZE:
        return
    recipe = student_recipe(styles=batches or len(args.add_style or args.tune_style or args.style or ()) or 1)
    if args.time_budget is not None:  # train until the budget unless --iterations says otherwise
        recipe["iterations"] = UNTIL_BUDGET
    for key, value in recipe.items():
        said = getattr(args, key)
        # a flag whose default is None was given exactly when it is not None (``--lattice-weight 0`` stays 0); for
        # the others a value equal to the default counts as not given
        if said is None if key in _NONE_UNTIL_GIVEN else said == _style_default(key):
            setattr(args, key, value)


def _run_training(fn: Any, config: Any, args: argparse.Namespace) -> Any:
    """Run a training (``train`` or ``train_decoder``) with a progress bar; ``None`` after Ctrl-C, when the
    user has been told where the checkpoint is and how to continue."""
    until_budget = getattr(config, "time_budget", None) is not None and config.iterations >= UNTIL_BUDGET
    bar, progress = _progress_bar(None if until_budget else config.iterations, args.quiet)
    try:
        return fn(config=config, resume=args.resume, progress=progress, device=args.device)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
            bar = None
        _interrupted(config.output, args.argv)
        return None
    finally:
        if bar is not None:
            bar.close()


def _interrupted(output: str, argv: list[str]) -> None:
    """Ctrl-C: say where the last checkpoint is and how to continue."""
    import shlex
    from pathlib import Path

    out = Path(output)
    out = out.with_suffix("") if out.suffix == ".safetensors" else out
    ckpt = out.with_name(out.name + ".ckpt.safetensors")
    words = ["vidstyle", *argv]
    if "--resume" not in words:
        words.append("--resume")
    if ckpt.is_file():
        sys.stderr.write(f"vidstyle: interrupted; the last checkpoint is {ckpt}; continue with: {shlex.join(words)}\n")
    else:
        sys.stderr.write("vidstyle: interrupted before the first checkpoint; nothing to resume from\n")
