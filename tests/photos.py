"""Real photos for the photo network's tests: scikit-image's sample images (a cat, an espresso,
the cameraman, a rocket...), installed by scripts/setup.sh --test as data only (nothing of
scikit-image is imported), and crops of them for teaching classes."""
from __future__ import annotations

from bench.common import crops, photo, photo_folder  # noqa: F401
