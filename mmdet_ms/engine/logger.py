"""Console + file logging in mmdetection's format; only rank 0 writes."""
import logging
import os
import sys
import time


def get_logger(work_dir=None, rank=0, name="mmdet_ms"):
    """Logger printing to stdout and (rank 0, with ``work_dir``) to ``work_dir/<time>.log``."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO if rank == 0 else logging.ERROR)
    formatter = logging.Formatter("%(asctime)s - %(levelname)s - %(message)s")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    logger.addHandler(console)
    if work_dir and rank == 0:
        os.makedirs(work_dir, exist_ok=True)
        path = os.path.join(work_dir, time.strftime("%Y%m%d_%H%M%S") + ".log")
        file_handler = logging.FileHandler(path)
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    return logger


def format_eta(seconds):
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{days} day, {clock}" if days else clock
