"""SOLO v1 / Decoupled SOLO training through the same engine as SOLOv2 (TrainStep, Trainer,
train.py) on the SOLO quick-start config shrunk to 64 px images and 32 channels."""
import math
import os

import mindspore as ms
import pytest

import train
from mmdet_ms.apis import inference_detector, init_detector
from mmdet_ms.config import Config
from mmdet_ms.datasets import build_dataloader, build_dataset
from mmdet_ms.datasets.synthetic import make_synthetic_coco
from mmdet_ms.engine.optimizer import build_optimizer
from mmdet_ms.engine.train_step import TrainStep
from mmdet_ms.models import build_detector
from mmdet_ms.utils.device import set_device

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO, "configs", "solo", "solo_r18_synthetic_quickstart.py")
WIDTH = 32  # the heads' GroupNorm(32) needs a multiple of 32


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("solo_shapes")
    make_synthetic_coco(str(out), num_train=4, num_val=2, size=64, seed=0)
    return str(out)


def tiny_options(data_dir, **overrides):
    options = {
        "data.train.ann_file": os.path.join(data_dir, "annotations", "instances_train.json"),
        "data.train.img_prefix": os.path.join(data_dir, "train") + os.sep,
        "data.train.pipeline.2.img_scale": (64, 64),
        "data.val.ann_file": os.path.join(data_dir, "annotations", "instances_val.json"),
        "data.val.img_prefix": os.path.join(data_dir, "val") + os.sep,
        "data.test.pipeline.1.img_scale": (64, 64),
        "data.imgs_per_gpu": 2,
        "data.workers_per_gpu": 0,
        "model.neck.out_channels": WIDTH,
        "model.bbox_head.in_channels": WIDTH,
        "model.bbox_head.seg_feat_channels": WIDTH,
        "model.bbox_head.num_grids": [12, 10, 8, 6, 4],
        "lr_config.warmup_iters": 2,
        "lr_config.step": [1],
        "total_epochs": 1,
        "jit_train_step": False,
        "log_config.interval": 1,
    }
    options.update(overrides)
    return options


@pytest.mark.slow
def test_a_few_steps_on_one_batch_lower_the_loss(data_dir):
    set_device("CPU")
    ms.set_seed(0)
    cfg = Config.fromfile(QUICKSTART, tiny_options(data_dir))
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    network.set_train(True)
    step = TrainStep(network, build_optimizer(network, cfg.optimizer, 0.01),
                     cfg.optimizer_config.grad_clip)
    loader = build_dataloader(build_dataset(cfg.data.train), 2, 0, shuffle=False)
    batch = next(iter(loader))
    values = [step(batch, i) for i in range(8)]
    assert set(values[0]) == {"loss_ins", "loss_cate", "loss"}
    losses = [v["loss"] for v in values]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.9 * losses[0], losses
    for name in ("loss_ins", "loss_cate"):
        assert values[-1][name] < values[0][name], (name, values)


@pytest.mark.slow
def test_train_py_trains_resumes_and_the_checkpoint_segments(data_dir, tmp_path):
    work_dir = tmp_path / "work"

    def run(*extra, **overrides):
        options = [f"{k}={v!r}" for k, v in tiny_options(data_dir, **overrides).items()]
        return train.main(["--config", QUICKSTART, "--work-dir", str(work_dir),
                           "--device_target", "CPU", *extra, "--cfg-options", *options])

    assert run() == 0
    assert os.path.isfile(work_dir / "epoch_1.ckpt")
    assert run("--resume-from", str(work_dir / "latest.ckpt"), total_epochs=2) == 0
    assert os.path.isfile(work_dir / "epoch_2.ckpt")
    cfg = Config.fromfile(QUICKSTART, tiny_options(data_dir))
    model = init_detector(cfg, str(work_dir / "epoch_2.ckpt"), device_target="CPU")
    image = os.path.join(data_dir, "train", sorted(os.listdir(os.path.join(data_dir, "train")))[0])
    result = inference_detector(model, image)
    assert result.masks.shape[1:] == (64, 64)
