"""Source ``sample``: real photographs that ship inside installed packages, available offline.

scikit-image's (the ``skimage.data`` functions of these names), scikit-learn's two Flickr photographs (CC BY 2.0) and
matplotlib's portrait of Grace Hopper (public domain). Licences: docs/data.md, "The sample suite".
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from liif.images import decode_image, write_png
from liif.sources import SOURCES
from liif.sources.base import Photographs, Plan, Source, SourceError, Squares
from liif.types import SPLITS, Size

SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
    "stereo_motorcycle",
)
PACKAGE_FILES = {  # name -> (package, file inside it); read from the installed package without importing it
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
SAMPLE_PHOTOS = SKIMAGE_PHOTOS + tuple(PACKAGE_FILES)


@SOURCES.register("sample")
@dataclass(frozen=True, kw_only=True)
class Sample(Source):
    """Photographs of ``SAMPLE_PHOTOS`` listed per split (``train``, ``val``, ``test``), prepared as HR images with
    MATLAB-bicubic LR sets (``data.lr_scales``), or with ``sizes`` as squares of every size like CelebA-HQ's faces.

    ``crop``: only the central crop x crop pixels of each photograph (small smoke-test sets); ``tile``: cut each
    photograph into tile x tile squares instead of its central square (the size-varied study on a few photographs).
    """

    train: list[str] | None = None
    val: list[str] | None = None
    test: list[str] | None = None
    sizes: list[Size] | None = None
    tile: Size | None = None
    crop: Size | None = None

    @property
    def photos(self) -> dict[str, list[str]]:
        """The photographs of each split that lists any, in the order of ``SPLITS``."""
        return {split: names for split, names in zip(SPLITS, (self.train, self.val, self.test)) if names}

    def fetch(self, dataset: str, *, raw: Path, trusted: Path | None) -> Path:
        export_sample_suite([name for names in self.photos.values() for name in names], raw)
        return raw

    def plan(self, dataset: str, *, raw: Path) -> Plan:
        parts = []
        for split, names in self.photos.items():
            images = tuple(raw / f"{name}.png" for name in names)
            if self.sizes:
                parts.append(Squares(split, images, sizes=tuple(self.sizes), tile=self.tile))
            else:
                parts.append(Photographs(split, images, crop=self.crop))
        return Plan(tuple(parts))


def _package_photo(name: str):
    package, inside = PACKAGE_FILES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pip = {"sklearn": "scikit-learn"}.get(package, package)
        raise ImportError(f"the sample photograph {name!r} ships inside {pip}: pip install {pip}")
    rgb, _ = decode_image(Path(spec.origin).parent / inside)
    return rgb


def export_sample_suite(names: list[str], out_dir: str | Path) -> list[Path]:
    """Write the named photographs as PNG files (greyscale ones stay greyscale)."""
    unknown = [n for n in names if n not in SAMPLE_PHOTOS]
    if unknown:
        raise SourceError(f"unknown sample images {unknown}; available: {', '.join(SAMPLE_PHOTOS)}")
    if any(n in SKIMAGE_PHOTOS for n in names):
        try:
            import skimage.data
        except ImportError:
            raise ImportError("the sample suite needs scikit-image: pip install scikit-image") from None
    paths = []
    for name in tqdm(names, desc="sample suite", unit="img", leave=False):
        if name in PACKAGE_FILES:
            image = _package_photo(name)
        else:
            image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
            image = image[0]
        paths.append(Path(out_dir) / f"{name}.png")
        write_png(image, paths[-1])
    return paths
