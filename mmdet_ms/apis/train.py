"""Build everything a training run needs from a config and run it (1 card or data parallel)."""
import hashlib
import logging
import os

import mindspore as ms
import mindspore.nn as nn
import numpy as np

from ..datasets import (AddToBatch, build_dataloader, build_dataset, check_num_classes,
                        resolve_canvas)
from ..engine.distributed import init_distributed
from ..engine.logger import get_logger
from ..engine.mixed_precision import build_loss_scaler, cast_to_mixed_precision
from ..engine.optimizer import build_optimizer
from ..engine.train_state import epoch_checkpoints
from ..engine.train_step import TrainStep
from ..engine.trainer import Trainer
from ..hub import resolve_checkpoint
from ..models import build_detector
from ..utils.checkpoint import CheckpointError, load_checkpoint, remove_stale_temporaries
from ..utils.device import set_device
from .train_hooks import register_training_hooks


def scaled_lr(cfg, total_batch, logger):
    """The config's lr scaled linearly to this run's total batch (``auto_scale_lr``).

    The original recipe's lr 0.01 is for 16 images a step (8 cards × 2); on one card that lr
    diverges, so by default it is scaled by (cards × imgs_per_gpu) / base_batch_size.
    """
    base_lr = cfg.optimizer.lr
    auto = dict(cfg.get("auto_scale_lr") or {})
    if not auto.get("enable", False):
        logger.info(f"lr {base_lr} used as configured for a total batch of {total_batch} "
                    "(auto_scale_lr disabled)")
        return base_lr
    lr = base_lr * total_batch / auto["base_batch_size"]
    logger.info(f"lr {base_lr} is for a batch of {auto['base_batch_size']}; this run's total "
                f"batch is {total_batch} → lr {lr:g} (auto_scale_lr)")
    return lr


def load_pretrained(network, path, logger):
    """``load_from``: weights only; tensors whose name or shape differ (e.g. another class count)
    are skipped, one warning each."""
    meta = load_checkpoint(network, path, strict=False)
    for name in meta["skipped"]:
        logger.warning(f"load_from {path}: {name} not loaded (absent or of another shape); "
                       "it keeps its initial value")
    logger.info(f"loaded weights from {path}")


def find_resumable_checkpoint(work_dir, trainer, logger):
    """Resume from the newest epoch checkpoint that loads; damaged ones are skipped with a warning."""
    for path in epoch_checkpoints(work_dir):
        try:
            trainer.resume(path)
            return path
        except CheckpointError as err:
            logger.warning(f"skipping {path}: {str(err).splitlines()[0]}")
    logger.info(f"no complete checkpoint in {work_dir}: training starts from scratch")
    return None


def build_train_dataloader(cfg, dataset, network, seed=0, num_replicas=1, rank=0):
    """This rank's shuffled, aspect-grouped batches of ``dataset`` (``cfg.data``), padded to the
    canvases of its ``pad_to`` (`datasets.canvas`, logged once), each with ``batch["targets"]``:
    ``network``'s targets (static shapes), built in the loader workers."""
    canvases, how = resolve_canvas(dataset.pad_to, dataset.pipeline.transforms)
    logger = logging.getLogger("mmdet_ms")  # get_logger's, set up by train_detector
    if canvases is None and dataset.pad_to is not None:
        logger.warning(how)
    else:
        logger.info(how)
    targets = AddToBatch("targets", network.target_assigner(static_shapes=True))
    return build_dataloader(dataset, cfg.data.imgs_per_gpu, cfg.data.workers_per_gpu,
                            shuffle=True, seed=seed, num_replicas=num_replicas, rank=rank,
                            canvases=canvases, batch_transform=targets)


def build_train_step(cfg, network, lr, world_size=1, logger=None):
    """The `TrainStep` of ``network``: ``cfg.optimizer`` at base lr ``lr``, the gradients
    averaged over ``world_size`` data-parallel ranks, ``optimizer_config.grad_clip``, compiled
    unless ``jit_train_step=False``, in mixed precision with ``fp16`` (this casts ``network``)."""
    optimizer = build_optimizer(network, cfg.optimizer, lr)
    grad_reducer = (nn.DistributedGradReducer(optimizer.parameters, mean=True, degree=world_size)
                    if world_size > 1 else None)
    grad_clip = (cfg.get("optimizer_config") or {}).get("grad_clip")
    loss_scaler = build_loss_scaler(cfg.get("fp16"))
    if loss_scaler is not None:
        cast_to_mixed_precision(network)
        if logger is not None:
            logger.info(f"mixed precision: float16 convolutions, loss scale {cfg.fp16}")
    return TrainStep(network, optimizer, grad_clip, grad_reducer,
                     jit_step=cfg.get("jit_train_step", True), loss_scaler=loss_scaler,
                     logger=logger)


def train_detector(cfg, work_dir=None, load_from=None, resume_from=None, auto_resume=False,
                   seed=0, device_target=None, distributed=False, validate=True):
    """Train ``cfg``'s model on ``cfg.data.train``.

    ``validate``: run the config's ``evaluation`` (on ``data.val``) during training.

    ``distributed``: join the data-parallel group the launcher (msrun) set up; each rank reads its
    own shard and gradients are averaged. ``auto_resume``: continue from the newest complete
    ``epoch_N.ckpt`` in ``work_dir``.
    """
    set_device(device_target)
    rank, world_size = init_distributed() if distributed else (0, 1)
    work_dir = work_dir or cfg.get("work_dir") or "./work_dirs/solov2"
    logger = get_logger(work_dir, rank)
    ms.set_seed(seed)
    np.random.seed(seed)
    if rank == 0:
        os.makedirs(work_dir, exist_ok=True)
        remove_stale_temporaries(work_dir, log=logger.info)
        cfg.dump(os.path.join(work_dir, "config.py"))

    dataset = build_dataset(cfg.data.train)
    check_num_classes(cfg.model.bbox_head.num_classes, dataset.CLASSES)

    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    loader = build_train_dataloader(cfg, dataset, network, seed, world_size, rank)
    logger.info(f"{len(dataset)} training images, {len(loader)} iterations per epoch on each of "
                f"{world_size} rank(s); classes: {', '.join(dataset.CLASSES)}")
    load_from = resolve_checkpoint(load_from or cfg.get("load_from"))[0]  # path, zoo name or URL
    if load_from:
        load_pretrained(network, load_from, logger)
    elif network.pretrained:
        logger.warning(f"model.pretrained={network.pretrained!r} is not fetched by this port: the "
                       "backbone starts from random weights (set load_from to a converted "
                       "checkpoint to fine-tune)")

    lr = scaled_lr(cfg, world_size * cfg.data.imgs_per_gpu, logger)
    step = build_train_step(cfg, network, lr, world_size, logger)
    meta = dict(CLASSES=list(dataset.CLASSES), config=os.path.basename(cfg.filename or ""),
                seed=seed)
    trainer = Trainer(network, step, loader, cfg.total_epochs, work_dir, logger, rank=rank,
                      meta=meta)
    register_training_hooks(trainer, cfg, lr, rank, world_size, logger, validate)
    resume_from = resume_from or cfg.get("resume_from")
    if resume_from:
        trainer.resume(resume_from)
    elif auto_resume:
        find_resumable_checkpoint(work_dir, trainer, logger)
    trainer.run()
    print(f"rank {rank}/{world_size}: done at epoch {trainer.epoch}, iteration "
          f"{trainer.iteration}; weights fingerprint {weights_fingerprint(network)}", flush=True)
    return trainer


def weights_fingerprint(network):
    """A short hash of the trainable weights: equal on all data-parallel ranks when in sync
    (BN running statistics are per rank, as without SyncBN in the original)."""
    digest = hashlib.sha1()
    for param in network.trainable_params():
        digest.update(param.asnumpy().tobytes())
    return digest.hexdigest()[:16]
