"""CUDA checks, each skipped without a GPU (benchmarks/gpu_check.sh runs them and tabulates the results).

* every model (LIIF and each ablation switch, MetaSR, the fixed-scale up-samplers, Bicubic; EDSR-baseline
  and a small RDN encoder) and both renderers give on CUDA what they give on the CPU, within 1e-4, from
  the same weights and input (TF32 off: it is a speed setting, checked by the benchmarks, not here);
* a bf16 and an fp16 (gradient scaler) training step under autocast, as ``liif.train.loop`` runs them;
* a ``torch.compile``-d training step against the eager one;
* DataLoader worker processes with pinned memory (``liif.train.loop.make_loader``) make the batches of 0 workers;
* DDP over NCCL (2 GPUs and more): two ``torchrun`` processes train the weights of one.

Run as a script (``python tests/integration/test_cuda.py OUT_DIR CONFIG.json``), this file is the DDP test's training
worker: a tiny ``liif.train.loop.fit`` on CUDA, as ``tests/train_worker.py`` is on the CPU.
"""

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

if __name__ == "__main__":  # the DDP test's worker, run as a script: conftest sits one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import random_image, tiny_liif  # noqa: E402

from liif.eval.render import render_image, render_reference
from liif.models import LIIF, Bicubic, FixedScaleSR, MetaSR, make_coord
from liif.train import distributed
from liif.train.loop import AMP_DTYPES, grad_scaler, make_loader, train_step, wrap_model
from liif.train.patches import DownsampledPatches

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # CUDA against CPU, same weights and input

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")

EDSR_BASELINE = {"name": "edsr-baseline"}  # the paper's 16 x 64
SMALL_RDN = {"name": "rdn", "G0": 16, "n_blocks": 2, "n_convs": 2, "growth": 8}
MODELS = {
    "liif": lambda: LIIF(encoder=EDSR_BASELINE),
    "liif-no-unfold": lambda: LIIF(encoder=EDSR_BASELINE, feat_unfold=False),
    "liif-no-ensemble": lambda: LIIF(encoder=EDSR_BASELINE, local_ensemble=False),
    "liif-no-cell": lambda: LIIF(encoder=EDSR_BASELINE, cell_decode=False),
    "liif-rdn": lambda: LIIF(encoder=SMALL_RDN),
    "metasr": lambda: MetaSR(encoder=EDSR_BASELINE),
    "metasr-rdn": lambda: MetaSR(encoder=SMALL_RDN),
    "fixed-x2": lambda: FixedScaleSR(encoder=EDSR_BASELINE, scale=2),
    "fixed-x3": lambda: FixedScaleSR(encoder=EDSR_BASELINE, scale=3),
    "fixed-x4": lambda: FixedScaleSR(encoder=EDSR_BASELINE, scale=4),
    "fixed-rdn-x2": lambda: FixedScaleSR(encoder=SMALL_RDN, scale=2),
    "fixed-rdn-x4": lambda: FixedScaleSR(encoder=SMALL_RDN, scale=4),
    "bicubic": Bicubic,
}
RENDERED = ["liif", "liif-rdn", "metasr", "fixed-x2", "bicubic"]


@pytest.fixture(autouse=True)
def exact_fp32():
    """Full fp32 on CUDA (cuDNN convolutions default to TF32, which rounds to 10 mantissa bits)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[name]().eval()


def out_size(model, lr_size: tuple[int, int]) -> tuple[int, int]:
    """The model's own scale for a fixed-scale up-sampler, else x2.5 (a scale no up-sampler has)."""
    scale = model.scale if isinstance(model, FixedScaleSR) else 2.5
    return round(lr_size[0] * scale), round(lr_size[1] * scale)


def largest_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float().cpu() - b.float().cpu()).abs().max().item()


@pytest.mark.parametrize("name", MODELS)
def test_model_on_cuda_equals_cpu(name, record_property):
    """forward (encode, prepare, query) and, where the model has it, the spec's literal query."""
    model = build(name)
    lr = torch.stack([random_image(24, 28, seed=s) for s in (0, 1)])
    size = out_size(model, (24, 28))
    if model.resize_only:
        diffs = {"resize": largest_difference(model.resize(lr[0], size), model.resize(lr[0].cuda(), size))}
    else:
        on_cuda = copy.deepcopy(model).cuda()
        inp = (lr - 0.5) / 0.5
        coord = make_coord(size)[None].repeat(2, 1, 1)
        cell = torch.tensor([2 / size[0], 2 / size[1]]).expand_as(coord).contiguous()
        args = inp, coord, cell
        gpu_args = [t.cuda() for t in args]
        with torch.no_grad():
            diffs = {"forward": largest_difference(model(*args), on_cuda(*gpu_args))}
            if hasattr(model, "query_reference"):
                cpu = model.query_reference(model.encoder(inp), coord, cell)
                gpu = on_cuda.query_reference(on_cuda.encoder(gpu_args[0]), *gpu_args[1:])
                diffs["query_reference"] = largest_difference(cpu, gpu)
    record_property("max_diff", f"{max(diffs.values()):.1e}")
    assert all(d <= TOLERANCE for d in diffs.values()), diffs


@pytest.mark.parametrize("name", RENDERED)
def test_renderer_on_cuda_equals_cpu(name, record_property):
    """render_image in tiles (and render_reference, the literal path) on both devices, and fast against literal."""
    model = build(name)
    lr = random_image(30, 34, seed=2)
    size = out_size(model, (30, 34))
    paths = {"render_image": lambda m, device: render_image(m, lr, size, device=device, tile=16, chunk=1000)}
    if hasattr(model, "query_reference"):
        paths["render_reference"] = lambda m, device: render_reference(m, lr, size, device=device, chunk=1000)
    diffs, on_cuda = {}, {}
    for path, render in paths.items():
        cpu = render(copy.deepcopy(model), "cpu")
        on_cuda[path] = render(copy.deepcopy(model), "cuda")
        assert on_cuda[path].device.type == "cpu" and on_cuda[path].shape == (*size, 3)
        diffs[path] = largest_difference(cpu, on_cuda[path])
    if len(on_cuda) == 2:
        diffs["fast vs literal on cuda"] = largest_difference(on_cuda["render_image"], on_cuda["render_reference"])
    record_property("max_diff", f"{max(diffs.values()):.1e}")
    assert all(d <= TOLERANCE for d in diffs.values()), diffs


def training_batch(device, *, batch_size=4, sample_q=2304) -> dict:
    """A batch as training makes it: ``DownsampledPatches`` of photograph-like images through ``make_loader``."""
    images = [torch.round(random_image(120, 130, seed=s) * 255).to(torch.uint8) for s in (3, 4)]
    ds = DownsampledPatches(images, inp_size=48, scale_min=1, scale_max=2.5, augment=True, sample_q=sample_q, repeat=4)
    batch = next(iter(make_loader(ds, batch_size=batch_size, seed=0, shuffle=True, workers=0)))
    return {k: v.to(device) for k, v in batch.items()}


def snapshot(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_training_step(amp, record_property):
    """EDSR-baseline-LIIF under autocast: reduced-precision outputs, a finite loss near fp32's, every weight
    moves; fp16 through the gradient scaler that liif.train.loop gives it (a step it skips for overflow is retried)."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = LIIF(encoder=EDSR_BASELINE).to(device).train()
    batch = training_batch(device)
    dtype = AMP_DTYPES[amp]
    scaler = grad_scaler(dtype, device)
    assert (scaler is not None) == (amp == "fp16")
    with torch.no_grad():
        fp32_loss = torch.nn.functional.l1_loss(model(batch["inp"], batch["coord"], batch["cell"]), batch["gt"]).item()
        seen = []  # the decoder's output dtype: the ensemble blend promotes the final output to fp32
        hook = model.decoder.layers[-1].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
        with torch.autocast("cuda", dtype=dtype):
            model(batch["inp"], batch["coord"], batch["cell"])
        hook.remove()
        assert seen == [dtype], seen
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    before, losses = snapshot(model), []
    for _ in range(5):
        losses.append(train_step(model, batch, optimizer, amp_dtype=dtype, scaler=scaler).item())
        if all(not torch.equal(a, b) for a, b in zip(before, model.parameters())):
            break
    record_property("losses", " ".join(f"{x:.4f}" for x in losses))
    assert all(math.isfinite(x) for x in losses), losses
    assert abs(losses[0] - fp32_loss) < 0.01, (losses[0], fp32_loss)
    moved = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert moved == len(before), f"{moved} of {len(before)} parameter tensors changed after {len(losses)} steps"
    if scaler is not None:
        record_property("loss_scale", f"{scaler.get_scale():g}")
        assert math.isfinite(scaler.get_scale()) and scaler.get_scale() > 0


def test_compiled_training_step_matches_eager(record_property):
    """``liif.train.loop.wrap_model(compile_model=True)``: the first step's loss and gradients are the eager
    step's, and further steps stay finite and move the weights."""
    device = torch.device("cuda")
    model = tiny_liif().to(device).train()
    eager = copy.deepcopy(model)
    compiled = wrap_model(model, device=device, ranks=distributed.Ranks(), compile_model=True)
    batch = training_batch(device)
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-4) for m in (model, eager)]
    before = snapshot(model)
    loss = train_step(compiled, batch, optimizers[0]).item()
    reference = train_step(eager, batch, optimizers[1]).item()
    assert abs(loss - reference) <= 1e-5, (loss, reference)
    worst = max(
        ((a.grad - b.grad).abs().max() / b.grad.abs().max().clamp_min(1e-12)).item()
        for a, b in zip(model.parameters(), eager.parameters())
    )
    record_property("grad_rel_diff", f"{worst:.1e}")
    assert worst <= 1e-3, f"largest gradient difference, relative to the tensor's largest gradient: {worst:.2e}"
    losses = [train_step(compiled, batch, optimizers[0]).item() for _ in range(2)]
    assert all(math.isfinite(x) for x in losses), losses
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_pinned_worker_batches_equal_inline_batches(record_property):
    """``make_loader`` with 2 worker processes and pinned memory, as training on CUDA runs it, against 0 workers."""
    images = [torch.round(random_image(120, 130, seed=s) * 255).to(torch.uint8) for s in (5, 6)]
    ds = DownsampledPatches(images, inp_size=48, scale_min=1, scale_max=2.5, augment=True, sample_q=2304, repeat=5)
    inline = make_loader(ds, batch_size=4, seed=7, shuffle=True, workers=0)
    pinned = make_loader(ds, batch_size=4, seed=7, shuffle=True, workers=2, pin_memory=True)
    batches = 0
    for epoch in (1, 2):
        inline.batch_sampler.set_epoch(epoch)
        pinned.batch_sampler.set_epoch(epoch)
        for a, b in zip(inline, pinned, strict=True):
            assert a.keys() == b.keys()
            for key in a:
                assert b[key].is_pinned(), key
                assert torch.equal(a[key], b[key]), (epoch, key)
                assert torch.equal(b[key].to("cuda", non_blocking=True).cpu(), a[key])
            batches += 1
    record_property("batches", batches)
    assert batches == 2 * math.ceil(len(ds) / 4)


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_ddp_over_nccl_trains_the_weights_of_one_process(tmp_path, record_property):
    """``liif.train.distributed.launch_command``: two torchrun processes, one GPU each, NCCL, against one process."""
    from conftest import tiny_config

    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tiny_config(epochs=2, batch_size=4, repeat=8)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    runs = {
        "one": [sys.executable, __file__, str(tmp_path / "one"), str(config_path)],
        "two": distributed.launch_command(2, __file__, [str(tmp_path / "two"), str(config_path)]),
    }
    for cmd in runs.values():
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "backend.json").read_text()) == {"backend": "nccl", "world": 2}
    from liif.models.checkpoint import read_checkpoint

    one, two = (read_checkpoint(tmp_path / run / "epoch-last.pth") for run in runs)
    worst = max((one["state_dict"][k] - two["state_dict"][k]).abs().max().item() for k in one["state_dict"])
    record_property("max_weight_diff", f"{worst:.1e}")
    assert worst < 1e-4, f"largest weight difference {worst:.2e}"
    for x, y in zip(one["train_state"]["history"], two["train_state"]["history"], strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-4)


def ddp_worker(out_dir: str, config_path: str):
    """Train tiny_config on CUDA into ``out_dir`` (one process, or one rank of torchrun)."""
    from conftest import tiny_sets

    from liif.train.loop import fit

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    config = json.loads(Path(config_path).read_text())
    ranks = distributed.start(torch.device("cuda"))  # fit joins this process group
    distributed.device_for(ranks, torch.device("cuda"))
    if ranks.world > 1 and ranks.main:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        record = {"backend": torch.distributed.get_backend(), "world": ranks.world}
        (Path(out_dir) / "backend.json").write_text(json.dumps(record))
    g = torch.Generator().manual_seed(5)
    images = [torch.randint(0, 256, (3, 100, 110), generator=g, dtype=torch.uint8) for _ in range(3)]
    smooth = [torch.nn.functional.avg_pool2d(im.float()[None], 5, 1, 2)[0].round().to(torch.uint8) for im in images]
    fit(config, *tiny_sets(config, smooth, val_images=smooth[:1]), out_dir, device="cuda")


if __name__ == "__main__":
    ddp_worker(*sys.argv[1:3])
