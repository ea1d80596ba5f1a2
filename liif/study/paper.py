"""The paper's published PSNR (dB), for reports that put our numbers next to them (spec section 1).

Rows are keyed by the paper's own names (``liif-c``, ``rdn-metasr``); ``paper_row`` maps a variant's
declared role to its row; the scales of each table are those of ``liif.protocol``.
"""

from dataclasses import replace

from liif.protocol import BENCHMARK_SCALES, DIV2K_SCALES

# T1, T3, T4: DIV2K validation, RGB PSNR, EDSR-baseline encoder unless named otherwise.
DIV2K = {
    "bicubic": (31.01, 28.22, 26.66, 24.82, 22.27, 21.00, 20.19, 19.59),
    "metasr": (34.64, 30.93, 28.92, 26.61, 23.55, 22.03, 21.06, 20.37),
    "liif": (34.67, 30.96, 29.00, 26.75, 23.71, 22.17, 21.18, 20.48),
    "liif-c": (34.53, 30.92, 28.97, 26.73, 23.72, 22.19, 21.19, 20.51),
    "liif-u": (34.64, 30.94, 28.98, 26.73, 23.69, 22.16, 21.17, 20.47),
    "liif-e": (34.63, 30.95, 28.97, 26.72, 23.66, 22.13, 21.14, 20.45),
    "liif-d": (34.65, 30.94, 28.98, 26.71, 23.64, 22.10, 21.12, 20.42),
    "liif-x2": (34.71, 30.72, 28.77, 26.51, 23.54, 22.05, 21.09, 20.40),
    "liif-x3": (34.32, 30.98, 28.99, 26.71, 23.68, 22.15, 21.17, 20.48),
    "liif-x4": (34.08, 30.87, 29.00, 26.77, 23.74, 22.21, 21.21, 20.51),
    "upsample-x2": (34.55, None, None, None, None, None, None, None),  # EDSR-baseline, cited
    "upsample-x3": (None, 30.90, None, None, None, None, None, None),
    "upsample-x4": (None, None, 28.94, None, None, None, None, None),
    "rdn-metasr": (35.00, 31.27, 29.25, 26.88, 23.73, 22.18, 21.17, 20.47),
    "rdn-liif": (34.99, 31.26, 29.27, 26.99, 23.89, 22.34, 21.31, 20.59),
}

# LTE's published rows (lte-spec section 1): read in a later paper's tables, not checked against LTE's own paper.
SUCCESSOR_SOURCE = "LTE (Lee and Jin, CVPR 2022) as tabulated in arXiv 2311.17643; unverified against LTE's paper"
DIV2K |= {
    "lte": (34.72, 31.02, 29.04, 26.81, 23.78, 22.23, 21.24, 20.53),
    "rdn-lte": (35.04, 31.32, 29.33, 27.04, 23.95, 22.40, 21.36, 20.64),
}

# T2: benchmarks, Y PSNR, RDN encoder; scales x2 x3 x4 x6 x8 (None: not reported).
BENCHMARK = {
    "Set5": {
        "rdn": (38.24, 34.71, 32.47, None, None),
        "rdn-metasr": (38.22, 34.63, 32.38, 29.04, 26.96),
        "rdn-liif": (38.17, 34.68, 32.50, 29.15, 27.14),
        "rdn-lte": (38.23, 34.72, 32.61, 29.32, 27.26),
    },
    "Set14": {
        "rdn": (34.01, 30.57, 28.81, None, None),
        "rdn-metasr": (33.98, 30.54, 28.78, 26.51, 24.97),
        "rdn-liif": (33.97, 30.53, 28.80, 26.64, 25.15),
        "rdn-lte": (34.09, 30.58, 28.88, 26.71, 25.16),
    },
    "B100": {
        "rdn": (32.34, 29.26, 27.72, None, None),
        "rdn-metasr": (32.33, 29.26, 27.71, 25.90, 24.83),
        "rdn-liif": (32.32, 29.26, 27.74, 25.98, 24.91),
        "rdn-lte": (32.36, 29.30, 27.77, 26.01, 24.95),
    },
    "Urban100": {
        "rdn": (32.89, 28.80, 26.61, None, None),
        "rdn-metasr": (32.92, 28.82, 26.55, 23.99, 22.59),
        "rdn-liif": (32.87, 28.82, 26.68, 24.20, 22.79),
        "rdn-lte": (33.04, 28.97, 26.81, 24.28, None),
    },
}

# T5: CelebA-HQ, RGB PSNR at the target size.
CELEBA = {"64-128": {"upsample": 34.78, "liif": 35.96}, "32-256": {"upsample": 27.56, "liif": 27.74}}


def celeba_effect(task: str) -> float | None:
    """T5: LIIF minus the up-sampler on a CelebA-HQ task ("64-128"), None for a task the paper has not."""
    row = CELEBA.get(task)
    return None if row is None else row["liif"] - row["upsample"]


def in_t2(role) -> bool:
    """T2 (the benchmarks) has rows for the RDN encoder only."""
    return ENCODER_PREFIX.get(role.encoder) == "rdn-"


def paper_div2k(variant: str, scale: int) -> float | None:
    row = DIV2K.get(variant)
    if row is None or scale not in DIV2K_SCALES:
        return None
    return row[DIV2K_SCALES.index(scale)]


def benchmark_set(dataset: str) -> str | None:
    """The T2 set a dataset name stands for (``set5`` -> ``Set5``), None for anything else."""
    return next((name for name in BENCHMARK if name.lower() == dataset.lower()), None)


def paper_benchmark(dataset: str, row: str, scale: int) -> float | None:
    """T2's number for a paper row (``paper_row``): ``rdn-upsample-x<k>`` is the per-scale RDN at x<k>."""
    table = BENCHMARK.get(benchmark_set(dataset) or "")
    if table is None or scale not in BENCHMARK_SCALES:
        return None
    if row.startswith("rdn-upsample-x"):
        row = "rdn" if row == f"rdn-upsample-x{scale}" else None
    values = table.get(row) if row else None
    return None if values is None else values[BENCHMARK_SCALES.index(scale)]


ABLATION_ROWS = {
    "cell_decode": "liif-c",
    "feat_unfold": "liif-u",
    "local_ensemble": "liif-e",
    "decoder_depth": "liif-d",
}
ENCODER_PREFIX = {"edsr-baseline": "", "rdn": "rdn-"}  # the encoders of the paper's tables


def paper_row(role) -> str | None:
    """The paper's row for a variant's role (``liif.config.roles.Role``) and encoder, None where the paper has none.
    Released weights have the row of the model they stand for (LIIF's for the authors' EDSR-baseline-LIIF)."""
    if role.kind == "released":
        return paper_row(replace(role, kind=role.stands_for)) if role.stands_for else None
    prefix = ENCODER_PREFIX.get(role.encoder)
    if role.kind == "bicubic":
        return "bicubic"
    if prefix is None:
        return None
    name = {
        "base": "liif",
        "liif": "liif",
        "metasr": "metasr",
        "ablation": ABLATION_ROWS.get(role.component),
        "single-scale": f"liif-x{role.scale}",
        "fixed-scale": f"upsample-x{role.scale}",
        "successor": role.model,
    }.get(role.kind)
    return prefix + name if name else None
