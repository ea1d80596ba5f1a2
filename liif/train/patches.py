"""Training samples exactly as the paper's dataset wrappers make them (spec 3.2, 3.4, 2.5).

``make_training_sets`` is the one place that picks the wrapper a variant trains
with, from its resolved recipe (``liif.config.variants.resolve_variant``):
``downsampled`` (random scale, PIL-bicubic LR made on the fly), ``paired``
(fixed-scale up-samplers: shipped MATLAB-bicubic LR), ``uniform-varied``
(the size-varied ground-truth study).

Every random choice of a sample comes from a generator seeded by
(seed, epoch, index), so an epoch's data is a pure function of those numbers:
a run resumed from an epoch checkpoint sees the same batches as one that
never stopped, with no RNG state to carry around, and the samples do not
depend on how many DataLoader workers make them. ``EpochBatches`` hands the
workers (epoch, index) keys in an order fixed by (seed, epoch).

A model of one grey channel (``model.channels: 1``) trains on the prepared
images read by the one grey rule (``liif.images.to_grey``): every wrapper then
works on (1, H, W) images, and ``channel_shuffle`` has nothing to shuffle.
"""

from pathlib import Path

import torch
from tqdm import tqdm

from liif.config.params import ParamsError
from liif.data.layout import PreparedData
from liif.images import ImageError, decode_image, list_images, pil_bicubic
from liif.models import MODELS, make_coord


def load_images(folder: str | Path, *, desc: str = "load", channels: int = 3) -> list[torch.Tensor]:
    """Decode every image of a folder once and keep it in memory as uint8 (channels, H, W), sorted by name."""
    out = []
    for path in tqdm(list_images(folder), desc=desc, unit="img", leave=False):
        out.append(torch.from_numpy(decode_image(path, channels=channels)[0]).permute(2, 0, 1).contiguous())
    return out


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(hash((seed, epoch, index)) & 0x7FFF_FFFF_FFFF_FFFF)


def keyed_generator(dataset, key: int | tuple[int, int]) -> tuple[torch.Generator, int]:
    """The generator of one sample and its index; ``key`` is (epoch, index) from ``EpochBatches``, or an
    index at ``dataset.epoch`` for direct indexing."""
    epoch, index = key if isinstance(key, tuple) else (dataset.epoch, key)
    return sample_generator(dataset.seed, epoch, index), index


class EpochBatches(torch.utils.data.Sampler):
    """Batches of (epoch, index) keys: shuffled by (seed, epoch) for training, in order for validation.

    The epoch travels with every key, so samples made in persistent worker processes (which hold
    their own copy of the dataset) are the same as samples made in the main process. Under data
    parallelism, rank ``rank`` of ``world`` gets its contiguous share of every global batch.
    """

    def __init__(self, n: int, *, batch_size: int, seed: int, shuffle: bool, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed, self.shuffle, self.epoch = n, batch_size, seed, shuffle, 0
        self.rank, self.world = rank, world
        if world > 1 and (batch_size < world or 0 < n % batch_size < world):
            raise ParamsError(
                f"a batch of {batch_size} (and the last of {n % batch_size}) cannot be shared by "
                f"{world} processes; choose train.batch_size and repeat so every process gets samples"
            )

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def global_sizes(self) -> list[int]:
        """The size of every global batch of an epoch (the last may be smaller)."""
        return [min(self.batch_size, self.n - start) for start in range(0, self.n, self.batch_size)]

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order, epoch = torch.randperm(self.n, generator=g).tolist(), self.epoch
        else:
            order, epoch = list(range(self.n)), 0
        for start in range(0, self.n, self.batch_size):
            keys = [(epoch, i) for i in order[start : start + self.batch_size]]
            if self.world > 1:
                bounds = [len(keys) * r // self.world for r in range(self.world + 1)]
                keys = keys[bounds[self.rank] : bounds[self.rank + 1]]
            yield keys


def _augment(tensors: list[torch.Tensor], g: torch.Generator) -> list[torch.Tensor]:
    """Flip along height, flip along width, transpose H/W: each with p = 0.5, same for all tensors."""
    flip_h, flip_w, transpose = (torch.rand(3, generator=g) < 0.5).tolist()
    out = []
    for t in tensors:
        if flip_h:
            t = t.flip(-2)
        if flip_w:
            t = t.flip(-1)
        if transpose:
            t = t.transpose(-2, -1)
        out.append(t)
    return out


def _shuffle_channels(tensors: list[torch.Tensor], g: torch.Generator) -> list[torch.Tensor]:
    """One random order of the RGB channels, the same for all tensors (``train.channel_shuffle``, not in the
    paper): on a few photographs it shows the model every colour, so no hue is left unlearned. One grey channel
    is left as it is, and no random number drawn."""
    channels = tensors[0].shape[0]
    if channels == 1:
        return tensors
    order = torch.randperm(channels, generator=g)
    return [t[order] for t in tensors]


def _to_queries(hr: torch.Tensor, sample_q: int | None, g: torch.Generator):
    """HR (C, h, w) -> coordinates, colours (RGB or grey) and cells of ``sample_q`` pixels drawn without
    replacement."""
    h, w = hr.shape[-2:]
    coord = make_coord((h, w))
    rgb = hr.reshape(hr.shape[0], -1).T
    if sample_q is not None:
        if sample_q > h * w:
            raise ParamsError(
                f"train.sample_q {sample_q} exceeds the {h}x{w} = {h * w} pixels of a ground truth; "
                f"set it to {h * w} or less"
            )
        keep = torch.randperm(h * w, generator=g)[:sample_q]
        coord, rgb = coord[keep], rgb[keep]
    cell = torch.tensor([2 / h, 2 / w]).expand_as(coord).clone()
    return coord, rgb, cell


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 0.5) / 0.5


class DownsampledPatches(torch.utils.data.Dataset):
    """``sr-implicit-downsampled``: random scale, HR crop of round(inp_size * s), PIL-bicubic LR."""

    def __init__(
        self,
        images: list[torch.Tensor],
        *,
        inp_size: int,
        scale_min: float,
        scale_max: float,
        augment: bool,
        sample_q: int | None,
        repeat: int = 1,
        seed: int = 0,
        channel_shuffle: bool = False,
    ):
        self.images, self.repeat, self.seed, self.epoch = images, repeat, seed, 0
        self.channel_shuffle = channel_shuffle
        self.inp_size, self.scale_min, self.scale_max = inp_size, scale_min, scale_max
        self.augment, self.sample_q = augment, sample_q
        need = round(inp_size * scale_max)
        small = [i for i, im in enumerate(images) if min(im.shape[-2:]) < need]
        if small:
            raise ParamsError(
                f"{len(small)} training images are smaller than {need} px (inp_size x scale_max) on a side; "
                "lower train.inp_size or train.scale_max, or leave the small images out of the dataset"
            )

    def __len__(self):
        return len(self.images) * self.repeat

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        g, index = keyed_generator(self, key)
        image = self.images[index % len(self.images)].float() / 255
        s = self.scale_min + (self.scale_max - self.scale_min) * torch.rand(1, generator=g).item()
        side = round(self.inp_size * s)
        h, w = image.shape[-2:]
        y = torch.randint(0, h - side + 1, (1,), generator=g).item()
        x = torch.randint(0, w - side + 1, (1,), generator=g).item()
        hr = image[:, y : y + side, x : x + side]
        lr = pil_bicubic(hr, (self.inp_size, self.inp_size))
        if self.augment:
            lr, hr = _augment([lr, hr], g)
        if self.channel_shuffle:
            lr, hr = _shuffle_channels([lr, hr], g)
        coord, rgb, cell = _to_queries(hr, self.sample_q, g)
        return {"inp": _normalise(lr), "coord": coord, "cell": cell, "gt": _normalise(rgb)}


class PairedPatches(torch.utils.data.Dataset):
    """Fixed-scale training (spec 2.5): an LR patch from a pre-made LR image and its HR patch, all pixels."""

    def __init__(
        self,
        hr_images: list[torch.Tensor],
        lr_images: list[torch.Tensor],
        *,
        scale: int,
        inp_size: int,
        augment: bool,
        repeat: int = 1,
        seed: int = 0,
        channel_shuffle: bool = False,
        names: list[str] | None = None,
    ):
        """``names`` (the LR files, default their positions) name an image that cannot serve."""
        self.hr, self.lr, self.scale, self.inp_size = hr_images, lr_images, scale, inp_size
        self.channel_shuffle = channel_shuffle
        self.augment, self.repeat, self.seed, self.epoch = augment, repeat, seed, 0
        names = names or [f"LR image {i + 1} of {len(lr_images)}" for i in range(len(lr_images))]
        for hr, lr, name in zip(hr_images, lr_images, names):
            if hr.shape[-2] < lr.shape[-2] * scale or hr.shape[-1] < lr.shape[-1] * scale:
                raise ImageError(
                    f"{name}: its HR image {tuple(hr.shape)} is smaller than the LR {tuple(lr.shape)} x{scale}; "
                    "pair each LR image with its own HR image"
                )
            if min(lr.shape[-2:]) < inp_size:
                h, w = lr.shape[-2:]
                raise ParamsError(
                    f"{name} ({h}x{w}) is smaller than the {inp_size}x{inp_size} LR patch train.inp_size asks for: "
                    f"set train.inp_size to {min(h, w)} or less for this variant, or leave the image out of the dataset"
                )

    def __len__(self):
        return len(self.hr) * self.repeat

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        g, index = keyed_generator(self, key)
        i = index % len(self.hr)
        lr_full, hr_full = self.lr[i].float() / 255, self.hr[i].float() / 255
        p, s = self.inp_size, self.scale
        h, w = lr_full.shape[-2:]
        y = torch.randint(0, h - p + 1, (1,), generator=g).item()
        x = torch.randint(0, w - p + 1, (1,), generator=g).item()
        lr = lr_full[:, y : y + p, x : x + p]
        hr = hr_full[:, y * s : (y + p) * s, x * s : (x + p) * s]
        if self.augment:
            lr, hr = _augment([lr, hr], g)
        if self.channel_shuffle:
            lr, hr = _shuffle_channels([lr, hr], g)
        coord, rgb, cell = _to_queries(hr, None, g)
        return {"inp": _normalise(lr), "coord": coord, "cell": cell, "gt": _normalise(rgb)}


class UniformVariedPairs(torch.utils.data.Dataset):
    """``sr-implicit-uniform-varied`` (spec 3.4): an L x L input and a ground truth whose side grows
    uniformly from L to H across the list, round(L + (H - L) * idx / (N - 1)), bicubic-resized from
    the H x H image. ``gt_resize`` (the up-sampling baseline) resizes that GT back to H x H."""

    def __init__(
        self,
        lr_images: list[torch.Tensor],
        hr_images: list[torch.Tensor],
        *,
        lr_size: int,
        hr_size: int,
        sample_q: int,
        augment: bool,
        gt_resize: int | None = None,
        varied: bool = True,
        repeat: int = 1,
        seed: int = 0,
        channel_shuffle: bool = False,
    ):
        self.lr, self.hr, self.lr_size, self.hr_size, self.varied = lr_images, hr_images, lr_size, hr_size, varied
        self.sample_q, self.augment, self.gt_resize = sample_q, augment, gt_resize
        self.repeat, self.seed, self.epoch, self.channel_shuffle = repeat, seed, 0, channel_shuffle
        # A ground truth depends on its index only: resize once, not in every epoch (kept as uint8, exact).
        self.gt = [torch.round(self._ground_truth(i) * 255).to(torch.uint8) for i in range(len(hr_images))]

    def __len__(self):
        return len(self.hr) * self.repeat

    def gt_side(self, i: int) -> int:
        if not self.varied:  # validation (sr-implicit-paired): the H x H image itself
            return self.hr_size
        n = len(self.hr)
        return round(self.lr_size + (self.hr_size - self.lr_size) * i / max(n - 1, 1))

    def _ground_truth(self, i: int) -> torch.Tensor:
        side = self.gt_side(i)
        gt = self.hr[i].float() / 255
        if side != gt.shape[-1]:
            gt = pil_bicubic(gt, (side, side))
        if self.gt_resize:
            gt = pil_bicubic(gt, (self.gt_resize, self.gt_resize))
        return gt

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        g, index = keyed_generator(self, key)
        i = index % len(self.hr)
        lr, gt = self.lr[i].float() / 255, self.gt[i].float() / 255
        if self.augment and torch.rand(1, generator=g).item() < 0.5:
            lr, gt = lr.flip(-1), gt.flip(-1)
        if self.channel_shuffle:
            lr, gt = _shuffle_channels([lr, gt], g)
        coord, rgb, cell = _to_queries(gt, min(self.sample_q, gt.shape[-1] * gt.shape[-2]), g)
        return {"inp": _normalise(lr), "coord": coord, "cell": cell, "gt": _normalise(rgb)}


def make_training_sets(
    config: dict, prepared: PreparedData
) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """Training and validation sets of a resolved variant, read from the prepared data.

    Training images are ``<dataset>/train``; validation uses the first ``val_images`` of
    ``<val_dataset or dataset>/<val_split>``: the sample suite's ``val`` photographs, held out of
    training and of the test set, or (paper profile, spec 3.1) the first 10 DIV2K valid images.
    """
    t, model = config["train"], config["model"]
    channels = MODELS.get(model["name"]).image_channels(model["args"])
    if t["patches"] == "uniform-varied":
        return _uniform_varied_sets(t, prepared, channels)
    name, val_name, val_split = t["dataset"], t.get("val_dataset") or t["dataset"], t["val_split"]
    train_hr = load_images(prepared.hr(name, "train"), desc=f"{name}/train", channels=channels)
    val_hr = load_images(prepared.hr(val_name, val_split), desc=f"{val_name}/{val_split}", channels=channels)
    val_hr = val_hr[: t["val_images"]]
    if t["patches"] == "paired":
        return _paired_sets(t, prepared, train_hr, val_hr, channels)
    if t["patches"] != "downsampled":
        raise ValueError(f"train.patches {t['patches']!r}: expected downsampled, paired or uniform-varied")
    common = dict(inp_size=t["inp_size"], scale_min=t["scale_min"], scale_max=t["scale_max"], sample_q=t["sample_q"])
    train = DownsampledPatches(
        train_hr,
        augment=t["augment"],
        repeat=t["repeat"],
        seed=t["seed"],
        channel_shuffle=t.get("channel_shuffle", False),
        **common,
    )
    val = DownsampledPatches(val_hr, augment=False, repeat=t["val_repeat"], seed=t["seed"] + 1, **common)
    return train, val


def _uniform_varied_sets(
    t: dict, prepared: PreparedData, channels: int
) -> tuple[UniformVariedPairs, UniformVariedPairs]:
    """Spec 3.4: L x L inputs, ground truths from the H x H faces (``train.task`` [L, H])."""
    name, val_split, n_val, seed = t["dataset"], t["val_split"], t["val_images"], t["seed"]
    lr_size, hr_size = t["task"]
    load = {
        (split, size): load_images(prepared.sized(name, split, size), desc=f"{name}/{split}/{size}", channels=channels)
        for split in ("train", val_split)
        for size in (lr_size, hr_size)
    }
    common = dict(lr_size=lr_size, hr_size=hr_size, sample_q=t["sample_q"])
    train = UniformVariedPairs(
        load["train", lr_size],
        load["train", hr_size],
        augment=t["augment"],
        repeat=t["repeat"],
        gt_resize=t["gt_resize"],
        seed=seed,
        channel_shuffle=t.get("channel_shuffle", False),
        **common,
    )
    val = UniformVariedPairs(
        load[val_split, lr_size][:n_val],
        load[val_split, hr_size][:n_val],
        augment=False,
        varied=False,
        repeat=t["val_repeat"],
        seed=seed + 1,
        **common,
    )
    return train, val


def _paired_sets(
    t: dict, prepared: PreparedData, train_hr: list, val_hr: list, channels: int
) -> tuple[PairedPatches, PairedPatches]:
    """Spec 2.5: fixed-scale up-samplers learn from the shipped LR images (x ``train.scale_min``)."""
    name, val_name, val_split = t["dataset"], t.get("val_dataset") or t["dataset"], t["val_split"]
    n_val, s = t["val_images"], t["scale_min"]
    train_dir, val_dir = prepared.lr(name, "train", s), prepared.lr(val_name, val_split, s)
    train_lr = load_images(train_dir, desc=f"{name}/train x{s}", channels=channels)
    val_lr = load_images(val_dir, desc=f"{val_name}/{val_split} x{s}", channels=channels)[:n_val]
    train = PairedPatches(
        train_hr,
        train_lr,
        scale=s,
        inp_size=t["inp_size"],
        augment=t["augment"],
        repeat=t["repeat"],
        seed=t["seed"],
        channel_shuffle=t.get("channel_shuffle", False),
        names=[str(path) for path in list_images(train_dir)],
    )
    val = PairedPatches(
        val_hr,
        val_lr,
        scale=s,
        inp_size=t["inp_size"],
        augment=False,
        repeat=t["val_repeat"],
        seed=t["seed"] + 1,
        names=[str(path) for path in list_images(val_dir)][:n_val],
    )
    return train, val
