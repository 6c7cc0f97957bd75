"""The instances found in one image: masks at the original size, labels and scores."""
from dataclasses import dataclass

import numpy as np


@dataclass
class InstanceResult:
    """Instances of one image, highest score first.

    Attributes:
        masks: (N, H, W) bool, at the original image size.
        labels: (N,) int64, 0-based class indices (background not counted).
        scores: (N,) float32.
    """

    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        self.masks = np.asarray(self.masks, dtype=bool)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        if self.masks.ndim != 3:
            raise ValueError(f"InstanceResult.masks must be (N, H, W), got shape {self.masks.shape}")
        count = len(self.masks)
        if self.labels.shape != (count,) or self.scores.shape != (count,):
            raise ValueError(f"InstanceResult: {count} masks but labels {self.labels.shape} "
                             f"and scores {self.scores.shape}")

    @classmethod
    def empty(cls, height, width):
        """No instance, for an image of ``height`` x ``width``."""
        return cls(masks=np.zeros((0, height, width), dtype=bool),
                   labels=np.zeros((0,), dtype=np.int64),
                   scores=np.zeros((0,), dtype=np.float32))

    def __len__(self):
        return len(self.masks)

    @property
    def image_size(self):
        """(H, W) of the masks."""
        return self.masks.shape[1:]

    @property
    def boxes(self):
        """(N, 4) float32 boxes ``[x1, y1, x2, y2]``, the tight box of each mask's set pixels.

        ``x2``/``y2`` are the last set column/row + 1 (exclusive ends), so ``x2 - x1`` is the
        mask's width in pixels (COCO's ``[x, y, w, h]`` is ``[x1, y1, x2 - x1, y2 - y1]``).
        An empty mask gives ``[0, 0, 0, 0]``.
        """
        boxes = np.zeros((len(self), 4), dtype=np.float32)
        for index, mask in enumerate(self.masks):
            set_rows = np.flatnonzero(mask.any(axis=1))
            if set_rows.size == 0:
                continue
            set_cols = np.flatnonzero(mask.any(axis=0))
            boxes[index] = (set_cols[0], set_rows[0], set_cols[-1] + 1, set_rows[-1] + 1)
        return boxes

    def select(self, indices_or_bool):
        """A new result holding the chosen instances (integer indices or a (N,) bool mask)."""
        chosen = np.asarray(indices_or_bool)
        if chosen.dtype == bool and chosen.shape != (len(self),):
            raise ValueError(f"InstanceResult.select: bool selector of shape {chosen.shape} "
                             f"for {len(self)} instances")
        if chosen.dtype != bool:
            chosen = chosen.astype(np.int64).reshape(-1)
        return InstanceResult(masks=self.masks[chosen], labels=self.labels[chosen],
                              scores=self.scores[chosen])
