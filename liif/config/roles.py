"""What each variant *is* in the study, declared once in ``params.yaml`` (``variants.<v>.role``).

The report, its pages, figures and the paper comparison read variants through
these roles, never through their names: rename ``upsample-x2`` or add
``liif-noshuffle`` and every verdict still finds them. A role is not part of a
variant's identity (``liif.config.variants.resolve_variant`` leaves it out), so
declaring or changing one retrains nothing. What a role implies is read from
the variant's resolved configuration, not written twice: the scale of a
fixed-scale up-sampler is its ``model.scale``, that of single-scale training
its ``train.scale_min``, a size-varied task its ``train.task``.

Roles, as written in ``params.yaml``::

    role: base                     # the study's LIIF: every difference is taken from it (exactly one)
    role: liif                     # LIIF with another encoder (paper: RDN-LIIF)
    role: bicubic                  # the bicubic baseline
    role: metasr                   # the MetaSR baseline
    role: successor                # a later implicit model (LTE): RQ5 reports it minus the LIIF of its encoder
    role: fixed-scale              # a fixed-scale up-sampler, at its model.scale
    role: single-scale             # LIIF trained at one scale only (train.scale_min = scale_max)
    role: size-varied              # a size-varied ground-truth task (LIIF, or the up-sampler on resized GTs)
    role: {ablation: cell_decode}  # the base without one component (see ABLATIONS)
    role: {seed_of: liif}          # the named variant again with another seed: the noise of every verdict
    role: released                 # LIIF's weights trained elsewhere (checkpoint:), scored here, never trained
    role: {released: metasr}       # ... of another model, named: the paper's row its weights stand for
    role: other                    # a variant of your own: in the tables and plots, in no verdict
"""

from dataclasses import dataclass

from liif.config.variants import resolve_variant
from liif.errors import UserError
from liif.models import MODELS

ABLATIONS = {  # component -> (its name, what the ablated model lacks), in the report's words
    "cell_decode": ("cell decoding", "no cell decoding"),
    "feat_unfold": ("feature unfolding", "no feature unfolding"),
    "local_ensemble": ("local ensemble", "no local ensemble"),
    "decoder_depth": ("decoder depth", "decoder depth halved"),
}
KINDS = (
    "base",
    "liif",
    "bicubic",
    "metasr",
    "successor",
    "fixed-scale",
    "single-scale",
    "size-varied",
    "ablation",
    "seed_of",
    "released",
    "other",
)
LIIF = "liif"  # the model of the study's LIIF roles (liif.models); every other use of a model name reads it here
MODEL_OF_KIND = {  # the model a role requires: the study's LIIF, or the baseline model the role is named after
    "base": LIIF,
    "liif": LIIF,
    "single-scale": LIIF,
    "ablation": LIIF,
    **{kind: kind for kind in ("bicubic", "metasr", "fixed-scale")},
}


SIZE_VARIED_METHODS = ("liif", "up-sampling")  # a size-varied task's methods: LIIF, the up-sampler on resized GTs


class RoleError(UserError):
    """A role that is missing, unknown or contradicts the variant's configuration."""


@dataclass(frozen=True)
class Role:
    kind: str
    model: str  # the resolved model name (liif, metasr, fixed-scale, bicubic)
    encoder: str | None  # the encoder name (None for Bicubic)
    scale: int | None = None  # fixed-scale and single-scale: the one scale it is for
    component: str | None = None  # ablation: the component removed
    of: str | None = None  # seed_of: the variant it replicates
    task: tuple[int, int] | None = None  # size-varied: (L, H)
    dataset: str | None = None  # size-varied: the dataset of its task
    scale_range: tuple[float, float] | None = None  # the training scales of a LIIF (scale_min, scale_max)
    stands_for: str | None = None  # released: the kind of trained variant whose paper row the weights reproduce
    title: str = ""  # how the report names its model ("LTE", the model's title; its name where it has none)
    cell_rule: str | None = None  # where rendering decodes another cell than one output pixel, in words (SRModel)


def _parse(declared, variant: str) -> tuple[str, str | None]:
    """(kind, argument) of a role as written in params.yaml."""
    where = f"params.yaml variants.{variant}.role"
    if declared is None:
        raise RoleError(f"{where}: missing; declare what the variant is, one of {', '.join(KINDS)} (docs/variants.md)")
    if isinstance(declared, str):
        if declared in ("ablation", "seed_of"):
            raise RoleError(
                f"{where}: write {{{declared}: ...}} naming the {'component' if declared == 'ablation' else 'variant'}"
            )
        if declared not in KINDS:
            raise RoleError(f"{where}: {declared!r} is not a role; expected one of {', '.join(KINDS)}")
        return declared, None
    if isinstance(declared, dict) and len(declared) == 1:
        ((kind, argument),) = declared.items()
        if kind in ("ablation", "seed_of", "released") and isinstance(argument, str):
            return kind, argument
    raise RoleError(
        f"{where}: {declared!r} is not a role; expected a name or {{ablation: <component>}} / {{seed_of: <variant>}}"
        " / {released: <model>}"
    )


def role_of(params: dict, variant: str) -> Role:
    """The checked role of one variant, with what it implies read from its resolved configuration."""
    kind, argument = _parse((params["variants"][variant] or {}).get("role"), variant)
    config = resolve_variant(params, variant)
    model, train = config["model"], config["train"] or {}
    encoder = (model["args"].get("encoder") or {}).get("name")
    where = f"params.yaml variants.{variant}.role {kind}"
    cls = MODELS.get(model["name"])
    role = Role(
        kind=kind,
        model=model["name"],
        encoder=encoder,
        title=cls.title or model["name"],
        cell_rule=cls.cell_rule(model["args"]),
    )
    if kind == "released" or "checkpoint" in config:
        return _released(role, argument, config, where)
    required = MODEL_OF_KIND.get(kind)
    if required and model["name"] != required:
        raise RoleError(f"{where}: needs model.name {required}, the variant resolves to {model['name']}")
    if kind == "successor" and model["name"] in MODEL_OF_KIND.values():
        raise RoleError(
            f"{where}: a successor is a later model compared with LIIF; {model['name']} has its own role "
            f"({', '.join(k for k, m in MODEL_OF_KIND.items() if m == model['name'])})"
        )
    if model["name"] == LIIF and "scale_min" in train:
        role = _with(role, scale_range=(train["scale_min"], train["scale_max"]))
    if kind == "fixed-scale":
        return _with(role, scale=int(model["args"]["scale"]))
    if kind == "single-scale":
        if train["scale_min"] != train["scale_max"]:
            raise RoleError(
                f"{where}: needs train.scale_min = scale_max, found {train['scale_min']}-{train['scale_max']}"
            )
        return _with(role, scale=int(train["scale_min"]))
    if kind == "size-varied":
        if not train.get("task"):
            raise RoleError(f"{where}: needs train.task [L, H]")
        return _with(role, task=tuple(int(s) for s in train["task"]), dataset=train["dataset"])
    if kind == "ablation":
        where = f"params.yaml variants.{variant}.role {{ablation: {argument}}}"
        if argument not in ABLATIONS:
            raise RoleError(f"{where}: {argument!r} is not a component; expected one of {', '.join(ABLATIONS)}")
        if not _check_ablation(params, variant, argument, config, where):
            return _with(role, kind="other")  # the base lacks the component too: nothing for RQ4 to measure
        return _with(role, component=argument)
    if kind == "seed_of":
        where = f"params.yaml variants.{variant}.role {{seed_of: {argument}}}"
        if argument not in params["variants"]:
            raise RoleError(f"{where}: {argument!r} is not a variant of params.yaml")
        _check_replicate(params, variant, argument, config, where)
        return _with(role, of=argument)
    return role


def _released(role: Role, named: str | None, config: dict, where: str) -> Role:
    """Released weights (``checkpoint:``) stand for the paper's row of the model they are: the study's LIIF
    unless the role names another model (``{released: metasr}``), which the variant must then resolve to."""
    if role.kind != "released":
        raise RoleError(f"{where}: the variant names released weights (checkpoint:); declare role released")
    if "checkpoint" not in config:
        raise RoleError(f"{where}: needs checkpoint: {{url: ...}} or {{path: ...}}, the weights it scores")
    if role.model != (named or LIIF):
        fix = f"set model.name {named}" if named else f"write role {{released: {role.model}}} to say which model"
        raise RoleError(f"{where}: the variant resolves to model {role.model}, not {named or LIIF}; {fix}")
    kind = next(
        (k for k in ("liif", "metasr", "fixed-scale", "bicubic") if MODEL_OF_KIND[k] == role.model), "successor"
    )
    scale = config["model"]["args"].get("scale") if kind == "fixed-scale" else None
    return _with(role, stands_for=kind, scale=scale)


def _settings(config: dict) -> dict:
    """A resolved configuration as ``params.yaml`` keys (``model.cell_decode``, ``train.seed``) -> value."""
    out = {"model.name": config["model"]["name"]}
    pending = [("model", config["model"]["args"]), ("train", config["train"] or {})]
    while pending:
        prefix, section = pending.pop()
        for key, value in section.items():
            if isinstance(value, dict):
                pending.append((f"{prefix}.{key}", value))
            else:
                out[f"{prefix}.{key}"] = value
    return out


def _differences(config: dict, other: dict) -> list[str]:
    """The keys in which two resolved configurations differ."""
    mine, theirs = _settings(config), _settings(other)
    return sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))


def _check_replicate(params: dict, variant: str, of: str, config: dict, where: str):
    """A seed replicate is its variant trained again with another seed, and nothing else: otherwise the seed
    noise every verdict is judged by is zero (the same run twice) or mixed with another change."""
    if of == variant:
        raise RoleError(f"{where}: names {variant} itself; name the variant it replicates with another seed")
    original = resolve_variant(params, of)
    if original["model"]["name"] != config["model"]["name"]:
        raise RoleError(
            f"{where}: {variant} is a {config['model']['name']} model and {of} a {original['model']['name']}; "
            "seed_of names a variant of the same model"
        )
    if original["train"] is None:
        raise RoleError(f"{where}: {of} learns nothing, so no seed changes it; remove {variant} or its role")
    changed = _differences(config, original)
    if not changed:
        hint = (
            " (a profile's every_variant.train.seed gives every variant one seed)"
            if _sets_seed(params, variant)
            else ""
        )
        raise RoleError(
            f"{where}: resolves to the same configuration as {of}; set variants.{variant}.train.seed "
            f"to another seed{hint}"
        )
    if changed != ["train.seed"]:
        others = ", ".join(key for key in changed if key != "train.seed")
        raise RoleError(f"{where}: differs from {of} in {others}; a seed replicate changes train.seed alone")
    for sibling, override in params["variants"].items():
        declared = (override or {}).get("role")
        if sibling != variant and declared == {"seed_of": of}:
            seed = resolve_variant(params, sibling)["train"]["seed"]
            if seed == config["train"]["seed"]:
                raise RoleError(
                    f"{where}: has the same train.seed {seed} as {sibling}; give each replicate of {of} its own seed"
                )


def _sets_seed(params: dict, variant: str) -> bool:
    return "seed" in ((params["variants"][variant] or {}).get("train") or {})


def _check_ablation(params: dict, variant: str, component: str, config: dict, where: str) -> bool:
    """An ablation is the base model without its component and otherwise the same model and recipe: the
    report reads its difference from the base as what the component adds. False where the base itself was
    changed to lack it (``dvc exp run -S model.cell_decode=false``): the two are then the same model."""
    bases = [v for v, override in params["variants"].items() if (override or {}).get("role") == "base"]
    if not bases:
        raise RoleError(f"{where}: no variant declares role base, the model it removes {component} from")
    base = bases[0]
    original = resolve_variant(params, base)
    if original["model"]["name"] != LIIF:
        return True  # study_roles names the base's wrong model
    key = "decoder_hidden" if component == "decoder_depth" else component
    mine, theirs = config["model"]["args"][key], original["model"]["args"][key]
    others = [k for k in _differences(config, original) if k != f"model.{key}"]
    if others:
        raise RoleError(
            f"{where}: differs from {base} also in {', '.join(others)}; an ablation removes {component} "
            "and changes nothing else"
        )
    if component == "decoder_depth":
        if mine == theirs and key in ((params["variants"][variant] or {}).get("model") or {}):
            return False  # the base's decoder was made the ablation's own
        if len(mine) >= len(theirs):
            fewer = theirs[: max(1, len(theirs) // 2)]
            raise RoleError(
                f"{where}: has {len(mine)} decoder layers, {base} {len(theirs)}; set "
                f"variants.{variant}.model.decoder_hidden to fewer layers, e.g. {fewer}"
            )
    elif mine is not False:
        raise RoleError(
            f"{where}: resolves to model.{key} {str(mine).lower()}, as {base} does; set "
            f"variants.{variant}.model.{key}: false"
        )
    return theirs is True or component == "decoder_depth"


def _with(role: Role, **changes) -> Role:
    return Role(**{**role.__dict__, **changes})


@dataclass(frozen=True)
class Roles:
    """Every variant's role, and the questions the report asks of them."""

    of: dict[str, Role]

    def kind(self, kind: str) -> list[str]:
        return [v for v, r in self.of.items() if r.kind == kind]

    def liif_by_encoder(self) -> dict[str | None, str]:
        """The study's LIIF of each encoder (the base, and a LIIF of another encoder such as RDN-LIIF)."""
        return {self.of[v].encoder: v for v in self.kind("liif") + self.kind("base")}

    def one(self, kind: str) -> str | None:
        found = self.kind(kind)
        return found[0] if found else None

    @property
    def base(self) -> str | None:
        return self.one("base")

    @property
    def bicubic(self) -> str | None:
        return self.one("bicubic")

    def baselines(self) -> dict[str, str | None]:
        """The baselines LIIF is compared with in every table, by role: Bicubic and MetaSR."""
        return {"bicubic": self.bicubic, "metasr": self.metasr}

    @property
    def metasr(self) -> str | None:
        """The MetaSR with the base model's encoder (the one LIIF is compared with)."""
        return next((v for v in self.kind("metasr") if self.of[v].encoder == self.base_encoder), None)

    @property
    def base_encoder(self) -> str | None:
        return self.of[self.base].encoder if self.base else None

    def replicates(self) -> dict[str, list[str]]:
        """Variant -> its extra-seed variants."""
        out: dict[str, list[str]] = {}
        for variant in self.kind("seed_of"):
            out.setdefault(self.of[variant].of, []).append(variant)
        return out

    def ablations(self) -> dict[str, tuple[str, str]]:
        """Ablation variant -> (the component's name, what the variant lacks), in words."""
        return {v: ABLATIONS[self.of[v].component] for v in self.kind("ablation")}

    def successors(self) -> dict[str, str]:
        """The later implicit models (role successor) -> the study's LIIF of their encoder, which they are set
        against (the base where no LIIF has that encoder)."""
        liif_of = self.liif_by_encoder()
        return {v: liif_of.get(self.of[v].encoder, self.base) for v in self.kind("successor")}

    def single_scale(self) -> dict[str, int]:
        return {v: self.of[v].scale for v in self.kind("single-scale")}

    def fixed_scale(self) -> dict[str, int]:
        """The fixed-scale up-samplers with the base encoder -> their scale (size-varied ones excluded)."""
        return {v: self.of[v].scale for v in self.kind("fixed-scale") if self.of[v].encoder == self.base_encoder}

    def in_distribution(self, scales) -> list:
        """The scales within the base model's training range (train.scale_min to scale_max)."""
        low, high = self.training_range()
        return [s for s in scales if low <= s <= high]

    def training_range(self) -> tuple[float, float]:
        role = self.of.get(self.base) if self.base else None
        if role is None or role.scale_range is None:
            return (1, 4)  # no base LIIF in this profile: the paper's range
        return role.scale_range

    def size_varied(self) -> dict[tuple[str, tuple[int, int]], dict[str, str]]:
        """(dataset, task) -> {method: variant} for each size-varied task, a method of ``SIZE_VARIED_METHODS``."""
        out: dict = {}
        for variant in self.kind("size-varied"):
            role = self.of[variant]
            method = SIZE_VARIED_METHODS[role.model == MODEL_OF_KIND["fixed-scale"]]
            out.setdefault((role.dataset, role.task), {})[method] = variant
        return out


def study_roles(params: dict) -> Roles:
    """The roles of every variant of ``params``, checked: one base at most, seeds of existing non-seed variants."""
    roles = Roles({variant: role_of(params, variant) for variant in params["variants"]})
    if len(roles.kind("base")) > 1:
        raise RoleError(f"params.yaml variants: {', '.join(roles.kind('base'))} all declare role base; keep one")
    for variant in roles.kind("seed_of"):
        if roles.of[roles.of[variant].of].kind == "seed_of":
            raise RoleError(f"params.yaml variants.{variant}.role: seed_of names another seed replicate")
    return roles
