"""The metric registry: a name of ``eval.metrics`` -> a function scoring a prediction against its HR image.

A metric is ``fn(pred, target, *, protocol, scale, grey) -> float`` on float (3, H, W) images in [0, 1] (not
quantised, peak 1), or (1, H, W) grey ones (a grey model's), scored on the crop and channels of the protocol
(``liif.protocol``). ``grey`` is True
only when the CLI's ``--grey-luma`` asks to take a greyscale original's luminance to be its grey level; a metric
that has no use for it ignores it. A module of this package registers its metric with ``@metric(...)``, so one new
module is all a new metric needs: the evaluation writes its means to ``metrics/eval/<v>.json`` and a column of
the per-image TSV, and the report shows it, once ``eval.metrics`` in params.yaml names it.
"""

from liif.protocol import PAPER_METRIC, PROTOCOLS, shave_for
from liif.registry import Registry

METRICS = Registry("metric")

__all__ = ["METRICS", "PAPER_METRIC", "PROTOCOLS", "metric", "shave_for"]


def metric(name: str, *, higher_is_better: bool, unit: str = "", digits: int = 4, shown: int = 2):
    """Register a metric function as ``name``. ``digits``: decimals of the per-image values and of the rounded
    means in the metrics files; ``shown``: decimals in the report's tables; ``unit``: printed after a value."""

    def register(fn):
        fn.higher_is_better, fn.unit, fn.digits, fn.shown = higher_is_better, unit, digits, shown
        return METRICS.register(name)(fn)

    return register
