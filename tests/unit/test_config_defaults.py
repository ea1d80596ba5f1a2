"""A section's defaults live once, in its schema: the stages read the validated sections ``check_sections``
returns, so a default written in a stage or library function cannot drift from the schema's."""

import pytest

from liif.config.params import ParamsError
from liif.config.schema import check_sections
from liif.protocol import BENCHMARK_SCALES, DIV2K_SCALES, SHIPPED_LR_SCALES

DATA = {"datasets": {"photos": {"source": "sample", "train": ["astronaut"], "val": ["moon"], "test": ["camera"]}}}
EVAL = {
    "checkpoint": "epoch-last.pth",
    "task_checkpoint": "epoch-best.pth",
    "metrics": ["psnr"],
    "datasets": {"photos": {"protocol": "div2k"}, "set5": {"protocol": "benchmark", "scales": [3, 2]}},
}
DATA_WITH_SET5 = {"datasets": {**DATA["datasets"], "set5": {"source": "official"}}}


def test_the_validated_sections_carry_the_schemas_defaults_and_leave_the_input_alone():
    params = {"data": DATA_WITH_SET5, "eval": EVAL, "report": {"profile": "test", "figures": False}}
    validated = check_sections(params, sections=("data", "eval", "report"))
    assert validated["data"]["lr_scales"] == list(SHIPPED_LR_SCALES)  # the LR sets prepare makes
    assert validated["eval"]["datasets"]["photos"]["scales"] == list(DIV2K_SCALES)  # the paper's scales of div2k
    assert validated["eval"]["datasets"]["set5"]["scales"] == [3, 2]  # listed scales kept, in their order
    assert validated["report"]["caveat"] == ""
    assert "lr_scales" not in params["data"] and "scales" not in params["eval"]["datasets"]["photos"]
    benchmark = {**EVAL, "datasets": {"set5": {"protocol": "benchmark"}}}
    scales = check_sections({**params, "eval": benchmark}, sections=("eval",))["eval"]["datasets"]["set5"]["scales"]
    assert scales == list(BENCHMARK_SCALES)


def test_a_protocol_without_paper_scales_needs_its_scales_listed():
    params = {"data": DATA, "eval": {**EVAL, "datasets": {"photos": {"protocol": "none"}}}}
    with pytest.raises(ParamsError, match=r"eval.datasets.photos: protocol none has no paper scales"):
        check_sections(params, sections=("data", "eval"))
