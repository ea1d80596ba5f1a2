"""``liif``: train on a folder, upscale an image, evaluate a model on a folder, inspect a checkpoint.

Bad input (a ``UserError``) or a full disk ends with one line on stderr and exit status 2, never a
traceback and never a partial output file; any other error is a bug and keeps its traceback (exit 1).

A checkpoint of one grey channel (``model.channels: 1``) reads every image as grey by the one rule of
``liif.images.to_grey`` (colour reduced to BT.601 luma, with a notice), writes grey files and scores grey.
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

import torch

from liif.device import resolve_device
from liif.errors import UserError, explain, report_bug
from liif.eval.render import DEFAULT_CHUNK, DEFAULT_TILE, output_size, render_image
from liif.eval.scores import evaluate_pairs
from liif.images import GREY_RULE, check_output_path, image_size, list_images, load_image, save_image
from liif.metrics import PROTOCOLS
from liif.models import Bicubic
from liif.models.checkpoint import count_parameters, load_checkpoint
from liif.train.standalone import PROJECT_PARAMS, train_on_folder, work_folder


class UsageError(UserError):
    pass


def parse_scale(text: str) -> float | tuple[float, float]:
    """``3.5`` (both axes) or ``2x3`` (height x width)."""
    parts = re.split(r"[x,]", text.strip().lower())
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--scale {text!r}: expected a number like 3.5 or HxW factors like 2x3") from None
    if len(values) not in (1, 2) or not all(v > 0 and v < float("inf") for v in values):
        raise UsageError(f"--scale {text!r}: scale factors must be positive numbers")
    if min(values) < 1:
        raise UsageError(
            f"--scale {text!r}: factors below 1 would shrink the image; liif up-samples (factors of 1 or more)"
        )
    return values[0] if len(values) == 1 else (values[0], values[1])


def parse_size(text: str) -> tuple[int, int]:
    """``1080x1920`` = height x width."""
    match = re.fullmatch(r"\s*(\d+)\s*[x,]\s*(\d+)\s*", text)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise UsageError(f"--size {text!r}: expected HEIGHTxWIDTH with positive integers, e.g. 1080x1920")
    return int(match[1]), int(match[2])


def load_model(checkpoint: str):
    if checkpoint == Bicubic.name:
        return Bicubic(), {"format": "builtin", "spec": {"name": Bicubic.name, "args": {}}}
    return load_checkpoint(checkpoint, device="cpu")


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def training_progress(raw: dict) -> tuple[str, bool]:
    """A liif-repro checkpoint's epoch as ``liif info`` prints it ("21 of 300 (unfinished)") and whether its
    training stopped before the configured epochs; other files give their epoch alone, or "unknown"."""
    state = raw.get("train_state") if raw.get("format") == "liif-repro" else None
    if state is not None and not isinstance(state, dict):
        return f"unknown (train_state is a {type(state).__name__}, not a mapping)", False
    epoch = state.get("epoch") if state else raw.get("epoch")
    if epoch is None:
        return "unknown", False
    if not (isinstance(epoch, int) and not isinstance(epoch, bool)):
        return f"unknown (malformed: {epoch!r})", False
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    epochs = metadata.get("epochs")
    if raw.get("format") != "liif-repro" or not (isinstance(epochs, int) and epochs > 0):
        return str(epoch), False
    if epoch >= epochs:
        return f"{epoch} of {epochs}", False
    if metadata.get("kept"):  # epoch-best.pth, a snapshot: stopping early is what the file is for
        return f"{epoch} of {epochs} ({metadata['kept']})", False
    return f"{epoch} of {epochs} (unfinished)", True


def cmd_upscale(args) -> int:
    out_path = check_output_path(args.output)  # every output check runs before any decoding or rendering
    if out_path.exists() and not args.overwrite:
        if Path(args.input).exists() and out_path.samefile(args.input):
            raise UsageError(f"{out_path} is the input image; choose another output, or pass --overwrite")
        raise UsageError(f"{out_path} already exists; choose another output, or pass --overwrite to replace it")
    if not (math.isfinite(args.max_megapixels) and args.max_megapixels > 0):
        raise UsageError(f"--max-megapixels {args.max_megapixels}: must be a positive number")
    resolve_device(args.device)
    lr_size = image_size(args.input)  # from the header: the guard below runs before any decoding
    if args.scale is not None:
        size = output_size(lr_size, scale=parse_scale(args.scale))
    else:
        size = output_size(lr_size, size=parse_size(args.size))
    megapixels = size[0] * size[1] / 1e6
    if megapixels > args.max_megapixels:
        raise UsageError(
            f"output {size[0]}x{size[1]} ({megapixels:.0f} MP) exceeds --max-megapixels {args.max_megapixels:g}; "
            "raise it if this machine has the memory (12 bytes per pixel)"
        )
    model, _ = load_model(args.checkpoint)
    lr, notice = load_image(args.input, channels=model.channels)  # a grey model reads grey, writes grey
    if notice:
        print(f"notice: {notice}", file=sys.stderr)
    image = render_image(
        model, lr, size, device=args.device, chunk=args.chunk, tile=args.tile, progress=size[0] * size[1] >= 1 << 20
    )
    save_image(image, out_path)
    print(f"{args.input} ({lr_size[0]}x{lr_size[1]}) -> {out_path} ({size[0]}x{size[1]})", file=sys.stderr)
    return 0


def evaluation_scale(args) -> float:
    """``liif evaluate --scale``, checked before any image or checkpoint is read."""
    try:
        scale = float(args.scale)
    except ValueError:
        raise UsageError(f"--scale {args.scale!r}: expected a number") from None
    if not (scale > 0 and math.isfinite(scale)):
        raise UsageError(f"--scale {args.scale}: must be a positive number")
    if args.lr is not None and scale > 1000:
        raise UsageError(f"--scale {args.scale}: LR folders exist for integer scales up to 1000")
    if args.lr is not None and scale != int(scale):
        raise UsageError(f"--lr pairs files by integer scale; got --scale {args.scale}")
    if scale < 1:
        raise UsageError(f"--scale {args.scale}: factors below 1 would up-sample the LR image; use 1 or more")
    return scale


def cmd_evaluate(args) -> int:
    scale = evaluation_scale(args)
    resolve_device(args.device)
    hr_paths = list_images(args.hr)
    model, raw = load_model(args.checkpoint)
    if model.channels == 1:
        print(
            f"liif: notice: {args.checkpoint} is a model of one grey channel: every image is read as grey "
            f"({GREY_RULE}; colour is reduced) and scored on that channel",
            file=sys.stderr,
        )
    progress, unfinished = training_progress(raw)
    if unfinished:
        print(
            f"liif: warning: {args.checkpoint} is epoch {progress.removesuffix(' (unfinished)')} of a training that "
            "did not finish: these scores are not its trained model's",
            file=sys.stderr,
        )
    scores = evaluate_pairs(
        model,
        hr_paths,
        scale=scale,
        protocol=args.protocol,
        lr_dir=args.lr,
        device=args.device,
        grey_luma=args.grey_luma,
        progress=not args.json,
    )
    for s in scores:  # +inf PSNR is an exact reconstruction; anything else non-finite is no score at all
        if math.isnan(s.psnr) or s.psnr == -math.inf or not math.isfinite(s.ssim):
            raise UsageError(
                f"{s.name}: the prediction scores PSNR {s.psnr} and SSIM {s.ssim}, not numbers; "
                f"{args.checkpoint} computes NaN or infinite colours on it, so no score is reported"
            )
    print_scores(args, scores, scale=scale)
    return 0


def print_scores(args, scores: list, *, scale: float):
    """The scores of ``liif evaluate``: a table, or strict JSON with ``--json``."""
    mean_psnr = sum(s.psnr for s in scores) / len(scores)
    mean_ssim = sum(s.ssim for s in scores) / len(scores)
    if args.json:  # strict JSON: an exact reconstruction's infinite PSNR is null, with psnr_exact true
        result = {
            "checkpoint": args.checkpoint,
            "scale": scale,
            "protocol": args.protocol,
            "lr": args.lr,
            "images": [
                {**vars(s), "psnr": s.psnr if math.isfinite(s.psnr) else None, "psnr_exact": s.psnr == math.inf}
                for s in scores
            ],
            "mean_psnr": mean_psnr if math.isfinite(mean_psnr) else None,
            "mean_ssim": mean_ssim,
        }
        if not math.isfinite(mean_psnr):
            result["note"] = "psnr null: the prediction equals the HR image (infinite PSNR), for psnr_exact images"
        print(json.dumps(result, indent=2, allow_nan=False))
    else:

        def shown(value: float) -> str:
            return f"{value:8.3f} dB" if math.isfinite(value) else "   exact (infinite PSNR)"

        width = max(len(s.name) for s in scores)
        for s in scores:
            print(f"{s.name:<{width}}  {shown(s.psnr)}  SSIM {s.ssim:.4f}")
        print(
            f"{'mean':<{width}}  {shown(mean_psnr)}  SSIM {mean_ssim:.4f}  ({len(scores)} images, x{scale:g}, {args.protocol})"
        )


def cmd_info(args) -> int:
    model, raw = load_checkpoint(args.checkpoint)
    spec = raw["spec"]
    print(f"file:        {args.checkpoint}")
    print(f"format:      {raw['format']}")
    print(f"model:       {spec['name']}")
    print(f"channels:    {model.channels} ({'grey' if model.channels == 1 else 'RGB'})")
    print(f"arguments:   {json.dumps(spec['args'])}")
    total = count_parameters(model)
    parts = ", ".join(f"{name} {count_parameters(child):,}" for name, child in model.named_children())
    print(f"parameters:  {total:,} ({parts})")
    print(f"epoch:       {training_progress(raw)[0]}")
    # What a file holds besides its weights is printed as far as it is well formed, and named where it is not.
    train_state = raw.get("train_state") if raw["format"] == "liif-repro" else None
    history = train_state.get("history") if isinstance(train_state, dict) else None
    if history is not None and not isinstance(history, list):
        print(f"history:     malformed (a {type(history).__name__}, not a list): not shown")
    elif history:
        last = history[-1]
        if not isinstance(last, dict):
            print(f"history:     malformed (the last entry is a {type(last).__name__}, not a mapping): not shown")
        else:
            best = train_state.get("best_val_psnr")
            best = f"best {best:.2f} dB" if _number(best) else f"best unknown ({best!r})"
            psnr = last.get("val_psnr")
            psnr = f"{psnr:.2f} dB" if _number(psnr) else f"unknown ({psnr!r})"
            print(f"val PSNR:    {psnr} at the last epoch, {best}")
            lr = last.get("lr")
            print(f"lr:          {lr:.3e} in the last epoch" if _number(lr) else f"lr:          unknown ({lr!r})")
    metadata = raw.get("metadata")
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            print(f"{str(key) + ':':<13}{value}")
    elif metadata is not None:
        print(f"metadata:    malformed (a {type(metadata).__name__}, not a mapping): not shown")
    return 0


def cmd_repro(args) -> int:
    from liif.config.params import load_params
    from liif.config.variants import check_params
    from liif.study.repro import check_workspace, repro

    try:
        check_workspace()
        params = load_params()  # a broken file is a ParamsError naming its line
        check_params(params)
    except UserError as e:
        print(f"liif repro: {e}", file=sys.stderr)
        return 2
    try:
        return repro(list(params["variants"]), args.names, jobs=args.jobs)
    except KeyboardInterrupt:
        print("liif repro: stopped; run it again to resume every interrupted training", file=sys.stderr)
        return 130


def cmd_train(args) -> int:

    for flag in ("epochs", "val"):
        value = getattr(args, flag)
        if value is not None and value < (1 if flag == "epochs" else 0):
            raise UsageError(f"--{flag} {value}: must be at least {1 if flag == 'epochs' else 0}")
    if args.scale_max is not None and not (math.isfinite(args.scale_max) and args.scale_max >= 1):
        raise UsageError(f"--scale-max {args.scale_max}: must be a number of at least 1")
    if args.device is not None:
        resolve_device(args.device)
    summary = train_on_folder(
        args.images,
        args.out,
        epochs=args.epochs,
        scale_max=args.scale_max,
        val=args.val,
        device=args.device,
        resume=args.resume,
        params_path=args.params,
        variant=args.variant,
    )
    best = summary.get("best_val_psnr")
    shown = f", best validation PSNR {best:.2f} dB" if isinstance(best, float) else ""
    print(
        f"{args.images} -> {args.out} ({summary.get('epochs')} epochs{shown}; run folder {work_folder(Path(args.out))})",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=__package__, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upscale", help="render an image at a new size")
    up.add_argument("input", help="any image Pillow reads")
    up.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: .png, .jpg (8-bit) or .npy (float32 HxWx3; greyscale and HxW for a 1-channel model)",
    )
    size = up.add_mutually_exclusive_group(required=True)
    size.add_argument("--scale", help="factor for both axes (3.5) or per axis, height x width (2x3)")
    size.add_argument("--size", help="output HEIGHTxWIDTH, e.g. 1080x1920")
    up.add_argument("--checkpoint", required=True, help=f"checkpoint file, or {Bicubic.name!r}")
    up.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    up.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="queries per decoder call")
    up.add_argument("--tile", type=int, default=DEFAULT_TILE, help="LR tile side for the encoder")
    up.add_argument("--max-megapixels", type=float, default=400, help="refuse larger outputs (default 400)")
    up.add_argument("--overwrite", action="store_true", help="replace an existing output file, even the input image")
    up.set_defaults(func=cmd_upscale)

    ev = sub.add_parser("evaluate", help="PSNR of a model on a folder of HR images")
    ev.add_argument("--checkpoint", required=True, help=f"checkpoint file, or {Bicubic.name!r}")
    ev.add_argument("--hr", required=True, help="folder of HR images")
    ev.add_argument("--lr", help="folder of LR images named <name>x<S>.png (otherwise made from HR)")
    ev.add_argument("--scale", required=True, help="up-sampling factor")
    ev.add_argument("--protocol", choices=PROTOCOLS, default="none", help="div2k, benchmark or none")
    ev.add_argument(
        "--grey-luma", action="store_true", help="benchmark: greyscale originals scored on their grey level (MATLAB)"
    )
    ev.add_argument("--device", default="auto")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser("train", help="train a model on a folder of images, without DVC (the default recipe)")
    tr.add_argument("--images", required=True, help="folder of images (with train/ and val/ sub-folders, or not)")
    tr.add_argument("--out", required=True, help="the trained weights, a .pth file (work beside it in <out>.work/)")
    tr.add_argument("--epochs", type=int, help="epochs (default: the recipe's; its lr milestones scale with it)")
    tr.add_argument("--scale-max", type=float, help="largest training scale (default: the recipe's, x4)")
    tr.add_argument("--val", type=int, help="images held out for validation (default: a tenth, at least one)")
    tr.add_argument("--device", help="auto, cpu or cuda (default: the recipe's runtime.device)")
    tr.add_argument("--resume", action="store_true", help="continue the run in <out>.work/ after a kill")
    tr.add_argument("--params", default=str(PROJECT_PARAMS), help="the params.yaml whose recipe trains")
    tr.add_argument("--variant", help="the variant of --params to train (default: its role-base variant)")
    tr.set_defaults(func=cmd_train)

    rep = sub.add_parser("repro", help="the study's variants N at a time through DVC (dvc repro, side by side)")
    rep.add_argument("names", nargs="*", help="variants (or train@v / evaluate@v; 'report' too); default: everything")
    rep.add_argument("--jobs", default="auto", help="jobs at a time: a number, or auto (one per GPU or CPU core)")
    rep.set_defaults(func=cmd_repro)

    info = sub.add_parser("info", help="architecture, parameter count and training state of a checkpoint")
    info.add_argument("checkpoint")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for positive in ("chunk", "tile"):
        if getattr(args, positive, 1) < 1:
            print(f"liif: error: --{positive} must be at least 1", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except torch.cuda.OutOfMemoryError:
        fix = "lower --tile or --chunk, or use --device cpu" if hasattr(args, "tile") else "use --device cpu"
        print(f"liif: error: out of GPU memory; {fix}", file=sys.stderr)
        return 2
    except MemoryError:  # only upscale has --tile/--chunk to lower
        fix = "; lower --tile or --chunk or the output size" if hasattr(args, "tile") else ""
        print(f"liif: error: out of memory{fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("liif: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # sorted by ``explain``: only a user's mistake or a full disk is one line
        line = explain(e)
        if line is None:
            return report_bug(f"liif {args.command}")
        print(f"liif: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
