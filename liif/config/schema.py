"""The schema of ``params.yaml``: every key, its type, its range and what it means, in one place.

Every stage checks its sections against it before it does anything, so a wrong
value costs one line naming the key and the valid range, never a trained model:
``configure@v`` checks the base sections and variant ``v``, ``train@v`` its
resolved configuration before it touches ``models/<v>``, ``report`` everything.
An unknown key (a misspelt ablation switch would otherwise train plain LIIF) is
refused with the closest valid key. The schema is written with pydantic
(``extra="forbid"``, strict types, declared ranges): it checks; the stages keep
reading the plain dictionaries, so no identity or hash depends on it.
"""

import difflib
import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from liif.config.params import RUNTIME_KEYS, SOURCES, ParamsError, deep_merge, merge_model
from liif.metrics import METRICS, PAPER_METRIC
from liif.metrics.protocol import PROTOCOLS
from liif.types import MAX_COUNT, MAX_PROCS, MAX_SCALE, MAX_SIZE, Count, Procs, Scale, Seed, Size, Width

AMP_CHOICES = {
    "fp32": None,
    "bf16": "bfloat16",
    "fp16": "float16",
}  # train.amp -> torch autocast dtype (liif.train.loop)
MODEL_ARGS = {  # model.name -> the model section keys its constructor takes (liif.models.MODEL_CLASSES)
    "liif": ("encoder", "decoder_hidden", "feat_unfold", "local_ensemble", "cell_decode"),
    "metasr": ("encoder", "predictor_hidden"),
    "fixed-scale": ("encoder", "scale"),
    "bicubic": (),
}
# A name that becomes a path or a DVC stage name (variants, datasets): a DVC foreach key (no dots, spaces or '@') and
# a single folder name (no slashes, no '..', not absolute), so data/raw/<name> stays inside data/raw.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
CHECKPOINT_NAME = re.compile(r"epoch-(last|best|\d+)\.pth")


def valid_name(name: str) -> str:
    """The one rule for a name of params.yaml that becomes a path or a DVC stage name (see ``NAME``)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(
            "a name is a folder and DVC stage name: letters, digits, - and _ (no dots, spaces or slashes), "
            "starting with a letter or digit"
        )
    return name


Name = Annotated[str, AfterValidator(valid_name)]  # datasets: data/raw/<name>, data/prepared/<name>


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)  # no .inf or .nan for any float


class EdsrEncoder(Section):
    name: Literal["edsr-baseline", "edsr"]  # EDSR-baseline (paper: 16 blocks, 64 channels) or the full EDSR
    n_resblocks: Width = 16
    n_feats: Width = 64
    res_scale: Annotated[float, Field(gt=0, le=1e3)] = 1.0


class RdnEncoder(Section):
    name: Literal["rdn"]  # RDN, config B of the paper (G0 64, 16 blocks of 8 convs, growth 64)
    G0: Width = 64
    kernel_size: Annotated[int, Field(ge=1, le=31)] = 3
    n_blocks: Width = 16
    n_convs: Width = 8
    growth: Width = 64


ENCODERS = {"edsr-baseline": EdsrEncoder, "edsr": EdsrEncoder, "rdn": RdnEncoder}


class Model(Section):
    name: Literal[tuple(MODEL_ARGS)]  # liif | metasr | fixed-scale | bicubic
    encoder: EdsrEncoder | RdnEncoder = Field(discriminator="name")
    decoder_hidden: Annotated[list[Width], Field(min_length=1, max_length=64)]  # LIIF's MLP widths (paper: 4 x 256)
    feat_unfold: bool
    local_ensemble: bool
    cell_decode: bool
    predictor_hidden: Width  # MetaSR's weight predictor width
    scale: Scale  # fixed-scale up-sampler only

    @field_validator("scale")
    @classmethod
    def _sub_pixel(cls, scale: int) -> int:
        if scale != 3 and (scale < 2 or scale & (scale - 1)):
            raise ValueError(f"{scale} is not a scale of the sub-pixel up-sampler: 2, 3, 4, 8, 16, ...")
        return scale


class Train(Section):
    dataset: Name  # training images: data/prepared/<dataset>/train
    val_dataset: Name | None = None
    val_split: Literal["train", "val", "test"]
    epochs: Count
    batch_size: Size
    repeat: Count
    inp_size: Annotated[int, Field(ge=2, le=MAX_SIZE)]
    scale_min: Annotated[float, Field(ge=1, le=MAX_SCALE)]
    scale_max: Annotated[float, Field(ge=1, le=MAX_SCALE)]
    sample_q: Annotated[int, Field(ge=1, le=MAX_SIZE**2)]
    augment: bool
    channel_shuffle: bool
    lr: Annotated[float, Field(gt=0, le=1)]
    milestones: list[Count]
    gamma: Annotated[float, Field(gt=0, le=1)]
    val_images: Count
    val_repeat: Count
    seed: Seed
    amp: Literal[tuple(AMP_CHOICES)]
    task: Annotated[list[Size], Field(min_length=2, max_length=2)] | None = None  # size-varied [L, H]

    @model_validator(mode="after")
    def _consistent(self):
        if self.scale_min > self.scale_max:
            raise ValueError(f"scale_min {self.scale_min} > scale_max {self.scale_max}: scale_min ≤ scale_max")
        if self.milestones != sorted(set(self.milestones)):
            raise ValueError(f"milestones {self.milestones}: epochs in increasing order")
        if self.task and self.task[0] >= self.task[1]:
            raise ValueError(f"task {self.task}: [L, H] with L < H")
        if not math.isfinite(self.lr):
            raise ValueError("lr: a finite learning rate")
        return self


class EvalDataset(Section):
    protocol: Literal[PROTOCOLS]
    scales: Annotated[list[Scale], Field(min_length=1)] | None = None  # integers: HR is cropped to a multiple

    @field_validator("scales")
    @classmethod
    def _unique(cls, scales):
        if scales is not None and len(set(scales)) != len(scales):
            raise ValueError(f"{scales}: each scale once")
        return scales


class Eval(Section):
    checkpoint: str  # epoch-last.pth (the paper's DIV2K and benchmarks), epoch-best.pth or epoch-<n>.pth
    task_checkpoint: str  # for the size-varied tasks (the paper: epoch-best.pth)
    datasets: dict[Name, EvalDataset]
    metrics: Annotated[list[str], Field(min_length=1)]  # registered in liif/metrics; psnr always (every verdict's)

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in METRICS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a metric of liif/metrics; valid: {', '.join(METRICS.names())}")
        if len(set(names)) != len(names):
            raise ValueError("each metric once")
        if PAPER_METRIC not in names:
            raise ValueError(f"keep {PAPER_METRIC}, the paper's metric, on which every verdict is judged")
        return names

    @field_validator("checkpoint", "task_checkpoint")
    @classmethod
    def _checkpoint(cls, name: str) -> str:
        if not CHECKPOINT_NAME.fullmatch(name):
            raise ValueError(f"{name!r}: epoch-last.pth, epoch-best.pth or epoch-<n>.pth")
        return name


class DatasetSpec(Section):
    source: Literal[tuple(SOURCES)]
    catalogue: str | None = None
    split: str | None = None
    mirror: str | None = None
    path: str | None = None
    lr_scales: list[Scale] | None = None
    train: list[str] | None = None
    val: list[str] | None = None
    test: list[str] | None = None
    sizes: list[Size] | None = None
    tile: Size | None = None
    crop: Size | None = None
    val_fraction: Annotated[float, Field(gt=0, lt=1)] | None = None  # CelebA-HQ without split.json: test share
    seed: Seed | None = None  # ... and the seed of its shuffle


class Data(Section):
    datasets: dict[Name, DatasetSpec]
    lr_scales: list[Scale] | None = None  # LR sets prepare makes for the sample suite (default: x2-x4)


class Report(Section):
    profile: str  # how the report names this run
    figures: bool  # render the qualitative figures from the checkpoints
    caveat: str = ""  # what every page opens with (a profile whose budget is too small for its verdicts)


class Tracking(Section):
    enabled: bool
    experiment: str


class Runtime(Section):
    device: str  # auto | cpu | cuda[:N]
    threads: Procs
    workers: Literal["auto"] | int
    nproc: Annotated[int, Field(ge=1, le=MAX_PROCS)]
    compile: bool
    channels_last: bool
    save_every: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    tracking: Tracking

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, workers):
        if workers == "auto" or (type(workers) is int and 0 <= workers <= MAX_PROCS):
            return workers
        raise ValueError(f"auto or a whole number of loader processes from 0 to {MAX_PROCS}")

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise ValueError(f"{device!r}: auto, cpu, cuda or cuda:<n>")
        return device


assert set(Runtime.model_fields) == RUNTIME_KEYS
SECTIONS = {
    "data": Data,
    "model": None,
    "train": None,
    "eval": Eval,
    "variants": None,
    "report": Report,
    "runtime": Runtime,
}


def _closest(key: str, valid) -> str:
    match = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.5)
    return f"; did you mean {match[0]}?" if match else f"; valid keys: {', '.join(valid)}"


def _describe(error: dict, where: str, schema: type[BaseModel]) -> str:
    """One pydantic error as one line naming the key and what it accepts."""
    location = [str(part) for part in error["loc"] if not str(part).startswith(("function-", "edsr", "rdn"))]
    key = ".".join([where, *location]) if location else where
    if error["type"] == "extra_forbidden":
        parent = schema
        for part in location[:-1]:
            field = parent.model_fields.get(part)
            parent = _nested(field) if field else None
            if parent is None:
                break
        valid = list(parent.model_fields) if parent else []
        if not valid and schema is Data and len(location) == 3:  # data.datasets.<name>.<key>
            valid = list(DatasetSpec.model_fields)
        return f"params.yaml {key}: unknown key{_closest(location[-1], valid)}"
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f"{value!r}: "
    if location[-1:] == ["[key]"]:  # a name of data.datasets or eval.datasets: named by its section
        key = ".".join([where, *location[:-2]])
    return f"params.yaml {key}: {shown}{error['msg'].removeprefix('Value error, ')}{_hint(error)}"


def _hint(error: dict) -> str:
    """How to write a value that has the right meaning but the wrong YAML type (params.yaml is read as YAML 1.2,
    as DVC reads it: ``1e-05`` is a number, ``off``/``yes`` are text, a quoted number is text)."""
    value, kind = error.get("input"), error["type"]
    if kind == "bool_type":
        return " (write true or false)"
    number = None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return ""
    elif isinstance(value, float):
        number = value
    if kind == "string_type" and isinstance(value, int | float):
        return " (quote it to make it text)"
    if number is None or not math.isfinite(number):
        return ""
    if kind in ("int_type", "float_type") and isinstance(value, str):
        return " (a quoted number is text: write it without quotes)"
    if kind == "int_type" and number.is_integer():
        return f" (an integer, e.g. {int(number)})"
    return ""


def _nested(field) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _check(schema: type[BaseModel], value: Any, where: str):
    if not isinstance(value, dict):
        raise ParamsError(f"params.yaml {where}: expected a mapping of keys, found {type(value).__name__}")
    if schema is Model and isinstance(value.get("encoder"), dict):
        encoder = ENCODERS.get(value["encoder"].get("name"))
        unknown = set(value["encoder"]) - set(encoder.model_fields) if encoder else set()
        if unknown:
            key = sorted(unknown)[0]
            raise ParamsError(f"params.yaml {where}.encoder.{key}: unknown key{_closest(key, encoder.model_fields)}")
    error = _first_error(schema, value)
    if error is None:
        return
    number = error.get("input")
    if error["type"] == "int_type" and isinstance(number, float) and math.isfinite(number) and number.is_integer():
        # 1e3 for an integer key: an integer hint, unless the integer itself is out of range (1e20 threads)
        retry = _first_error(schema, _replaced(value, error["loc"], int(number)))
        if retry is not None and retry["loc"] == error["loc"]:
            error = {**retry, "input": number}
    raise ParamsError(_describe(error, where, schema))


def _first_error(schema: type[BaseModel], value: dict) -> dict | None:
    try:
        schema.model_validate(value)
    except ValidationError as e:
        return e.errors()[0]
    return None


def _replaced(value, loc: tuple, new):
    """A copy of ``value`` with the item at pydantic location ``loc`` replaced (union tags in ``loc`` skipped)."""
    if not loc:
        return new
    head, *rest = loc
    if isinstance(value, dict) and head in value:
        return {**value, head: _replaced(value[head], tuple(rest), new)}
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        return [*value[:head], _replaced(value[head], tuple(rest), new), *value[head + 1 :]]
    return _replaced(value, tuple(rest), new)  # a discriminator tag such as 'edsr-baseline'


def check_keys(override: dict, schema: type[BaseModel], where: str):
    """An override's keys (before merging) against a section's: a misspelt key is named where it was written."""
    if not isinstance(override, dict):
        raise ParamsError(f"params.yaml {where}: expected a mapping of keys, found {type(override).__name__}")
    for key in override:
        if key not in schema.model_fields:
            raise ParamsError(f"params.yaml {where}.{key}: unknown key{_closest(key, schema.model_fields)}")


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
        if key not in ("role", "model", "train"):
            raise ParamsError(f"params.yaml {where}.{key}: unknown key{_closest(key, ['role', 'model', 'train'])}")
    check_keys(entry.get("model") or {}, Model, f"{where}.model")
    check_keys(entry.get("train") or {}, Train, f"{where}.train")
    model = merge_model(params["model"], entry.get("model") or {})
    train = deep_merge(params["train"], entry.get("train") or {})
    _check(Model, model, f"{where}.model")  # the base sections passed already: what fails here, the override set
    _check(Train, train, f"{where}.train")
    _check_queries(model, train, f"{where}.train")
    for key in ("dataset", "val_dataset"):
        _check_known_dataset(params, train.get(key), f"{where}.train.{key}")


def _check_known_dataset(params: dict, name: str | None, where: str):
    """A dataset a recipe or the evaluation names must be one ``data.datasets`` makes (a profile stacked over
    another could otherwise leave ``train.dataset`` naming a dataset the later profile dropped)."""
    datasets = (params.get("data") or {}).get("datasets")
    if name is not None and isinstance(datasets, dict) and name not in datasets:
        raise ParamsError(
            f"params.yaml {where}: {name!r} is not a dataset of data.datasets{_closest(name, list(datasets))}"
        )


def _check_queries(model: dict, train: dict, where: str):
    """LIIF and MetaSR sample ``sample_q`` pixels of each patch: the patch must have that many."""
    if model["name"] in ("liif", "metasr"):
        pixels = train["task"][0] ** 2 if train.get("task") else train["inp_size"] ** 2
        if train["sample_q"] > pixels:
            size = f"task L {train['task'][0]}" if train.get("task") else f"inp_size {train['inp_size']}"
            raise ParamsError(
                f"params.yaml {where}.sample_q: {train['sample_q']} queries per patch need as many pixels; the "
                f"{size} patch has {pixels}: sample_q ≤ {pixels}"
            )


def check_params(params: dict, *, variants: list[str] | None = None, sections=tuple(SECTIONS)):
    """The named sections of params.yaml (all by default) and variants (all when None); raises ParamsError,
    one line naming the key and what it accepts."""
    if not isinstance(params, dict):
        raise ParamsError("params.yaml: expected a mapping of sections")
    for section in params:
        if section not in SECTIONS:
            raise ParamsError(f"params.yaml {section}: unknown section{_closest(section, SECTIONS)}")
    for section in sections:
        if section not in params:
            raise ParamsError(f"params.yaml: the {section} section is missing")
        if SECTIONS[section] is not None:
            _check(SECTIONS[section], params[section], section)
    if "eval" in sections and "data" in params:
        for name in params["eval"]["datasets"]:
            _check_known_dataset(params, name, f"eval.datasets.{name}")
    if "variants" not in sections:
        return
    _check(Model, params["model"], "model")
    _check(Train, params["train"], "train")
    _check_queries(params["model"], params["train"], "train")
    if not isinstance(params["variants"], dict) or not params["variants"]:
        raise ParamsError("params.yaml variants: expected a mapping of at least one variant")
    for variant in params["variants"] if variants is None else variants:
        if variant not in params["variants"]:
            raise ParamsError(f"params.yaml variants.{variant}: no such variant{_closest(variant, params['variants'])}")
        check_variant(params, variant)
