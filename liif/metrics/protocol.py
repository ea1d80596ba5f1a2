"""The paper's evaluation protocol in numbers (spec section 4), one home for every stage that needs them.

The official sets ship MATLAB-bicubic LR images for x2-x4 (``liif.sources.catalogue.SHIPPED_LR_SCALES``);
those scales are evaluated on them.
The paper reports DIV2K at x2-x30 and the benchmark sets at x2-x8: without ``scales`` in
``eval.datasets.<d>``, a dataset is evaluated at its protocol's scales.
"""

DIV2K_SCALES = (2, 3, 4, 6, 12, 18, 24, 30)  # T1, T3, T4
BENCHMARK_SCALES = (2, 3, 4, 6, 8)  # T2
PROTOCOL_SCALES = {"div2k": DIV2K_SCALES, "benchmark": BENCHMARK_SCALES}
