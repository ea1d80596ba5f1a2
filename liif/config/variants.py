"""A variant's identity: what its weights depend on, resolved from ``params.yaml``.

A variant is a set of overrides of the base ``model`` and ``train`` sections,
so ``dvc exp run -S model.cell_decode=false`` reaches every variant that does
not set that key itself. ``resolve_variant`` returns the model spec and the
training recipe (which training data, which of the paper's sample wrappers,
every hyperparameter) and nothing else: the ``runtime`` section never enters
it. It is written to ``configs/<variant>.json``, training depends on that file,
and its hash is stored in every checkpoint.
"""

import hashlib
import json

from liif.config.params import ParamsError, deep_merge
from liif.config.schema import RUNTIME_KEYS, merge_model
from liif.models import MODELS
from liif.registry import REQUIRED, settings

RECIPE_KEYS = {  # the train keys each of the paper's sample wrappers reads (liif.train.patches.make_training_sets)
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


def model_spec_from_section(model: dict) -> dict:
    """The ``params.yaml`` model section -> a ``liif.models.build_model`` spec: the model's arguments, those the
    section leaves out at their defaults (an encoder section is taken as written)."""
    name = model["name"]
    args = {}
    for key, (_, default) in settings(MODELS.get(name, where="params.yaml model.name")).items():
        if key in model:
            args[key] = model[key]
        elif default is REQUIRED:
            raise ParamsError(f"params.yaml model: {name} needs {key}")
        else:
            args[key] = list(default) if isinstance(default, tuple) else default
    return {"name": name, "args": args}


def training_recipe(model: dict, train: dict) -> dict | None:
    """Which of the paper's sample wrappers feeds the model (``SRModel.samples``), and the ``train`` keys that
    shape its weights: only those, so changing a key a wrapper ignores (``sample_q`` of the fixed-scale
    up-samplers) retrains nothing. None for a model that learns nothing (Bicubic).
    """
    spec = model_spec_from_section(model)
    cls = MODELS.get(spec["name"])
    if cls.samples is None:
        return None
    unknown = set(train) - set().union(*RECIPE_KEYS.values()) - {"samples"}
    if unknown:
        raise ParamsError(f"train: unknown keys {sorted(unknown)}")
    recipe = dict(train)
    if recipe.get("task"):  # spec 3.4: L x L inputs, ground truths of varied sizes up to H
        recipe["samples"] = "uniform-varied"
        recipe.pop("val_dataset", None)  # size-varied tasks validate on their own dataset (liif.train.patches)
        recipe["gt_resize"] = None
    else:
        recipe["samples"] = cls.samples
    recipe = cls.adjust_recipe(recipe, spec["args"])
    keep = RECIPE_KEYS["common"] | RECIPE_KEYS[recipe["samples"]] | {"samples"}
    return {k: v for k, v in recipe.items() if k in keep}


def resolve_variant(params: dict, variant: str) -> dict:
    """The identity of one variant: base sections with the variant's overrides applied."""
    variants = params.get("variants") or {}
    if variant not in variants:
        raise ParamsError(f"variant {variant!r} is not in params.yaml variants ({', '.join(variants)})")
    override = variants[variant] or {}
    unknown = set(override) - {"model", "train", "role"}  # the role (liif.config.roles) is not part of the identity
    if unknown:
        raise ParamsError(f"variants.{variant}: only role, model and train can be set, not {sorted(unknown)}")
    runtime_in_train = RUNTIME_KEYS & (set(params["train"]) | set(override.get("train", {})))
    if runtime_in_train:
        raise ParamsError(f"train.{sorted(runtime_in_train)[0]} is a runtime setting: move it to the runtime section")
    model = merge_model(params["model"], override.get("model", {}))
    train = deep_merge(params["train"], override.get("train", {}))
    return {"variant": variant, "model": model_spec_from_section(model), "train": training_recipe(model, train)}


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
