"""A wrong parameter costs one line: each mistaken key, out-of-range value, unsafe name or wrong role in a params
dict is refused by liif/config/schema.py (and the roles and report checks) with one line naming the key and the fix."""

import json
import math

import pytest
from conftest import study_params

from liif.config.params import ParamsError
from liif.config.roles import RoleError, study_roles
from liif.config.variants import check_params
from liif.study.report import ReportError, load_scores


def _set(path: str, value):
    """A mutation of params: ``path`` is dotted (``variants.liif-c.model.cell_decod``); ``value`` None deletes."""

    def mutate(params):
        *parents, last = path.split(".")
        node = params
        for key in parents:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        node[last] = value

    return mutate


CASES = {  # a mistake in params.yaml: (mutation, the line that must come out)
    "misspelt ablation key": (
        _set("variants.liif-c.model.cell_decod", False),
        "variants.liif-c.model.cell_decod: unknown key; did you mean cell_decode?",
    ),
    "dvc exp run -S +model.cel_decode": (
        _set("model.cel_decode", False),
        "model.cel_decode: unknown key; did you mean cell_decode?",
    ),
    "lr 0": (_set("train.lr", 0), "train.lr: 0: Input should be greater than 0"),
    "lr 1000": (_set("train.lr", 1000), "train.lr: 1000: Input should be less than or equal to 1"),
    "epochs 0": (_set("train.epochs", 0), "train.epochs: 0: Input should be greater than or equal to 1"),
    "batch_size 0": (_set("train.batch_size", 0), "train.batch_size: 0: Input should be greater than or equal to 1"),
    "scale_min > scale_max": (_set("train.scale_min", 5), "train: scale_min 5.0 > scale_max 4.0"),
    "scale_max 0.5": (_set("train.scale_max", 0.5), "train.scale_max: 0.5: Input should be greater than or equal to 1"),
    "inp_size 1": (_set("train.inp_size", 1), "train.inp_size: 1: Input should be greater than or equal to 2"),
    "sample_q 0": (_set("train.sample_q", 0), "train.sample_q: 0: Input should be greater than or equal to 1"),
    "sample_q above the patch": (
        _set("train.inp_size", 8),
        "train.sample_q: 256 queries per patch need as many pixels",
    ),
    "eval scales [0]": (
        _set("eval.datasets.sample.scales", [0]),
        "eval.datasets.sample.scales.0: 0: Input should be greater than or equal to 1",
    ),
    "eval scales [2, 1.5]": (
        _set("eval.datasets.sample.scales", [2, 1.5]),
        "eval.datasets.sample.scales.1: 1.5: Input should be a valid integer",
    ),
    "decoder_hidden [0]": (
        _set("model.decoder_hidden", [0]),
        "model.decoder_hidden.0: 0: Input should be greater than or equal to 1",
    ),
    "n_feats 0": (
        _set("model.encoder.n_feats", 0),
        "model.encoder.n_feats: 0: Input should be greater than or equal to 1",
    ),
    "model.name liff": (
        _set("model.name", "liff"),
        "model.name: 'liff' is not a model; did you mean liif? valid: bicubic, fixed-scale, liif, lte, metasr",
    ),
    "a key the base model does not take": (
        _set("model.predictor_hidden", 64),
        "model.predictor_hidden: unknown key; did you mean decoder_hidden?",
    ),
    "a key of the base model for a variant of another model": (
        _set("variants.metasr.model.cell_decode", False),
        "variants.metasr.model.cell_decode: unknown key",
    ),
    "a variant naming an unknown model": (
        _set("variants.metasr.model.name", "meta-sr"),
        "variants.metasr.model.name: 'meta-sr' is not a model; did you mean metasr?",
    ),
    "unknown encoder": (
        _set("model.encoder.name", "edsr-base"),
        "model.encoder: Input tag 'edsr-base' found using 'name' does not match any of the expected tags",
    ),
    "a key of another encoder": (
        _set("variants.liif-c.model.encoder", {"name": "rdn", "n_feats": 8}),
        "variants.liif-c.model.encoder.n_feats: unknown key",
    ),
    "a full EDSR's range": (
        _set("model.encoder", {"name": "edsr", "res_scale": 0.0}),
        "model.encoder.res_scale: 0.0: Input should be greater than 0",
    ),
    "train.epoch": (_set("train.epoch", 3), "train.epoch: unknown key; did you mean epochs?"),
    "amp fp8": (_set("train.amp", "fp8"), "train.amp: 'fp8': Input should be 'fp32', 'bf16' or 'fp16'"),
    "encoder.n_blocks": (
        _set("model.encoder.n_blocks", 4),
        "model.encoder.n_blocks: unknown key; did you mean n_resblocks?",
    ),
    "eval.scale": (_set("eval.scale", [2]), "eval.scale: unknown key"),
    "eval.checkpont": (
        _set("eval.checkpont", "epoch-last.pth"),
        "eval.checkpont: unknown key; did you mean checkpoint?",
    ),
    "eval.checkpoint nonsense": (
        _set("eval.checkpoint", "last.pt"),
        "eval.checkpoint: 'last.pt': 'last.pt': epoch-last.pth, epoch-best.pth or epoch-<n>.pth",
    ),
    "variant name with a space": (
        _set("variants.liif v1", {"role": "other"}),
        "variants.'liif v1': a name is a folder and DVC stage name",
    ),
    "variant name with @": (_set("variants.liif@x", {"role": "other"}), "a name is a folder and DVC stage name"),
    "fixed-scale up-sampler x5": (
        _set("variants.upsample-x2.model.scale", 5),
        "variants.upsample-x2.model.scale: 5: 5 is not a scale of the sub-pixel up-sampler",
    ),
    "unknown variant key": (
        _set("variants.liif-c.modle", {}),
        "variants.liif-c.modle: unknown key; did you mean model?",
    ),
    "unknown section": (_set("trian", {}), "trian: unknown section; did you mean train?"),
    "lr quoted '1e-4'": (
        _set("train.lr", "1e-4"),
        "train.lr: '1e-4': Input should be a valid number (a quoted number is text: write it without quotes)",
    ),
    "milestones unsorted": (
        _set("train.milestones", [85, 60]),
        "train: milestones [85, 60]: epochs in increasing order",
    ),
    "runtime.threds": (_set("runtime.threds", 1), "runtime.threds: unknown key; did you mean threads?"),
    "seed 10**15": (_set("train.seed", 10**15), "train.seed: 1000000000000000: Input should be less than 4294967296"),
    "threads 10**20": (
        _set("runtime.threads", 10**20),
        "runtime.threads: 100000000000000000000: Input should be less than or equal to 4096",
    ),
    "epochs 1e9": (
        _set("train.epochs", 1e9),
        "train.epochs: 1000000000.0: Input should be less than or equal to 1000000",
    ),
    "epochs 1e3": (
        _set("train.epochs", 1e3),
        "train.epochs: 1000.0: Input should be a valid integer (an integer, e.g. 1000)",
    ),
    "batch_size 10**6": (
        _set("train.batch_size", 10**6),
        "train.batch_size: 1000000: Input should be less than or equal to 8192",
    ),
    "n_feats 10**6": (
        _set("model.encoder.n_feats", 10**6),
        "model.encoder.n_feats: 1000000: Input should be less than or equal to 4096",
    ),
    "scale_max .inf": (_set("train.scale_max", math.inf), "train.scale_max: inf: Input should be a finite number"),
    "lr .nan": (_set("train.lr", math.nan), "train.lr: nan: Input should be a finite number"),
    "gamma -.inf": (_set("train.gamma", -math.inf), "train.gamma: -inf: Input should be a finite number"),
    "val_fraction .nan": (
        _set("data.datasets.sample", {"source": "local", "path": "photos", "val_fraction": math.nan}),
        "data.datasets.sample.val_fraction: nan: Input should be a finite number",
    ),
    "res_scale .inf": (
        _set("model.encoder.res_scale", math.inf),
        "model.encoder.res_scale: inf: Input should be a finite",
    ),
    "augment 'off'": (
        _set("train.augment", "off"),
        "train.augment: 'off': Input should be a valid boolean (write true or false)",
    ),
    "dataset name ..": (
        lambda params: params["data"]["datasets"].update(
            {"../../../victim2": {"source": "sample", "test": ["camera"]}}
        ),
        "params.yaml data.datasets: '../../../victim2': a name is a folder and DVC stage name",
    ),
    "absolute dataset name": (
        _set("eval.datasets./tmp/victim", {"protocol": "none"}),
        "params.yaml eval.datasets: '/tmp/victim': a name is a folder and DVC stage name",
    ),
    "train.dataset ..": (_set("train.dataset", ".."), "params.yaml train.dataset: '..': a name is a folder"),
    "variant named by a number": (
        lambda params: params["variants"].update({10: {"role": "other"}}),
        "params.yaml variants.10: a name is a folder",
    ),
    "dataset key": (
        _set("data.datasets.sample.tain", []),
        "data.datasets.sample.tain: unknown key; did you mean train?",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_parameter_is_one_line_naming_the_key(case):
    mutate, message = CASES[case]
    params = study_params()
    mutate(params)
    with pytest.raises(ParamsError) as caught:
        check_params(params)
    text = str(caught.value)
    assert text.startswith("params.yaml ") and "\n" not in text
    assert message in text, text


def test_a_dotted_variant_name_is_refused():
    params = study_params()
    params["variants"]["liif-v1.1"] = {"role": "other"}
    with pytest.raises(ParamsError, match=r"variants.'liif-v1.1': a name is a folder and DVC stage name"):
        check_params(params)


def test_the_report_refuses_unknown_replicates():
    params = study_params()
    params["variants"]["liif-seed2"]["role"] = {"seed_of": "liif-seed1"}
    with pytest.raises(RoleError, match="liif-seed2.role: seed_of names another seed replicate"):
        study_roles(params)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "liif.json: missing; run dvc repro evaluate@liif"),
        ('{"psnr": {"sample": {"x2": NaN}}}', "psnr sample x2 is nan, not a finite psnr"),
        ('{"psnr": {"sample": {"x2": "30.1"}}}', "psnr sample x2 is '30.1', not a finite psnr"),
        ('{"psnr": {"sample": {"x2": Infinity}}}', "psnr sample x2 is inf, not a finite psnr"),
        ('{"sample": {"x2": 30.1}}', "'sample' is not a metric of liif/metrics"),
        ("{not json", "not JSON"),
    ],
)
def test_the_report_refuses_missing_or_non_numeric_metrics(tmp_path, content, message):
    if content is not None:
        (tmp_path / "liif.json").write_text(content)
    with pytest.raises(ReportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_scores(tmp_path, ["liif"])
    (tmp_path / "bicubic.json").write_text('{"psnr": {"sample": {"x2": 30.1, "x4": 25.2}}}')
    assert load_scores(tmp_path, ["bicubic"])["psnr"].sum() == pytest.approx(55.3)


def test_the_report_refuses_a_diverged_model(tmp_path):
    from liif.study.report import refuse_diverged

    (tmp_path / "liif").mkdir()
    refuse_diverged(tmp_path, ["liif", "metasr"])  # no marker: nothing to refuse
    record = {"variant": "liif", "epoch": 7, "rule": "loss nan is not finite", "remedy": "lower train.lr"}
    (tmp_path / "liif" / "diverged.json").write_text(json.dumps(record))
    with pytest.raises(ReportError, match="the run diverged at epoch 7 .loss nan is not finite.; lower train.lr"):
        refuse_diverged(tmp_path, ["liif"])
