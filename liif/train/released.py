"""Weights trained elsewhere as a variant of the study (``checkpoint:`` in params.yaml, role ``released``).

``train@<v>`` of such a variant trains nothing. ``install_released`` fetches the file into
``models/<v>/released.pth`` (a download resumed after an interruption, or a copy of a local file), checks its
SHA-256 against the one params.yaml gives or, where none is given, against the first verified copy's (trust on
first use, recorded in the git-tracked ``weights-checksums.json`` by the mechanism of the dataset archives,
``liif.sources.official``), loads it (the authors' released format or this project's) and checks that it holds
the variant's model. Only then does it write ``epoch-last.pth`` in this project's format and ``summary.json``, as
a training does, so evaluation and the report score the weights like any other variant. A refused file leaves
neither, and no copy of itself.
"""

import json
import sys
import zipfile
from pathlib import Path
from shutil import copyfile
from typing import Annotated, get_args, get_origin

from liif.config.variants import config_hash
from liif.errors import UserError
from liif.files import LAST, SUMMARY, file_digest
from liif.models import MODELS
from liif.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from liif.registry import Registry, settings
from liif.sources.download import DownloadError, download, verify
from liif.sources.official import read_trusted, record_trusted
from liif.train import folder, track
from liif.types import Component

FETCHED = "released.pth"  # the released file as fetched, in models/<v>/ beside the epoch-last.pth made from it


def install_released(config: dict, *, out_dir: str | Path, trusted: str | Path | None, tracking: dict) -> dict:
    """Make ``models/<v>`` of a released variant (``config`` is its ``configs/<v>.json``); returns its summary.

    ``trusted``: the JSON file of trust-on-first-use checksums (None: nothing is recorded). A rerun of an
    installed configuration fetches nothing."""
    out_dir, source = Path(out_dir), config["checkpoint"]
    folder.prepare_out_dir(out_dir)
    folder.resumable(out_dir, {"config_hash": config_hash(config), "inputs": None})  # other configurations: aside
    done = installed(config, out_dir)
    if done:
        return done
    origin = source.get("url") or source["path"]
    first_trusted = read_trusted(trusted).get(origin)
    fetched = out_dir / FETCHED
    fetched.unlink(missing_ok=True)  # earlier weights; a download cut short (released.pth.part) resumes instead
    fetch(source, fetched)
    try:
        digest = check_digest(fetched, config, origin=origin, first_trusted=first_trusted, trusted=trusted)
        model, raw = load_checkpoint(fetched)
        check_model(config, raw["spec"], origin=origin)
    except UserError:
        fetched.unlink()
        raise
    if not source.get("sha256") and not first_trusted:
        record_trusted(trusted, {origin: digest})
    metadata = {"variant": config["variant"], "config_hash": config_hash(config), "source": origin, "sha256": digest}
    save_checkpoint(out_dir / LAST, model=model, train_state={"epoch": 0, "history": []}, metadata=metadata)
    folder.settle(out_dir)
    run_id, model_id = track.track_untrained(config, tracking, checkpoint=out_dir / LAST)
    return folder.finish(out_dir, config, [], 0.0, run_id, model_id=model_id)


def installed(config: dict, out_dir: Path) -> dict | None:
    """The summary of ``out_dir`` when it already holds this configuration's weights, else None."""
    try:
        summary = json.loads((out_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(summary, dict) and summary.get("config_hash") == config_hash(config) and (out_dir / LAST).is_file():
        return summary
    return None


def fetch(source: dict, dest: Path):
    """The released file at ``dest``: downloaded (resumable, see ``liif.sources.download``) or copied, and renamed
    into place only once it reads as a whole PyTorch file."""
    if "url" in source:
        download(source["url"], dest, check=whole_torch_file, progress=sys.stderr.isatty())
        return
    path = Path(source["path"])
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (checkpoint.path of params.yaml names the weights to score)")
    part = dest.with_name(dest.name + ".part")
    copyfile(path, part)
    try:
        verify(part, check=whole_torch_file, source=str(path), advice="nothing was kept; name a complete copy")
    except DownloadError:
        part.unlink()
        raise
    part.replace(dest)


def whole_torch_file(path: Path):
    """A file ``torch.save`` wrote, whole: its zip read to the end with every member's CRC checked, so an HTML
    error page served in its place or a cut download is refused before anything loads it."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"\x80"):  # torch's format before 1.6, a bare pickle: load_checkpoint reads it whole
        return
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"not a PyTorch checkpoint (it starts with {magic!r}: an error page, or another file)")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"not a whole PyTorch checkpoint, truncated? ({e})") from None
    if broken is not None:
        raise CheckpointError(f"a corrupted PyTorch checkpoint ({broken} fails its CRC check)")


def check_digest(path: Path, config: dict, *, origin: str, first_trusted: str | None, trusted) -> str:
    """The SHA-256 of ``path``, refused unless it is the one params.yaml gives, or the first trusted copy's."""
    digest, given, v = file_digest(path), config["checkpoint"].get("sha256"), config["variant"]
    if given and digest != given:
        raise CheckpointError(
            f"{origin}: sha256 {digest}, not the {given} of params.yaml variants.{v}.checkpoint.sha256 "
            "(a corrupted or different file); nothing was kept"
        )
    if not given and first_trusted and digest != first_trusted:
        raise CheckpointError(
            f"{origin}: sha256 {digest}, not the {first_trusted} of the copy first trusted (recorded in {trusted}); "
            "nothing was kept; if this copy is the right one, delete its line there"
        )
    return digest


def check_model(config: dict, spec: dict, *, origin: str):
    """The file's model (``spec``, as ``load_checkpoint`` rebuilt it) must be the variant's: the same model with
    the same arguments, defaults filled in on both sides (the released format writes ``{name: edsr-baseline}``
    for the encoder whose sizes params.yaml spells out)."""
    ours, theirs, v = full_arguments(config["model"]), full_arguments(spec), config["variant"]
    if ours == theirs:
        return
    if ours["name"] != theirs["name"]:
        found = f"a {theirs['name']} model, not the {ours['name']} model of variant {v}"
    else:
        mine, other = _flat(ours["args"]), _flat(theirs["args"])
        changed = [key for key in mine.keys() | other.keys() if mine.get(key) != other.get(key)]
        found = f"a {theirs['name']} with " + ", ".join(
            f"{key} {other.get(key)} (variant {v}: {mine.get(key)})" for key in sorted(changed)
        )
    raise CheckpointError(
        f"{origin}: holds {found}; nothing was kept: name the weights of the variant's model, or set "
        f"variants.{v}.model to the file's"
    )


def full_arguments(spec: dict) -> dict:
    """A model spec ``{name, args}`` with every default argument written out, a nested component's too."""
    return {"name": spec["name"], "args": _filled(MODELS.get(spec["name"]), spec["args"])}


def _filled(component, args: dict) -> dict:
    out = {}
    for key, (annotation, default) in settings(component).items():
        value = args.get(key, default)
        kinds = [m.kind for m in get_args(annotation)[1:] if isinstance(m, Component)]
        if get_origin(annotation) is Annotated and kinds and isinstance(value, dict):
            value = {"name": value["name"], **_filled(Registry.of(kinds[0]).get(value["name"]), value)}
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _flat(args: dict, prefix: str = "") -> dict:
    """``{"encoder": {"n_feats": 64}}`` -> ``{"encoder.n_feats": 64}``."""
    out = {}
    for key, value in args.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
