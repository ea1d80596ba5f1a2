"""A variant's identity: what its weights depend on, resolved from ``params.yaml``.

A variant is a set of overrides of the base ``model`` and ``train`` sections,
so ``dvc exp run -S model.cell_decode=false`` reaches every variant that does
not set that key itself. ``resolve_variant`` returns the model spec and the
training recipe (which training data, which of the paper's patch wrappers,
every hyperparameter) and nothing else: the ``runtime`` section never enters
it. It is written to ``configs/<variant>.json``, training depends on that file,
and its hash is stored in every checkpoint.
"""

import copy
import hashlib
import json

from liif.config.params import ParamsError, deep_merge
from liif.config.schema import (
    RUNTIME_KEYS,
    SECTIONS,
    Checkpoint,
    Train,
    check_component,
    check_keys,
    check_known_dataset,
    check_section,
    check_sections,
    closest,
    component_schema,
    known_name,
    valid_name,
)
from liif.encoders import ENCODERS
from liif.models import MODELS
from liif.models.base import Channels
from liif.registry import REQUIRED, settings

RECIPE_KEYS = {  # the train keys each of the paper's patch wrappers reads (liif.train.patches.make_training_sets)
    "common": {
        "dataset",
        "val_dataset",
        "val_split",
        "epochs",
        "batch_size",
        "repeat",
        "lr",
        "milestones",
        "gamma",
        "val_images",
        "val_repeat",
        "seed",
        "augment",
        "amp",
    },
    "downsampled": {"inp_size", "scale_min", "scale_max", "sample_q", "channel_shuffle"},
    "paired": {"inp_size", "scale_min", "scale_max", "channel_shuffle"},
    "uniform-varied": {"task", "sample_q", "gt_resize", "channel_shuffle"},
}
VARIANT_KEYS = ("role", "model", "train", "checkpoint")  # the role (liif.config.roles) is not part of the identity
RELEASED_NOT_TRAINED = "a variant of released weights (checkpoint:) is not trained; remove its train section"


def model_spec_from_section(model: dict) -> dict:
    """The ``params.yaml`` model section -> a ``liif.models.build_model`` spec: the model's arguments, those the
    section leaves out at their defaults (an encoder section is taken as written), except the model's
    ``unrecorded_defaults`` (``SRModel``), recorded only where they differ from their default."""
    name = model["name"]
    args, cls = {}, MODELS.get(name, where="params.yaml model.name")
    for key, (_, default) in settings(cls).items():
        if key in model:
            args[key] = model[key]
        elif default is REQUIRED:
            raise ParamsError(f"params.yaml model: {name} needs {key}")
        else:
            args[key] = list(default) if isinstance(default, tuple) else default
        if key in getattr(cls, "unrecorded_defaults", ()) and args[key] == default:
            del args[key]
    return {"name": name, "args": args}


def training_recipe(model: dict, train: dict) -> dict | None:
    """Which of the paper's patch wrappers feeds the model (``SRModel.patches``), and the ``train`` keys that
    shape its weights: only those, so changing a key a wrapper ignores (``sample_q`` of the fixed-scale
    up-samplers) retrains nothing. None for a model that learns nothing (Bicubic).
    """
    spec = model_spec_from_section(model)
    cls = MODELS.get(spec["name"])
    if cls.patches is None:
        return None
    unknown = set(train) - set().union(*RECIPE_KEYS.values()) - {"patches"}
    if unknown:
        raise ParamsError(f"train: unknown keys {sorted(unknown)}")
    recipe = dict(train)
    if recipe.get("task"):  # spec 3.4: L x L inputs, ground truths of varied sizes up to H
        recipe["patches"] = "uniform-varied"
        recipe.pop("val_dataset", None)  # size-varied tasks validate on their own dataset (liif.train.patches)
        recipe["gt_resize"] = None
    else:
        recipe["patches"] = cls.patches
    recipe = cls.adjust_recipe(recipe, spec["args"])
    keep = RECIPE_KEYS["common"] | RECIPE_KEYS[recipe["patches"]] | {"patches"}
    return {k: v for k, v in recipe.items() if k in keep}


def resolve_variant(params: dict, variant: str) -> dict:
    """The identity of one variant: base sections with the variant's overrides applied."""
    variants = params.get("variants") or {}
    if variant not in variants:
        raise ParamsError(f"variant {variant!r} is not in params.yaml variants ({', '.join(variants)})")
    override = variants[variant] or {}
    unknown = set(override) - set(VARIANT_KEYS)
    if unknown:
        raise ParamsError(f"variants.{variant}: only {', '.join(VARIANT_KEYS)} can be set, not {sorted(unknown)}")
    runtime_in_train = RUNTIME_KEYS & (set(params["train"]) | set(override.get("train", {})))
    if runtime_in_train:
        raise ParamsError(f"train.{sorted(runtime_in_train)[0]} is a runtime setting: move it to the runtime section")
    model = merge_model(params["model"], override.get("model", {}))
    if "checkpoint" in override:  # released weights (liif.train.released): where they come from, no recipe
        if "train" in override:
            raise ParamsError(f"variants.{variant}.train: {RELEASED_NOT_TRAINED}")
        return {
            "variant": variant,
            "model": model_spec_from_section(model),
            "train": None,
            "checkpoint": released_source(override["checkpoint"]),
        }
    train = deep_merge(params["train"], override.get("train", {}))
    return {"variant": variant, "model": model_spec_from_section(model), "train": training_recipe(model, train)}


def merge_model(base: dict, override: dict) -> dict:
    """A variant's model section: the base ``model`` section with the variant's keys.

    Naming the base's model, the variant overrides keys of the base section. Naming another model, the base's
    keys do not apply (they are another model's arguments), except its encoder and its image ``channels``, which
    the new model gets where it takes them. An encoder block naming an encoder with other arguments than the base's (an RDN for an
    EDSR) replaces the base's; one with the same arguments (the full EDSR for EDSR-baseline) overrides its keys.
    """
    name = override.get("name", base.get("name"))
    if name == base.get("name"):
        merged = deep_merge(base, override)
    else:
        merged = copy.deepcopy(override)
        if "encoder" in base and name in MODELS and "encoder" in settings(MODELS.get(name)):
            merged["encoder"] = deep_merge(base["encoder"], override.get("encoder") or {})
        if "channels" in base and "channels" not in override and _takes_image_channels(name):
            merged["channels"] = base["channels"]  # a grey study's baselines are grey too
    encoder, base_encoder = override.get("encoder") or {}, base.get("encoder") or {}
    if "name" in encoder and _encoder_arguments(encoder["name"]) != _encoder_arguments(base_encoder.get("name")):
        merged["encoder"] = copy.deepcopy(encoder)
    return merged


def _takes_image_channels(name) -> bool:
    """Whether a registered model reads its image channels from a ``channels`` argument (``Channels``)."""
    return name in MODELS and settings(MODELS.get(name)).get("channels", (None, None))[0] == Channels


def _encoder_arguments(name) -> set[str] | None:
    return set(settings(ENCODERS.get(name))) if name in ENCODERS else None


def check_variant(params: dict, variant: str):
    """One variant: its name, its keys, and its merged model and train sections."""
    try:
        valid_name(variant)
    except ValueError as e:
        raise ParamsError(f"params.yaml variants.{variant!r}: {e}") from None
    entry = params["variants"][variant] or {}
    where = f"variants.{variant}"
    if not isinstance(entry, dict):
        raise ParamsError(f"params.yaml {where}: expected a mapping with role, model and train")
    for key in entry:
        if key not in VARIANT_KEYS:
            raise ParamsError(f"params.yaml {where}.{key}: unknown key{closest(key, VARIANT_KEYS)}")
    if "checkpoint" in entry:
        check_section(Checkpoint, entry["checkpoint"], f"{where}.checkpoint")
        if "train" in entry:
            raise ParamsError(f"params.yaml {where}.train: {RELEASED_NOT_TRAINED}")
    override = entry.get("model") or {}
    if not isinstance(override, dict):
        raise ParamsError(f"params.yaml {where}.model: expected a mapping of keys, found {type(override).__name__}")
    name = known_name(MODELS, override.get("name", params["model"]["name"]), f"{where}.model.name")
    check_keys(override, component_schema(MODELS, name), f"{where}.model")  # the keys of the model it names
    if "checkpoint" in entry:  # the model the released file must hold; nothing to train
        check_component(MODELS, merge_model(params["model"], override), f"{where}.model")
        return
    check_keys(entry.get("train") or {}, Train, f"{where}.train")
    model = merge_model(params["model"], override)
    train = deep_merge(params["train"], entry.get("train") or {})
    check_component(MODELS, model, f"{where}.model")  # the base sections passed already: what fails, the override
    check_section(Train, train, f"{where}.train")
    _check_queries(model, train, f"{where}.train")
    for key in ("dataset", "val_dataset"):
        check_known_dataset(params, train.get(key), f"{where}.train.{key}")


def released_source(checkpoint: dict) -> dict:
    """A variant's ``checkpoint`` entry as its identity records it: where the weights come from (url or path)
    and, when given, their SHA-256; so other weights, or a checksum written later, are another configuration."""
    return {key: checkpoint[key] for key in ("url", "path", "sha256") if checkpoint.get(key) is not None}


def _check_queries(model: dict, train: dict, where: str):
    """A model trained on queries (``SRModel.trains_on_queries``: LIIF, MetaSR) samples ``sample_q`` pixels of
    each patch: the patch must have that many."""
    if MODELS.get(model["name"]).trains_on_queries:
        pixels = train["task"][0] ** 2 if train.get("task") else train["inp_size"] ** 2
        if train["sample_q"] > pixels:
            size = f"task L {train['task'][0]}" if train.get("task") else f"inp_size {train['inp_size']}"
            raise ParamsError(
                f"params.yaml {where}.sample_q: {train['sample_q']} queries per patch need as many pixels; the "
                f"{size} patch has {pixels}: sample_q ≤ {pixels}"
            )


def check_params(params: dict, *, variants: list[str] | None = None, sections=tuple(SECTIONS)) -> dict:
    """The named sections of params.yaml (all by default) and variants (all when None); raises ParamsError,
    one line naming the key and what it accepts. Returns the validated params (``check_sections``); the model,
    train and variants sections as written, since a variant's identity is resolved from them."""
    validated = check_sections(params, sections=sections)
    if "variants" not in sections:
        return validated
    check_component(MODELS, params["model"], "model")
    check_section(Train, params["train"], "train")
    _check_queries(params["model"], params["train"], "train")
    if not isinstance(params["variants"], dict) or not params["variants"]:
        raise ParamsError("params.yaml variants: expected a mapping of at least one variant")
    for variant in params["variants"] if variants is None else variants:
        if variant not in params["variants"]:
            raise ParamsError(f"params.yaml variants.{variant}: no such variant{closest(variant, params['variants'])}")
        check_variant(params, variant)
    return validated


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
