"""liif-repro: the LIIF paper's study as a DVC pipeline (README.md).

Citations in the code: "spec x.y" is section x.y of docs/paper.md (the LIIF paper's model, training and evaluation
protocol, and its tables T1-T5); "lte-spec x.y" is section x.y of docs/lte.md (LTE, the successor model).
"""
