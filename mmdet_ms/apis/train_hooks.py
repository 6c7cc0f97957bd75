"""The trainer's hooks from a config, as mmcv's ``register_training_hooks``: ``lr_config``,
``optimizer_config``, ``checkpoint_config``, ``log_config``, ``evaluation``, ``custom_hooks``
(and ``custom_imports`` for the modules that register them). Every key is checked: an unknown
one, or an unknown hook type, is an error that names it."""
import importlib

from ..datasets import build_dataset, check_num_classes
from ..engine.hooks import CheckpointHook, EvalHook, LrUpdaterHook, NanStopHook, OptimizerHook
from ..engine.lr_schedule import StepLrSchedule
from ..evaluation import check_iou_types
from ..registry import HOOKS, ConfigError
from .inference import build_test_pipeline
from .loops import evaluate_dataset, metric_names


def _check_keys(section, value, allowed):
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"{section}: unknown keys {unknown}; accepted: {', '.join(allowed)}")


def check_workflow(workflow):
    """Only training epochs: validation runs through ``evaluation`` (mmdet's EvalHook), not as a
    ``('val', 1)`` workflow phase."""
    phases = [tuple(phase) for phase in (workflow or [("train", 1)])]
    if len(phases) != 1 or phases[0][0] != "train":
        raise ConfigError(f"workflow={workflow!r}: only [('train', 1)] is supported; evaluate "
                          "during training with evaluation=dict(interval=1, metric=['segm'])")


def import_custom_modules(cfg):
    """``custom_imports = dict(imports=['my_hooks'], allow_failed_imports=False)``: import the
    modules that register a config's own parts (a custom hook, say)."""
    custom = cfg.get("custom_imports")
    if not custom:
        return
    _check_keys("custom_imports", custom, ("imports", "allow_failed_imports"))
    for name in custom.get("imports", []):
        try:
            importlib.import_module(name)
        except ImportError as err:
            if not custom.get("allow_failed_imports", False):
                raise ConfigError(f"custom_imports: cannot import '{name}': {err}") from err


def build_eval_hook(cfg, evaluation, rank, world_size, logger):
    """`EvalHook` on ``data.val`` (every rank runs its share, rank 0 scores the whole)."""
    evaluation = dict(evaluation)
    _check_keys("evaluation", evaluation, ("interval", "metric", "save_best"))
    metric = evaluation.get("metric", ["segm", "bbox"])
    try:
        iou_types = check_iou_types([metric] if isinstance(metric, str) else list(metric))
    except ValueError as err:
        raise ConfigError(f"evaluation.metric: {err}") from err
    save_best = evaluation.get("save_best", "auto")
    if save_best == "auto":
        save_best = f"{iou_types[0]}_mAP"
    known = [name for iou_type in iou_types for name in metric_names(iou_type)]
    if save_best is not None and save_best not in known:
        raise ConfigError(f"evaluation.save_best='{save_best}': use one of {', '.join(known)}, "
                          "'auto' or None")
    if "val" not in cfg.data:
        raise ConfigError("evaluation is set but the config has no data.val; set "
                          "evaluation=None or add data.val")
    dataset = build_dataset(cfg.data.val, dict(test_mode=True))
    check_num_classes(cfg.model.bbox_head.num_classes, dataset.CLASSES)
    test_pipeline = build_test_pipeline(cfg, "val")

    def evaluate(network):
        network.test_pipeline = test_pipeline
        return evaluate_dataset(network, dataset, iou_types, rank, world_size, log=logger.info)

    logger.info(f"evaluation every {evaluation.get('interval', 1)} epoch(s) on {len(dataset)} "
                f"images of {cfg.data.val.ann_file} ({', '.join(iou_types)}), on {world_size} "
                "rank(s)")
    return EvalHook(evaluate, interval=evaluation.get("interval", 1), save_best=save_best)


def _build_hook(cfg, section, **defaults):
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(f"{section}: each hook is a dict with a 'type', got {cfg!r}")
    cfg = dict(cfg)
    priority = cfg.pop("priority", None)
    hook = HOOKS.build(cfg, **defaults)
    return hook, priority


def register_training_hooks(trainer, cfg, lr, rank, world_size, logger, validate=True):
    """Every hook of a training run, from the config; ``lr`` is the (batch-scaled) base lr."""
    check_workflow(cfg.get("workflow"))
    import_custom_modules(cfg)
    trainer.register_hook(LrUpdaterHook(StepLrSchedule(lr, **cfg.lr_config)))
    _check_keys("optimizer_config", cfg.get("optimizer_config") or {}, ("grad_clip",))
    log_config = dict(cfg.get("log_config") or {})
    _check_keys("log_config", log_config, ("interval", "hooks"))
    trainer.register_hook(NanStopHook(interval=log_config.get("interval", 50)))
    trainer.register_hook(OptimizerHook())
    checkpoint_config = dict(cfg.get("checkpoint_config") or {})
    _check_keys("checkpoint_config", checkpoint_config, ("interval",))
    trainer.register_hook(CheckpointHook(**checkpoint_config))
    for hook_cfg in log_config.get("hooks", [dict(type="TextLoggerHook")]):
        trainer.register_hook(*_build_hook(hook_cfg, "log_config.hooks",
                                           interval=log_config.get("interval", 50)))
    evaluation = cfg.get("evaluation")
    if evaluation and validate:
        trainer.register_hook(build_eval_hook(cfg, evaluation, rank, world_size, logger))
    for hook_cfg in cfg.get("custom_hooks") or []:
        hook, priority = _build_hook(hook_cfg, "custom_hooks")
        trainer.register_hook(hook, priority if priority is not None else "NORMAL")
