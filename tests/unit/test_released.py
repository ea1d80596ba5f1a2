"""Weights trained elsewhere as a variant (``checkpoint:``, role ``released``): what params.yaml accepts, what enters
the variant's identity, what the role implies, how ``train@<v>`` installs or refuses a file (liif.train.released,
on files written here in this project's format), and the paper page's column of released weights."""

import copy
import json

import pandas as pd
import pytest
import torch
from conftest import CPU_RUNTIME, study_params

from liif.config.params import ParamsError, apply_profile
from liif.config.roles import RoleError, study_roles
from liif.config.variants import check_params, config_hash, resolve_variant
from liif.errors import UserError
from liif.eval.scores import finished_training, load_trained
from liif.files import file_digest
from liif.models import build_model
from liif.models.checkpoint import save_checkpoint
from liif.study.pages import Context, write_pages
from liif.study.paper import DIV2K, paper_row
from liif.study.report import RELEASED, Study, paper_rows
from liif.train.released import install_released

URL = "https://example.org/weights/edsr-baseline-liif.pth?dl=1"
DIGEST = "0123456789abcdef" * 4


def with_released(entry: dict, name: str = "liif-released") -> dict:
    """The small study (tests/conftest.py) with one more variant, ``entry``."""
    params = study_params()
    params["variants"][name] = entry
    return params


def test_a_released_variant_is_not_trained_and_its_source_is_its_identity():
    params = with_released({"role": "released", "checkpoint": {"url": URL}})
    config = resolve_variant(check_params(params), "liif-released")
    assert config["train"] is None and config["checkpoint"] == {"url": URL}
    assert config["model"] == resolve_variant(params, "liif")["model"]  # the base model, as any variant
    hashes = {config_hash(config)}
    for checkpoint in (
        {"url": URL, "sha256": DIGEST},
        {"path": "weights.pth"},
        {"path": "weights.pth", "sha256": DIGEST},
    ):
        params["variants"]["liif-released"]["checkpoint"] = checkpoint
        hashes.add(config_hash(resolve_variant(check_params(params), "liif-released")))
    assert len(hashes) == 4  # the url, the path and the checksum are each part of what the variant is


def test_a_released_variant_changes_no_other_identity():
    plain, released = study_params(), with_released({"role": "released", "checkpoint": {"url": URL}})
    for variant in plain["variants"]:
        config = resolve_variant(released, variant)
        assert config == resolve_variant(plain, variant) and set(config) == {"variant", "model", "train"}, variant


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"checkpoint": {"url": URL, "path": "w.pth"}},
            "variants.liif-released.checkpoint: url and path both given: keep the one the weights come from",
        ),
        ({"checkpoint": {"sha256": DIGEST}}, "variants.liif-released.checkpoint: missing url or path"),
        ({"checkpoint": {"url": "ftp://host/w.pth"}}, "checkpoint.url: 'ftp://host/w.pth': an http:// or https://"),
        (
            {"checkpoint": {"url": URL, "sha256": DIGEST.upper()}},
            f"checkpoint.sha256: '{DIGEST.upper()}': 64 lowercase hexadecimal digits, as sha256sum prints them",
        ),
        ({"checkpoint": {"url": URL, "sha256": DIGEST[:40]}}, "64 lowercase hexadecimal digits"),
        ({"checkpoint": {"url": URL, "sha": DIGEST}}, "checkpoint.sha: unknown key; did you mean sha256?"),
        ({"checkpoint": URL}, "variants.liif-released.checkpoint: expected a mapping of keys, found str"),
        (
            {"checkpoint": {"url": URL}, "train": {"epochs": 3}},
            "variants.liif-released.train: a variant of released weights (checkpoint:) is not trained; remove its "
            "train section",
        ),
        ({"checkpoint": {"url": URL}, "model": {"decoder_hiden": [8]}}, "model.decoder_hiden: unknown key"),
        ({"checkpoint": {"url": URL}, "model": {"decoder_hidden": [0]}}, "variants.liif-released.model.decoder_hidden"),
        ({"checkpont": {"url": URL}}, "variants.liif-released.checkpont: unknown key; did you mean checkpoint?"),
    ],
)
def test_each_mistake_in_a_released_variant_is_one_line(entry, message):
    with pytest.raises(ParamsError) as caught:
        check_params(with_released({"role": "released", **entry}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_train_override_is_refused_when_the_identity_is_resolved_too():
    params = with_released({"role": "released", "checkpoint": {"url": URL}, "train": {"seed": 3}})
    with pytest.raises(ParamsError, match="variants.liif-released.train: a variant of released weights"):
        resolve_variant(params, "liif-released")


RDN = {"name": "rdn", "G0": 8, "kernel_size": 3, "n_blocks": 2, "n_convs": 2, "growth": 4}


def test_released_weights_stand_for_the_paper_row_of_their_model():
    params = with_released({"role": "released", "checkpoint": {"url": URL}})
    params["variants"]["rdn-released"] = {"role": "released", "model": {"encoder": RDN}, "checkpoint": {"path": "r"}}
    params["variants"]["metasr-released"] = {
        "role": {"released": "metasr"},
        "model": {"name": "metasr", "predictor_hidden": 16},
        "checkpoint": {"path": "m.pth", "sha256": DIGEST},
    }
    roles = study_roles(check_params(params))
    assert roles.kind("released") == ["liif-released", "rdn-released", "metasr-released"]
    assert [paper_row(roles.of[v]) for v in roles.kind("released")] == ["liif", "rdn-liif", "metasr"]
    assert roles.base == "liif" and roles.metasr == "metasr"  # released weights take no trained variant's place
    assert "liif-released" not in roles.liif_by_encoder().values()


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"role": "released"},
            "variants.liif-released.role released: needs checkpoint: {url: ...} or {path: ...}, the weights it scores",
        ),
        (
            {"role": "other", "checkpoint": {"url": URL}},
            "variants.liif-released.role other: the variant names released weights (checkpoint:); declare role "
            "released",
        ),
        (
            {"role": "released", "model": {"name": "metasr"}, "checkpoint": {"url": URL}},
            "role released: the variant resolves to model metasr, not liif; write role {released: metasr} to say "
            "which model",
        ),
        (
            {"role": {"released": "metasr"}, "checkpoint": {"url": URL}},
            "role released: the variant resolves to model liif, not metasr; set model.name metasr",
        ),
    ],
)
def test_a_wrong_released_role_is_one_line(entry, message):
    with pytest.raises(RoleError) as caught:
        study_roles(check_params(with_released(entry)))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_released_weights_have_no_seed_to_replicate():
    params = with_released({"role": "released", "checkpoint": {"url": URL}})
    params["variants"]["liif-seed1"]["role"] = {"seed_of": "liif-released"}
    with pytest.raises(RoleError, match="liif-released learns nothing, so no seed changes it"):
        study_roles(params)


def test_a_profile_shortening_every_training_leaves_released_weights_alone():
    entry = {"role": "released", "checkpoint": {"url": URL}}
    params = apply_profile(with_released(entry), {"every_variant": {"train": {"epochs": 1}}})
    assert params["variants"]["liif-released"] == entry
    assert params["variants"]["liif-c"]["train"] == {"epochs": 1}
    check_params(params)


# ---------------------------------------------------------------- train@<v>: liif.train.released


def weights(params: dict, variant: str, path, seed: int = 0):
    """The weights of ``variant``'s model (random, seeded), saved at ``path`` in this project's format."""
    torch.manual_seed(seed)
    save_checkpoint(path, model=build_model(resolve_variant(params, variant)["model"]))
    return path


def install(params: dict, tmp_path, variant: str = "liif-released"):
    config = resolve_variant(check_params(params), variant)
    out = tmp_path / "models" / variant
    summary = install_released(
        config, out_dir=out, trusted=tmp_path / "weights-checksums.json", tracking=CPU_RUNTIME["tracking"]
    )
    return config, out, summary


def left_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_file_of_the_variants_model_is_installed_as_a_finished_training(tmp_path):
    params = with_released({"role": "released", "checkpoint": {"path": str(tmp_path / "theirs.pth")}})
    source = weights(params, "liif-released", tmp_path / "theirs.pth")
    config, out, summary = install(params, tmp_path)
    assert summary["config_hash"] == config_hash(config) == finished_training(config, out)["config_hash"]
    model = load_trained(config, out / "epoch-last.pth")  # as evaluate@ loads it: this variant, this configuration
    torch.manual_seed(0)
    expected = build_model(config["model"]).state_dict()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    assert (out / "released.pth").read_bytes() == source.read_bytes()  # the copy scored, kept beside
    trusted = json.loads((tmp_path / "weights-checksums.json").read_text())
    assert trusted == {str(source): file_digest(source)}  # trusted on first use
    again = install(params, tmp_path)[2]
    assert again == summary  # a rerun of the same configuration fetches nothing


def test_a_later_copy_must_match_the_first_trusted_one(tmp_path):
    params = with_released({"role": "released", "checkpoint": {"path": str(tmp_path / "theirs.pth")}})
    first = file_digest(weights(params, "liif-released", tmp_path / "theirs.pth"))
    _, out, _ = install(params, tmp_path)
    for name in ("epoch-last.pth", "summary.json"):
        (out / name).unlink()
    later = file_digest(weights(params, "liif-released", tmp_path / "theirs.pth", seed=1))
    with pytest.raises(UserError) as caught:
        install(params, tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'theirs.pth'}: sha256 {later}, not the {first} of the copy first trusted (recorded in "
        f"{tmp_path / 'weights-checksums.json'}); nothing was kept; if this copy is the right one, delete its line there"
    )
    assert left_in(out) == ["history.tsv"]
    (tmp_path / "weights-checksums.json").write_text("{}\n")  # its line deleted: the new copy is trusted
    install(params, tmp_path)
    assert json.loads((tmp_path / "weights-checksums.json").read_text()) == {str(tmp_path / "theirs.pth"): later}


def test_a_given_checksum_is_checked_and_nothing_is_recorded(tmp_path):
    entry = {"role": "released", "checkpoint": {"path": str(tmp_path / "theirs.pth"), "sha256": DIGEST}}
    params = with_released(entry)
    digest = file_digest(weights(params, "liif-released", tmp_path / "theirs.pth"))
    with pytest.raises(UserError) as caught:
        install(params, tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'theirs.pth'}: sha256 {digest}, not the {DIGEST} of params.yaml "
        "variants.liif-released.checkpoint.sha256 (a corrupted or different file); nothing was kept"
    )
    assert left_in(tmp_path / "models" / "liif-released") == []
    params["variants"]["liif-released"]["checkpoint"]["sha256"] = digest
    install(params, tmp_path)
    assert not (tmp_path / "weights-checksums.json").exists()  # a published checksum needs no record


def test_a_file_of_another_model_is_refused_naming_both(tmp_path):
    params = with_released({"role": "released", "checkpoint": {"path": str(tmp_path / "metasr.pth")}})
    weights(params, "metasr", tmp_path / "metasr.pth")
    with pytest.raises(UserError) as caught:
        install(params, tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'metasr.pth'}: holds a metasr model, not the liif model of variant liif-released; nothing was "
        "kept: name the weights of the variant's model, or set variants.liif-released.model to the file's"
    )
    small = copy.deepcopy(params)
    small["model"]["decoder_hidden"] = [8, 8]
    weights(small, "liif", tmp_path / "metasr.pth")
    with pytest.raises(UserError) as caught:
        install(params, tmp_path)
    assert "holds a liif with decoder_hidden [8, 8] (variant liif-released: [16, 16, 16, 16]); nothing" in str(
        caught.value
    )
    assert left_in(tmp_path / "models" / "liif-released") == []
    assert not (tmp_path / "weights-checksums.json").exists()  # nothing refused is ever trusted


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: data[: len(data) // 2], "not a whole PyTorch checkpoint, truncated? (File is not a zip file)"),
        (lambda data: b"<!DOCTYPE html><html>Sign in to Dropbox</html>", "starts with b'<!DO': an error page"),
    ],
    ids=["truncated", "error-page"],
)
def test_a_damaged_file_is_one_line_and_leaves_nothing(tmp_path, damage, reason):
    params = with_released({"role": "released", "checkpoint": {"path": str(tmp_path / "theirs.pth")}})
    source = weights(params, "liif-released", tmp_path / "theirs.pth")
    source.write_bytes(damage(source.read_bytes()))
    with pytest.raises(UserError) as caught:
        install(params, tmp_path)
    assert str(caught.value).startswith(f"{source} (copied to {tmp_path}/models/liif-released/released.pth.part): ")
    assert reason in str(caught.value) and str(caught.value).endswith(": nothing was kept; name a complete copy")
    assert left_in(tmp_path / "models" / "liif-released") == []


def test_a_missing_path_is_one_line(tmp_path):
    params = with_released({"role": "released", "checkpoint": {"path": str(tmp_path / "nowhere.pth")}})
    with pytest.raises(UserError, match=r"nowhere.pth: no such file \(checkpoint.path of params.yaml"):
        install(params, tmp_path)


def test_another_configurations_run_is_moved_aside_until_the_weights_are_in(tmp_path):
    params = with_released({"role": "released", "checkpoint": {"path": str(tmp_path / "theirs.pth")}})
    out = tmp_path / "models" / "liif-released"
    trained = resolve_variant(params, "liif")  # the folder held a training of another configuration
    metadata = {"variant": "liif-released", "config_hash": config_hash(trained), "inputs": "x"}
    save_checkpoint(out / "epoch-last.pth", model=build_model(trained["model"]), metadata=metadata)
    (out / "summary.json").write_text(json.dumps({"config_hash": config_hash(trained)}))
    with pytest.raises(UserError):
        install(params, tmp_path)  # no file yet: the training waits aside, nothing stands in its place
    assert left_in(out) == ["superseded"]
    weights(params, "liif-released", tmp_path / "theirs.pth")
    install(params, tmp_path)
    assert left_in(out) == ["epoch-last.pth", "history.tsv", "released.pth", "summary.json"]


# ---------------------------------------------------------------- the paper page


def test_the_paper_page_sets_released_weights_beside_the_paper_and_ours(tmp_path):
    params = with_released({"role": "released", "checkpoint": {"url": URL}})
    roles = study_roles(check_params(params))
    scores = pd.DataFrame(
        [
            {"variant": v, "dataset": d, "scale": 2, "psnr": p}
            for v, d, p in [
                ("liif", "div2k-valid", 33.1),
                ("liif-released", "div2k-valid", 34.6),
                ("metasr", "div2k-valid", 33.0),
                ("liif", "sample", 30.0),
                ("liif-released", "sample", 31.0),
                ("metasr", "sample", 30.2),
            ]
        ]
    )
    study = Study(scores=scores, per_image=pd.DataFrame(), roles=roles)
    div2k = paper_rows(study, "div2k-valid").set_index("variant")
    assert list(div2k.index) == ["liif", "metasr"]  # the released weights are a column, not a row
    assert list(div2k.columns) == ["scale", "ours", "paper", RELEASED, "ours minus LIIF", "paper minus LIIF"]
    assert div2k.loc["liif", ["paper", RELEASED, "ours"]].tolist() == [DIV2K["liif"][0], 34.6, 33.1]
    assert pd.isna(div2k.loc["metasr", RELEASED])  # no released MetaSR here
    sample = paper_rows(study, "sample")  # other data: differences from LIIF only, as before
    assert RELEASED not in sample.columns and list(sample["variant"]) == ["metasr"]
    ctx = Context(profile="p", encoder="edsr-baseline", revision="r", sources=pd.DataFrame(), timings=pd.DataFrame())
    page = write_pages(tmp_path, study, ctx, pd.DataFrame())["paper"].read_text()
    assert f"`{RELEASED}`: the authors' released weights (`liif-released`) scored by this pipeline" in page
    assert f"| ours | paper | {RELEASED} |" in " ".join(page.split())  # the column header of the DIV2K table
