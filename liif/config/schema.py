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
import json
import math
import os
import re
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from liif.config.params import RUNTIME_ENV, ParamsError, deep_merge
from liif.protocol import PAPER_METRIC, PROTOCOL_SCALES, PROTOCOLS, SHIPPED_LR_SCALES
from liif.registry import REQUIRED, Registry, settings
from liif.types import (
    MAX_COUNT,
    MAX_PROCS,
    MAX_SCALE,
    MAX_SIZE,
    Check,
    Component,
    Count,
    Procs,
    Scale,
    Seed,
    Size,
    Split,
)

AMP_CHOICES = {
    "fp32": None,
    "bf16": "bfloat16",
    "fp16": "float16",
}  # train.amp -> torch autocast dtype (liif.train.loop)
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


_UNION_KINDS: set[str] = set()  # the kinds of component whose sections sit in a schema as a union tagged by name


def component_schema(registry: Registry, name: str) -> type[BaseModel]:
    """The schema of a section naming a registered component (``model``, ``model.encoder``): its ``name`` and
    the component's settings (``liif.registry.settings``: keyword-only arguments, annotations and defaults)."""
    return _component_schema(registry.get(name))


@cache
def _component_schema(component) -> type[BaseModel]:
    fields = {
        key: (_pydantic(annotation), ... if default is REQUIRED else default)
        for key, (annotation, default) in settings(component).items()
    }
    return create_model(f"{component.__name__}Section", __base__=Section, name=(Literal[component.name], ...), **fields)


def _pydantic(annotation):
    """A setting's annotation as pydantic reads it: a ``Check`` runs after the type and range, a ``Component``
    is the section of any component its registry holds (told apart by ``name``)."""
    if get_origin(annotation) is not Annotated:
        return annotation
    base, *metadata = get_args(annotation)
    for item in metadata:
        if isinstance(item, Component):
            registry = Registry.of(item.kind)
            _UNION_KINDS.add(item.kind)
            schemas = tuple(component_schema(registry, name) for name in registry.names())
            return Annotated[Union[schemas], Field(discriminator="name")] if len(schemas) > 1 else schemas[0]  # noqa: UP007
    return Annotated[(base, *[AfterValidator(item.fn) if isinstance(item, Check) else item for item in metadata])]


def _component_settings(component) -> dict[str, Registry]:
    """The settings of a component that are sections of another registry's components (a model's encoder)."""
    out = {}
    for key, (annotation, _) in settings(component).items():
        kinds = [item.kind for item in get_args(annotation)[1:] if isinstance(item, Component)]
        if get_origin(annotation) is Annotated and kinds:
            out[key] = Registry.of(kinds[0])
    return out


class Train(Section):
    dataset: Name  # training images: data/prepared/<dataset>/train
    val_dataset: Name | None = None
    val_split: Split
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


class Checkpoint(Section):
    """``variants.<v>.checkpoint``: weights trained elsewhere, scored instead of trained (``liif.train.released``).
    Without ``sha256`` the first verified copy's is recorded, and every later copy must match it."""

    url: str | None = None  # http(s), downloaded into models/<v>/
    path: Annotated[str, Field(min_length=1)] | None = None  # a file, copied into models/<v>/
    sha256: str | None = None  # 64 lowercase hex digits, as sha256sum prints them

    @field_validator("url")
    @classmethod
    def _url(cls, url):
        if url is not None and not re.fullmatch(r"https?://\S+", url):
            raise ValueError("an http:// or https:// address")
        return url

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, digest):
        if digest is not None and not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError("64 lowercase hexadecimal digits, as sha256sum prints them")
        return digest

    @model_validator(mode="after")
    def _one_source(self):
        if self.url is not None and self.path is not None:
            raise ValueError("url and path both given: keep the one the weights come from")
        if self.url is None and self.path is None:
            raise ValueError("missing url or path: where the weights come from")
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

    @model_validator(mode="after")
    def _paper_scales(self):
        """Without ``scales``, the paper's scales of the protocol (its tables); ``none`` has none."""
        if self.scales is None:
            if self.protocol not in PROTOCOL_SCALES:
                raise ValueError(f"protocol {self.protocol} has no paper scales: list the scales to evaluate")
            self.scales = list(PROTOCOL_SCALES[self.protocol])
        return self


class Eval(Section):
    checkpoint: str  # epoch-last.pth (the paper's DIV2K and benchmarks), epoch-best.pth or epoch-<n>.pth
    task_checkpoint: str  # for the size-varied tasks (the paper: epoch-best.pth)
    datasets: dict[Name, EvalDataset]
    metrics: Annotated[list[str], Field(min_length=1)]  # registered in liif/metrics; psnr always (every verdict's)

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in Registry.of("metric")]
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not a metric of liif/metrics; valid: {', '.join(Registry.of('metric').names())}"
            )
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


def dataset_spec(source: str) -> type[BaseModel]:
    """The schema of a ``data.datasets.<name>`` entry naming ``source``: ``source`` itself plus the keyword-only
    constructor arguments of that registered source (``liif.sources``), with their annotations and defaults."""
    return _dataset_spec(Registry.of("dataset source").get(source))


@cache
def _dataset_spec(component) -> type[BaseModel]:
    fields = {
        key: (_pydantic(annotation), ... if default is REQUIRED else default)
        for key, (annotation, default) in settings(component).items()
    }
    return create_model(f"{component.__name__}Spec", __base__=Section, source=(Literal[component.name], ...), **fields)


FOLDER_SOURCE = "folder"  # the source of every data.folders entry (liif/sources/folder.py)


def datasets_of(data: dict) -> dict[str, dict]:
    """Every dataset params.yaml makes, by name: ``data.datasets`` and ``data.folders`` (source ``folder``)."""
    folders = {name: {"source": FOLDER_SOURCE, **spec} for name, spec in (data.get("folders") or {}).items()}
    return {**(data.get("datasets") or {}), **folders}


def _where(data: dict, name: str) -> str:
    return f"data.folders.{name}" if name in (data.get("folders") or {}) else f"data.datasets.{name}"


class Data(Section):
    datasets: dict[Name, dict]  # each checked by the schema of its source (dataset_spec)
    folders: dict[Name, dict] = {}  # folders of your own images: each a dataset of source folder, in place
    lr_scales: list[Scale] = list(SHIPPED_LR_SCALES)  # LR sets prepare makes where a source ships none

    @model_validator(mode="after")
    def _sources(self):
        for name in set(self.datasets) & set(self.folders):
            raise ParamsError(f"params.yaml data.folders.{name}: also a dataset of data.datasets; rename one")
        data = {"datasets": self.datasets, "folders": self.folders}
        for name, spec in datasets_of(data).items():
            where = _where(data, name)
            if not isinstance(spec, dict):
                raise ParamsError(f"params.yaml {where}: expected a mapping of keys, found {type(spec).__name__}")
            source = spec.get("source")
            if source == FOLDER_SOURCE and where.startswith("data.datasets"):
                raise ParamsError(
                    f"params.yaml {where}.source: a folder of your own images goes under data.folders.{name} "
                    "(without source:), where DVC watches its files; move the entry there"
                )
            if not isinstance(source, str) or source not in Registry.of("dataset source"):
                problem = "missing" if source is None else f"{source!r} is not a dataset source of liif/sources"
                valid = [other for other in Registry.of("dataset source").names() if other != FOLDER_SOURCE]
                raise ParamsError(f"params.yaml {where}.source: {problem}; valid: {', '.join(valid)}")
            schema = dataset_spec(source)
            for key in spec:
                others = [
                    other for other in Registry.of("dataset source").names() if key in dataset_spec(other).model_fields
                ]
                if key not in schema.model_fields and others:
                    raise ParamsError(
                        f"params.yaml {where}.{key}: unknown key for source {source} (a key of source "
                        f"{' and '.join(others)})"
                    )
            check_section(schema, spec, where)
        return self


class Report(Section):
    profile: str  # how the report names this run
    figures: bool  # render the qualitative figures from the checkpoints
    caveat: str = ""  # what every page opens with (a profile whose budget is too small for its verdicts)


class Tracking(Section):
    enabled: bool
    experiment: str
    system_metrics: Annotated[float, Field(ge=0, le=3600)] = 10.0  # seconds between CPU/memory/GPU samples (0: off)


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


RUNTIME_KEYS = frozenset(Runtime.model_fields)  # also the keys LIIF_RUNTIME may override
SECTIONS = {
    "data": Data,
    "model": None,
    "train": None,
    "eval": Eval,
    "variants": None,
    "report": Report,
    "runtime": Runtime,
}


def closest(key: str, valid) -> str:
    match = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.5)
    return f"; did you mean {match[0]}?" if match else f"; valid keys: {', '.join(valid)}"


def _describe(error: dict, where: str, schema: type[BaseModel]) -> str:
    """One pydantic error as one line naming the key and what it accepts."""
    tags = {name for registry in _component_registries() for name in registry.names()}  # a union's tag
    location = [str(part) for part in error["loc"] if not str(part).startswith("function-") and part not in tags]
    key = ".".join([where, *location]) if location else where
    if error["type"] == "extra_forbidden":
        parent = schema
        for part in location[:-1]:
            field = parent.model_fields.get(part)
            parent = _nested(field) if field else None
            if parent is None:
                break
        valid = list(parent.model_fields) if parent else []
        return f"params.yaml {key}: unknown key{closest(location[-1], valid)}"
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


def check_section(schema: type[BaseModel], value: Any, where: str):
    if not isinstance(value, dict):
        raise ParamsError(f"params.yaml {where}: expected a mapping of keys, found {type(value).__name__}")
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


def check_component(registry: Registry, value: Any, where: str):
    """A section naming a registered component (``model``): its name, the keys of its sub-sections naming other
    components (``model.encoder``), then every value against the component's settings."""
    if not isinstance(value, dict):
        raise ParamsError(f"params.yaml {where}: expected a mapping of keys, found {type(value).__name__}")
    schema = component_schema(registry, known_name(registry, value.get("name"), f"{where}.name"))
    for key, inner in _component_settings(registry.get(value["name"])).items():
        section = value.get(key)
        if isinstance(section, dict) and section.get("name") in inner:
            check_keys(section, component_schema(inner, section["name"]), f"{where}.{key}")
    check_section(schema, value, where)


def known_name(registry: Registry, name, where: str) -> str:
    if isinstance(name, str) and name in registry:
        return name
    valid = registry.names()
    if name is None:
        raise ParamsError(f"params.yaml {where}: missing; valid: {', '.join(valid)}")
    match = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    hint = f"did you mean {match[0]}? " if match else ""
    raise ParamsError(f"params.yaml {where}: {name!r} is not a {registry.kind}; {hint}valid: {', '.join(valid)}")


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
    return _replaced(value, tuple(rest), new)  # a discriminator tag: the name of an encoder


def check_keys(override: dict, schema: type[BaseModel], where: str):
    """An override's keys (before merging) against a section's: a misspelt key is named where it was written."""
    if not isinstance(override, dict):
        raise ParamsError(f"params.yaml {where}: expected a mapping of keys, found {type(override).__name__}")
    for key in override:
        if key not in schema.model_fields:
            raise ParamsError(f"params.yaml {where}.{key}: unknown key{closest(key, schema.model_fields)}")


def check_known_dataset(params: dict, name: str | None, where: str):
    """A dataset a recipe or the evaluation names must be one ``data.datasets`` or ``data.folders`` makes (a profile stacked over
    another could otherwise leave ``train.dataset`` naming a dataset the later profile dropped)."""
    data = params.get("data") or {}
    if not isinstance(data.get("datasets"), dict) or not isinstance(data.get("folders") or {}, dict):
        return
    datasets = datasets_of(data)
    if name is not None and name not in datasets:
        raise ParamsError(
            f"params.yaml {where}: {name!r} is not a dataset of data.datasets or data.folders"
            f"{closest(name, list(datasets))}"
        )


def check_sections(params: dict, *, sections=tuple(SECTIONS)) -> dict:
    """The named sections of params.yaml that no variant resolves (data, eval, report, runtime; the model, train
    and variants sections are ``liif.config.variants.check_params``'); raises ParamsError, one line naming the
    key and what it accepts. Returns ``params`` with each checked section as validated, defaults filled in (the
    one home of a section's defaults is its schema), which is what the stages read."""
    if not isinstance(params, dict):
        raise ParamsError("params.yaml: expected a mapping of sections")
    for section in params:
        if section not in SECTIONS:
            raise ParamsError(f"params.yaml {section}: unknown section{closest(section, SECTIONS)}")
    for section in sections:
        if section not in params:
            raise ParamsError(f"params.yaml: the {section} section is missing")
        if SECTIONS[section] is not None:
            check_section(SECTIONS[section], params[section], section)
    if "eval" in sections and "data" in params:
        for name in params["eval"]["datasets"]:
            check_known_dataset(params, name, f"eval.datasets.{name}")
    validated = dict(params)
    for section in sections:
        if SECTIONS[section] is not None:
            validated[section] = SECTIONS[section].model_validate(params[section]).model_dump()
    return validated


def runtime_settings(params: dict) -> dict:
    """The ``runtime`` section, checked (``Runtime``): how a stage runs, never what it computes, so no result
    depends on it (it is not a DVC parameter and not part of a variant's identity).

    ``LIIF_RUNTIME``, a JSON object in the environment, overrides its keys for one process: ``liif repro`` gives
    each parallel job its share of the cores this way (``{"threads": 1}``) without touching params.yaml.
    """
    override = os.environ.get(RUNTIME_ENV)
    if not override:
        check_sections(params, sections=("runtime",))
        return params["runtime"]
    try:
        values = json.loads(override)
    except json.JSONDecodeError as e:
        raise ParamsError(f"{RUNTIME_ENV}={override!r}: not a JSON object ({e.msg})") from None
    if not isinstance(values, dict):
        raise ParamsError(f"{RUNTIME_ENV}={override!r}: expected a JSON object of runtime keys")
    merged = {**params, "runtime": deep_merge(params.get("runtime") or {}, values)}
    try:
        check_sections(merged, sections=("runtime",))
    except ParamsError as e:
        check_sections(params, sections=("runtime",))  # a mistake of params.yaml itself is named there
        raise ParamsError(str(e).replace("params.yaml runtime.", f"{RUNTIME_ENV} ", 1)) from None
    return merged["runtime"]


def _component_registries() -> list[Registry]:
    """The registries whose components' names can tag a union inside a schema (a model's encoder section)."""
    return [Registry.of(kind) for kind in sorted(_UNION_KINDS)]
