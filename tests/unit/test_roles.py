"""Roles: what each variant is, declared once in params.yaml and never read from a name or into an identity."""

import copy

import pytest
from conftest import study_params

from liif.config.params import apply_profile
from liif.config.roles import RoleError, study_roles
from liif.config.variants import resolve_variant


def test_roles_do_not_enter_any_identity():
    """A variant resolves to the same configuration (configs/<v>.json) whatever role it declares."""
    params = study_params()
    for variant in params["variants"]:
        other_role = copy.deepcopy(params)
        other_role["variants"][variant]["role"] = "other"
        assert resolve_variant(other_role, variant) == resolve_variant(params, variant), variant


def test_what_a_role_implies_is_read_from_the_configuration():
    roles = study_roles(study_params())
    assert roles.base == "liif" and roles.bicubic == "bicubic" and roles.metasr == "metasr"
    assert roles.fixed_scale() == {"upsample-x2": 2, "upsample-x3": 3, "upsample-x4": 4}  # from model.scale
    assert roles.single_scale() == {"liif-x2": 2, "liif-x3": 3, "liif-x4": 4}  # from train.scale_min/max
    assert roles.replicates() == {"liif": ["liif-seed1", "liif-seed2"]}
    assert roles.in_distribution([2, 3, 4, 6, 12]) == [2, 3, 4]  # train.scale_min 1 .. scale_max 4
    tasks = roles.size_varied()
    assert tasks[("squares", (16, 128))] == {"liif": "sized-liif-16-128", "up-sampling": "sized-upsample-16-128"}


def test_a_successor_is_set_against_the_liif_of_its_encoder_and_says_how_it_renders():
    params = study_params()
    rdn = {"name": "rdn", "G0": 8, "kernel_size": 3, "n_blocks": 2, "n_convs": 2, "growth": 4}
    params["variants"]["rdn-liif"] = {"role": "liif", "model": {"encoder": rdn}}
    params["variants"]["rdn-lte"] = {"role": "successor", "model": {"name": "lte", "encoder": rdn}}
    roles = study_roles(params)
    assert roles.successors() == {"lte": "liif", "rdn-lte": "rdn-liif"}
    assert roles.of["lte"].title == "LTE" and roles.of["metasr"].title == "metasr"
    assert roles.of["lte"].cell_rule.startswith("beyond x4, LTE decodes every output pixel with the cell of an x4")
    assert roles.of["liif"].cell_rule is None  # LIIF decodes one output pixel at every scale
    params["variants"]["lte"]["model"]["render_scale_max"] = 3
    assert study_roles(params).of["lte"].cell_rule.startswith("beyond x3,")
    released = {"role": {"released": "lte"}, "model": {"name": "lte"}, "checkpoint": {"path": "lte.pth"}}
    params["variants"]["lte-released"] = released
    assert study_roles(params).of["lte-released"].stands_for == "successor"


def test_the_in_distribution_range_follows_the_recipe():
    params = study_params()
    params["train"]["scale_max"] = 3
    assert study_roles(params).in_distribution([2, 3, 4, 6]) == [2, 3]


@pytest.mark.parametrize(
    "variant, role, message",
    [
        ("liif-c", None, "variants.liif-c.role: missing"),
        ("liif-c", {"ablation": "cell_decod"}, "'cell_decod' is not a component; expected one of cell_decode"),
        ("liif-c", "ablaton", "'ablaton' is not a role"),
        ("liif-c", "ablation", "write {ablation: ...} naming the component"),
        ("metasr", "fixed-scale", "fixed-scale: needs model.name fixed-scale, the variant resolves to metasr"),
        ("liif-x2", "fixed-scale", "needs model.name fixed-scale"),
        ("liif", "single-scale", "needs train.scale_min = scale_max, found 1-4"),
        ("liif-seed1", {"seed_of": "liif-seed9"}, "'liif-seed9' is not a variant of params.yaml"),
        ("liif-seed1", {"seed_of": "liif-seed2"}, "seed_of names another seed replicate"),
        ("liif-c", "base", "liif, liif-c all declare role base; keep one"),
        ("liif", "size-varied", "needs train.task [L, H]"),
        ("metasr", "successor", "a successor is a later model compared with LIIF; metasr has its own role (metasr)"),
    ],
)
def test_a_wrong_role_is_one_line_naming_the_variant(variant, role, message):
    params = study_params()
    params["variants"][variant] = {**(params["variants"][variant] or {}), "role": role}
    if role is None:
        del params["variants"][variant]["role"]
    with pytest.raises(RoleError) as caught:
        study_roles(params)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def small_study(**variants) -> dict:
    """Params of a small study built here (not read from params.yaml): a base LIIF, MetaSR and ``variants``."""
    return {
        "model": {
            "name": "liif",
            "encoder": {"name": "edsr-baseline", "n_resblocks": 1, "n_feats": 8},
            "decoder_hidden": [16, 16, 16, 16],
            "feat_unfold": True,
            "local_ensemble": True,
            "cell_decode": True,
        },
        "train": {
            "dataset": "sample",
            "val_split": "val",
            "epochs": 2,
            "batch_size": 4,
            "repeat": 1,
            "inp_size": 48,
            "scale_min": 1,
            "scale_max": 4,
            "sample_q": 64,
            "lr": 1e-3,
            "milestones": [1],
            "gamma": 0.5,
            "val_images": 1,
            "val_repeat": 1,
            "seed": 0,
        },
        "variants": {"liif": {"role": "base"}, "metasr": {"role": "metasr", "model": {"name": "metasr"}}, **variants},
    }


@pytest.mark.parametrize(
    "variants, message",
    [
        (
            {"liif-seed1": {"role": {"seed_of": "liif"}}},
            "params.yaml variants.liif-seed1.role {seed_of: liif}: resolves to the same configuration as liif; "
            "set variants.liif-seed1.train.seed to another seed",
        ),
        (
            {"liif-seed1": {"role": {"seed_of": "liif"}, "train": {"seed": 0}}},
            "same configuration as liif; set variants.liif-seed1.train.seed to another seed (a profile's every_variant",
        ),
        (
            {"liif-seed1": {"role": {"seed_of": "liif-seed1"}, "train": {"seed": 1}}},
            "variants.liif-seed1.role {seed_of: liif-seed1}: names liif-seed1 itself; name the variant it replicates",
        ),
        (
            {"liif-seed1": {"role": {"seed_of": "liif"}, "train": {"seed": 1, "epochs": 3}}},
            "variants.liif-seed1.role {seed_of: liif}: differs from liif in train.epochs; "
            "a seed replicate changes train.seed alone",
        ),
        (
            {"metasr-seed1": {"role": {"seed_of": "liif"}, "model": {"name": "metasr"}, "train": {"seed": 1}}},
            "metasr-seed1 is a metasr model and liif a liif; seed_of names a variant of the same model",
        ),
        (
            {
                "liif-seed1": {"role": {"seed_of": "liif"}, "train": {"seed": 1}},
                "liif-seed2": {"role": {"seed_of": "liif"}, "train": {"seed": 1}},
            },
            "has the same train.seed 1 as liif-seed",
        ),
        (
            {"liif-c": {"role": {"ablation": "cell_decode"}}},
            "params.yaml variants.liif-c.role {ablation: cell_decode}: resolves to model.cell_decode true, as liif "
            "does; set variants.liif-c.model.cell_decode: false",
        ),
        (
            {"liif-u": {"role": {"ablation": "feat_unfold"}, "model": {"feat_unfold": False, "cell_decode": False}}},
            "variants.liif-u.role {ablation: feat_unfold}: differs from liif also in model.cell_decode; "
            "an ablation removes feat_unfold and changes nothing else",
        ),
        (
            {
                "liif-e": {
                    "role": {"ablation": "local_ensemble"},
                    "model": {"local_ensemble": False},
                    "train": {"epochs": 3},
                }
            },
            "differs from liif also in train.epochs",
        ),
        (
            {"liif-d": {"role": {"ablation": "decoder_depth"}, "model": {"decoder_hidden": [32, 32, 32, 32]}}},
            "liif-d.role {ablation: decoder_depth}: has 4 decoder layers, liif 4; "
            "set variants.liif-d.model.decoder_hidden to fewer layers, e.g. [16, 16]",
        ),
    ],
)
def test_a_role_must_match_what_its_configuration_changes(variants, message):
    """A replicate identical to its base measures zero noise; an ablation that changes nothing (or more than its
    component) is not what RQ4 says it is: either is one line naming the variant, its role and the fix."""
    with pytest.raises(RoleError) as caught:
        study_roles(small_study(**variants))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_profile_giving_every_variant_one_seed_collapses_the_replicates():
    params = small_study(**{"liif-seed1": {"role": {"seed_of": "liif"}, "train": {"seed": 1}}})
    assert study_roles(params).replicates() == {"liif": ["liif-seed1"]}
    collapsed = apply_profile(params, {"every_variant": {"train": {"seed": 7}}})
    with pytest.raises(RoleError, match=r"liif-seed1.role \{seed_of: liif\}: resolves to the same configuration"):
        study_roles(collapsed)


def test_an_ablation_the_base_was_changed_to_match_is_in_no_verdict():
    """``dvc exp run -S model.cell_decode=false`` makes LIIF itself the ablation: liif-c is then the same model,
    kept in the tables but out of RQ4 (no "+0.00" effect, no figure captioned "without cell decoding")."""
    params = small_study(
        **{
            "liif-c": {"role": {"ablation": "cell_decode"}, "model": {"cell_decode": False}},
            "liif-d": {"role": {"ablation": "decoder_depth"}, "model": {"decoder_hidden": [16, 16]}},
        }
    )
    params["model"]["cell_decode"] = False
    params["model"]["decoder_hidden"] = [16, 16]
    roles = study_roles(params)
    assert roles.of["liif-c"].kind == "other" and roles.of["liif-d"].kind == "other" and roles.ablations() == {}


def test_true_replicates_and_ablations_pass():
    params = small_study(
        **{
            "liif-seed1": {"role": {"seed_of": "liif"}, "train": {"seed": 1}},
            "metasr-seed1": {"role": {"seed_of": "metasr"}, "model": {"name": "metasr"}, "train": {"seed": 1}},
            "liif-d": {"role": {"ablation": "decoder_depth"}, "model": {"decoder_hidden": [16, 16]}},
            "liif-c": {"role": {"ablation": "cell_decode"}, "model": {"cell_decode": False}},
        }
    )
    roles = study_roles(params)
    assert roles.replicates() == {"liif": ["liif-seed1"], "metasr": ["metasr-seed1"]}
    assert set(roles.ablations()) == {"liif-d", "liif-c"}
