"""Checkpoints declaring an architecture out of proportion with their file are refused before it is built."""

import re

import pytest
import torch
from conftest import tiny_liif

from liif.models.checkpoint import save_checkpoint


@pytest.mark.parametrize(
    "args, message",
    [
        (
            {"decoder_hidden": [16000, 16000]},
            r"other shapes \(e.g. decoder.layers.0.weight \(32, 76\) vs \(16000, 76\)",
        ),
        ({"decoder_hidden": [200000, 200000]}, "other shapes"),
        ({"encoder": {"name": "edsr-baseline", "n_resblocks": 2, "n_feats": -1}}, "malformed model description"),
        ({"encoder": {"name": "edsr-baseline", "n_resblocks": "many"}}, "malformed model description"),
    ],
    ids=["wide-decoder", "huge-decoder", "negative-features", "text-blocks"],
)
def test_a_declared_architecture_is_checked_before_it_is_built(tmp_path, args, message):
    """A 33 KB file declaring [16000, 16000] used to cost 1.2 GB before its shapes were compared; the load
    runs in a fresh process so its peak memory is its own."""
    import subprocess
    import sys

    path = tmp_path / "lying.pth"
    save_checkpoint(path, model=tiny_liif())
    raw = torch.load(path, weights_only=True)
    raw["model"]["args"].update(args)
    torch.save(raw, path)
    code = (
        "import resource, sys\nfrom liif.models.checkpoint import CheckpointError, load_checkpoint\n"
        f"try:\n    load_checkpoint({str(path)!r})\nexcept CheckpointError as e:\n    print(e)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    *message_lines, peak_mb = proc.stdout.strip().splitlines()
    assert re.search(message, " ".join(message_lines)), proc.stdout + proc.stderr
    assert int(peak_mb) < 800, f"peak memory {peak_mb} MB while refusing a lying checkpoint"
