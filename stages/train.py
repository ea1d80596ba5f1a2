"""Stage train@<variant>: train one variant from its resolved configuration (resumes after a kill).

With ``runtime.nproc: N > 1`` it starts itself again under ``torchrun`` with N data-parallel processes.
A variant of released weights (``checkpoint:``) is fetched and checked instead (``liif.train.released``).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from liif.config.params import load_params
from liif.config.schema import runtime_settings
from liif.config.variants import check_params
from liif.data.layout import PreparedData
from liif.errors import run_stage
from liif.files import HELD_ENV, lock_path, model_folder_lock
from liif.train import distributed
from liif.train.divergence import DivergedError
from liif.train.loop import train_variant


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True, help="configs/<variant>.json")
    parser.add_argument("--data", required=True, help="the prepared data folder")
    parser.add_argument("--out", required=True, help="the variant's model folder")
    parser.add_argument(
        "--trusted",
        default="weights-checksums.json",
        help="trust-on-first-use SHA-256 of released weights without a published one (tracked by git)",
    )
    args = parser.parse_args()
    config = json.loads(Path(args.config).read_text())
    params = load_params()
    params = check_params(params, variants=[config["variant"]])  # before anything touches models/<variant>
    runtime = runtime_settings(params)
    if distributed.under_torchrun() and os.environ.get("RANK", "0") != "0":  # rank 0 or the launcher holds it
        return train(config, args, runtime)
    with model_folder_lock(args.out):  # before anything touches models/<variant>: one training per folder
        return train(config, args, runtime)


def train(config: dict, args, runtime: dict) -> int:
    if config.get("checkpoint"):
        # Imported here: a training's inputs fingerprint (liif.train.loop.train_inputs) covers every module it
        # loaded, and the download code is no input of any training.
        from liif.train.released import install_released

        summary = install_released(config, out_dir=args.out, trusted=args.trusted, tracking=runtime["tracking"])
        print(json.dumps(summary), file=sys.stderr)
        return 0
    nproc = runtime["nproc"]
    if nproc > 1 and config["train"] is not None and not distributed.under_torchrun():
        env = {**os.environ, HELD_ENV: str(lock_path(args.out).resolve())}
        code = subprocess.call(distributed.launch_command(nproc, __file__, sys.argv[1:]), env=env)
        if code:
            print(
                f"train: {config['variant']}: the {nproc}-process run failed (exit {code}); the failing rank "
                "said why above",
                file=sys.stderr,
            )
        return code
    try:
        summary = train_variant(config, prepared=PreparedData(args.data), out_dir=args.out, runtime=runtime)
    except DivergedError as e:  # one line naming the variant, the epoch, the loss and what to change
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank stops; rank 0 says why
            print(f"train: {e}", file=sys.stderr)
        return 2
    if summary:
        print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("train", main))
