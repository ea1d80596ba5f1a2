"""Value types with their ranges, shared by every registered component's signature and by the params.yaml schema.

A component's keyword-only constructor arguments, annotated with these, are its configuration: the schema is built
from the signature, so a range is written once, here or in the signature, and the component never imports pydantic.
The upper bounds are generous, far beyond any study, but low enough that a typo (an extra zero or three) is refused
instead of hanging a run for years or asking for more memory than any machine has.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from annotated_types import Interval, Len

MAX_SEED = 2**32  # numpy's seeds are below 2**32, and seed * 100_003 + epoch stays a 64-bit torch seed
MAX_COUNT = 10**6  # epochs, repeats, images, checkpoint frequency: a million epochs of the smallest set is years
MAX_SIZE = 8192  # pixels of a patch, square or crop and samples per batch: one such batch fills a GPU
MAX_WIDTH = 4096  # channels, blocks and hidden units of a model (the paper's largest is 256)
MAX_SCALE = 64  # an up-sampling factor (the paper's largest is x30)
MAX_PROCS = 4096  # threads, loader workers and processes: more than any machine has cores

Count = Annotated[int, Interval(ge=1, le=MAX_COUNT)]
Size = Annotated[int, Interval(ge=1, le=MAX_SIZE)]
Width = Annotated[int, Interval(ge=1, le=MAX_WIDTH)]
Widths = Annotated[list[Width], Len(min_length=1, max_length=64)]  # the hidden layers of an MLP
Scale = Annotated[int, Interval(ge=1, le=MAX_SCALE)]
Seed = Annotated[int, Interval(ge=0, lt=MAX_SEED)]
Procs = Annotated[int, Interval(ge=0, le=MAX_PROCS)]
KernelSize = Annotated[int, Interval(ge=1, le=31)]
ResScale = Annotated[float, Interval(gt=0, le=1e3)]  # a residual branch's multiplier


@dataclass(frozen=True)
class Check:
    """A further check of a setting, after its type and range: ``fn(value)`` returns the value or raises
    ValueError saying what it accepts (the schema reports it as the key's error)."""

    fn: Callable


@dataclass(frozen=True)
class Component:
    """Marks a setting that is another registry's component: a section ``{name: ..., <its settings>}`` checked
    against the settings of the component it names (``Component("encoder")``: a model's ``encoder``)."""

    kind: str


EncoderSection = Annotated[dict, Component("encoder")]

Split = Literal["train", "val", "test"]  # the splits of data/prepared/<name> (liif.data.layout)
SPLITS: tuple[str, ...] = get_args(Split)
