"""Stage download: make every dataset of params.yaml ``data.datasets`` available (see liif.sources).

Downloads land in data/raw/<dataset>; a ``local`` source is verified and used in place.
"""

import sys

from liif.config import load_params
from liif.datasets import reset_dir
from liif.download import DownloadError
from liif.sources import SourceError, fetch_dataset


def main() -> int:
    data = load_params()["data"]
    reset_dir("data/raw/.stage")  # keeps data/raw a directory even when every source is local
    for name, spec in data["datasets"].items():
        try:
            root = fetch_dataset(name, spec)
        except (SourceError, DownloadError, KeyError, ValueError) as e:
            print(f"download: {name}: {e}", file=sys.stderr)
            return 2
        print(f"{name}: {spec['source']} -> {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
