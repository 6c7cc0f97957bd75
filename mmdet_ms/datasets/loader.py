"""Batches from a dataset: an aspect-grouped sampler, ``collate`` and a multi-process loader.

Reproducibility: the batch order is a function of (seed, epoch, num_replicas, rank), and numpy's
global RNG is re-seeded from (seed, epoch, index) before each sample is loaded, so the random
scale and flip of every sample are the same whatever the number of workers, and an epoch can be
resumed from any batch. A ``batch_transform`` (e.g. the detector's target assigner) runs on
each collated batch where it was loaded: in the worker, off the training loop.
"""
import collections
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..registry import ConfigError
from .canvas import canvas_hw


class GroupSampler:
    """Batches of dataset indices; with ``shuffle`` no batch mixes aspect groups (``dataset.flag``).

    As mmdetection's ``DistributedGroupSampler``: each group is shuffled and padded by repeating
    its indices to a multiple of ``samples_per_gpu * num_replicas``, the batches of all groups are
    shuffled together, and rank r takes the r-th contiguous share, so every rank gets the same
    number of batches. Without ``shuffle`` (evaluation): indices in order, padded by repeating
    the first ones to a multiple of ``num_replicas``, rank r taking every ``num_replicas``-th;
    the last batch may be smaller.
    """

    def __init__(self, dataset, samples_per_gpu, shuffle=True, seed=0, num_replicas=1, rank=0):
        if samples_per_gpu < 1 or num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"GroupSampler: need samples_per_gpu >= 1 and 0 <= rank < num_replicas, "
                             f"got samples_per_gpu={samples_per_gpu}, rank={rank}, num_replicas={num_replicas}")
        if len(dataset) == 0:
            raise ValueError("GroupSampler: the dataset is empty")
        self.flag = np.asarray(getattr(dataset, "flag", np.zeros(len(dataset))), dtype=np.int64)
        self.samples_per_gpu = samples_per_gpu
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _grouped_batches(self, rng):
        """All replicas' batches, each inside one group, in shuffled order."""
        per_round = self.samples_per_gpu * self.num_replicas
        batches = []
        for group in np.unique(self.flag):
            indices = rng.permutation(np.flatnonzero(self.flag == group))
            padded_len = -(-len(indices) // per_round) * per_round
            indices = np.resize(indices, padded_len)  # repeats the shuffled indices cyclically
            batches.extend(indices.reshape(-1, self.samples_per_gpu))
        return [batches[i] for i in rng.permutation(len(batches))]

    def _sequential_indices(self):
        padded_len = -(-len(self.flag) // self.num_replicas) * self.num_replicas
        return np.resize(np.arange(len(self.flag)), padded_len)[self.rank::self.num_replicas]

    def batches(self):
        """This rank's batches of the current epoch, as lists of ints."""
        if not self.shuffle:
            indices = self._sequential_indices()
            return [indices[i:i + self.samples_per_gpu].tolist()
                    for i in range(0, len(indices), self.samples_per_gpu)]
        all_batches = self._grouped_batches(np.random.default_rng([self.seed, self.epoch]))
        per_rank = len(all_batches) // self.num_replicas
        return [batch.tolist() for batch in all_batches[self.rank * per_rank:(self.rank + 1) * per_rank]]

    def __iter__(self):
        return iter(self.batches())

    def __len__(self):
        if not self.shuffle:
            return -(-len(self._sequential_indices()) // self.samples_per_gpu)
        # each group gives ceil(size / (samples_per_gpu * num_replicas)) batches to every rank
        per_round = self.samples_per_gpu * self.num_replicas
        return int(sum(-(-size // per_round) for size in np.bincount(self.flag)))


def collate(samples, size_divisor=32, canvases=None):
    """Samples (dicts from ``Collect``) -> one batch dict.

    ``img``: (B, C, H, W) float32, each image zero-padded at the bottom/right to the batch's largest
    height and width (rounded up to ``size_divisor``), or with ``canvases`` ((long, short) each)
    to the smallest that holds them, in the batch's orientation (`canvas.canvas_hw`);
    ``img_meta`` and every other key: a list with one entry per image (``gt_masks`` keep each
    image's own padded size, as the original).
    """
    if not samples:
        raise ValueError("collate: no samples")
    batch = {key: [sample[key] for sample in samples] for key in samples[0]}
    if "img" in batch:
        names = [meta.get("filename") for meta in batch.get("img_meta", ())]
        batch["img"] = _stack_padded(batch["img"], size_divisor, canvases, names)
    return batch


def _stack_padded(imgs, size_divisor, canvases=None, names=None):
    if canvases is not None:
        height, width = canvas_hw(canvases, [img.shape[1:] for img in imgs], names)
    else:
        height = max(img.shape[1] for img in imgs)
        width = max(img.shape[2] for img in imgs)
        if size_divisor:
            height = -(-height // size_divisor) * size_divisor
            width = -(-width // size_divisor) * size_divisor
    stacked = np.zeros((len(imgs), imgs[0].shape[0], height, width), dtype=np.float32)  # (B, C, H, W)
    for slot, img in enumerate(imgs):
        stacked[slot, :, :img.shape[1], :img.shape[2]] = img
    return stacked


def sample_seed(seed, epoch, index):
    """The numpy seed used before loading sample ``index`` in ``epoch``."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def load_batch(dataset, indices, seed, epoch, size_divisor, canvases=None, batch_transform=None):
    """Load and collate ``indices`` (to one of ``canvases``, see `collate`), each with numpy's
    global RNG seeded by ``sample_seed``; then ``batch_transform(batch)`` if given.

    The caller's global RNG state is restored afterwards.
    """
    saved_state = np.random.get_state()
    try:
        samples = []
        for index in indices:
            np.random.seed(sample_seed(seed, epoch, index))
            samples.append(dataset[index])
    finally:
        np.random.set_state(saved_state)
    batch = collate(samples, size_divisor, canvases)
    return batch_transform(batch) if batch_transform is not None else batch


class AddToBatch:
    """A picklable ``batch_transform``: ``batch[key] = function(batch)``."""

    def __init__(self, key, function):
        self.key = key
        self.function = function

    def __call__(self, batch):
        batch[self.key] = self.function(batch)
        return batch


_worker_dataset = None
_worker_batch_transform = None


def _init_worker(dataset, batch_transform):
    # Not cv2.setNumThreads here: in a forked child it can deadlock on the parent's thread pool.
    global _worker_dataset, _worker_batch_transform
    _worker_dataset = dataset
    _worker_batch_transform = batch_transform


def _load_batch_in_worker(indices, seed, epoch, size_divisor, canvases):
    return load_batch(_worker_dataset, indices, seed, epoch, size_divisor, canvases,
                      _worker_batch_transform)


def _multiprocessing_context():
    # fork shares the dataset without pickling it; elsewhere spawn is the safe choice.
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


class DataLoader:
    """Iterable over collated batches of one epoch; ``set_epoch`` before each epoch.

    ``num_workers`` processes (started on first use, kept until ``close``) load whole batches, at
    most ``prefetch_batches`` ahead of the consumer; 0 loads in this process. An error in a worker
    is raised here; a worker that dies (e.g. out of memory) raises ``BrokenProcessPool``.
    ``canvases``: (long, short) each, every batch padded to one of them (`collate`);
    ``batch_transform``: a picklable callable batch -> batch run where the batch is loaded (in
    the worker).
    """

    def __init__(self, dataset, sampler, num_workers=0, size_divisor=32, prefetch_batches=None,
                 canvases=None, batch_transform=None):
        if num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be >= 0, got {num_workers}")
        self.dataset = dataset
        self.sampler = sampler
        self.num_workers = num_workers
        self.size_divisor = size_divisor
        self.canvases = canvases
        self.batch_transform = batch_transform
        self.prefetch_batches = prefetch_batches or 2 * max(num_workers, 1)
        self.start_batch = 0
        self._pool = None

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch; ``start_batch`` skips that many batches (to resume mid-epoch)."""
        self.sampler.set_epoch(epoch)
        self.start_batch = start_batch

    @property
    def epoch(self):
        return self.sampler.epoch

    def __len__(self):
        return len(self.sampler)

    def _tasks(self):
        for indices in self.sampler.batches()[self.start_batch:]:
            yield indices, self.sampler.seed, self.sampler.epoch, self.size_divisor, self.canvases

    def __iter__(self):
        if self.num_workers == 0:
            for task in self._tasks():
                yield load_batch(self.dataset, *task, self.batch_transform)
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.num_workers, mp_context=_multiprocessing_context(),
                                             initializer=_init_worker,
                                             initargs=(self.dataset, self.batch_transform))
        tasks = self._tasks()
        pending = collections.deque()
        for task in tasks:
            pending.append(self._pool.submit(_load_batch_in_worker, *task))
            if len(pending) >= self.prefetch_batches:
                break
        try:
            while pending:
                batch = pending.popleft().result()
                next_task = next(tasks, None)
                if next_task is not None:
                    pending.append(self._pool.submit(_load_batch_in_worker, *next_task))
                yield batch
        finally:
            for future in pending:  # an abandoned or failed epoch leaves no work queued
                future.cancel()

    def close(self, wait=True):
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        if getattr(self, "_pool", None) is not None:
            self.close(wait=False)


def build_dataloader(dataset, imgs_per_gpu, workers_per_gpu, shuffle=True, seed=0, num_replicas=1,
                     rank=0, size_divisor=32, canvases=None, batch_transform=None):
    """A ``DataLoader`` over this rank's share of ``dataset``, ``imgs_per_gpu`` images a batch
    (``canvases``, ``batch_transform``: see `DataLoader`)."""
    if not isinstance(imgs_per_gpu, int) or imgs_per_gpu < 1:
        raise ConfigError(f"imgs_per_gpu must be a positive int, got {imgs_per_gpu!r}")
    if not isinstance(workers_per_gpu, int) or workers_per_gpu < 0:
        raise ConfigError(f"workers_per_gpu must be an int >= 0, got {workers_per_gpu!r}")
    sampler = GroupSampler(dataset, imgs_per_gpu, shuffle=shuffle, seed=seed,
                           num_replicas=num_replicas, rank=rank)
    return DataLoader(dataset, sampler, num_workers=workers_per_gpu, size_divisor=size_divisor,
                      canvases=canvases, batch_transform=batch_transform)
