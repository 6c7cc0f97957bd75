"""Checkpoints by model-zoo name or URL: downloaded once into a cache, converted once, reused.

``resolve_checkpoint`` turns what a user typed where a checkpoint is expected into a local
``.ckpt`` path (and the config, when a zoo name brings one):

- a file that exists, or anything that looks like a path (has a folder or a ``.ckpt``/``.pth``
  suffix): returned unchanged, so the callers' own "not found" messages stay;
- an ``http(s)://`` URL of an original ``.pth`` (or of a ``.ckpt``): downloaded into
  ``$MMDET_MS_HOME/checkpoints`` (default ``~/.cache/mmdet_ms``) and converted there;
- a model-zoo name (``mmdet_ms.model_zoo.TABLE``, e.g. ``SOLOv2_R101_3x``): its original link,
  cached as ``<name>.ckpt``; it also gives the config when none is passed.

The download goes to ``<file>.part`` under a tqdm bar and takes the final name only when
complete; a connection cut half way is resumed with an HTTP Range request (a few times in one
call, and by the next call from whatever ``.part`` is left). The ``.pth`` is converted with
``mmdet_ms.apis.convert.convert`` into ``<name>.ckpt`` (written atomically) and then removed:
later calls find the ``.ckpt`` and neither download nor convert. After a failure the cache holds
nothing but, when bytes had arrived, the resumable ``.part``; a download that converts badly is
removed. One process at a time fills the cache (a lock on its folder), so the ranks of a
distributed run started together download once.
"""
import contextlib
import hashlib
import importlib.util
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException

from tqdm import tqdm

from .model_zoo import zoo_config, zoo_model, zoo_model_of_url
from .utils.checkpoint import CheckpointError

try:
    import fcntl
except ImportError:  # Windows: no cross-process lock
    fcntl = None

CACHE_ENV = "MMDET_MS_HOME"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30
ATTEMPTS = 3  # per call: the first request and two resumes after a cut connection


class DownloadError(CheckpointError):
    """A checkpoint that cannot be fetched; the message is one line naming the URL and the manual
    route (scripts print it and exit with status 2, as for any CheckpointError)."""


class _ConnectionCut(Exception):
    """The body ended before its announced length; the ``.part`` file keeps what arrived."""


def cache_dir():
    """Where downloaded and converted checkpoints live: ``$MMDET_MS_HOME/checkpoints``."""
    home = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mmdet_ms")
    return os.path.join(home, "checkpoints")


def is_url(text):
    return text.startswith(("http://", "https://"))


def _looks_like_path(text):
    return os.sep in text or "/" in text or text.endswith((".ckpt", ".pth", ".pt"))


def resolve_checkpoint(checkpoint, config=None):
    """(local ``.ckpt`` path, config) for a checkpoint path, URL or model-zoo name.

    ``config`` is returned unchanged when given (a path or a ``Config``); a zoo name (or its
    original URL) supplies its own config when ``config`` is None. None for ``checkpoint`` gives
    (None, config); a ``pathlib.Path`` is returned as it is. Raises CheckpointError
    (DownloadError for network failures).
    """
    if not isinstance(checkpoint, str) or os.path.isfile(checkpoint) or (
            not is_url(checkpoint) and _looks_like_path(checkpoint)):
        return checkpoint, config
    model = zoo_model_of_url(checkpoint) if is_url(checkpoint) else zoo_model(checkpoint)
    if model is not None:
        ckpt = _cached(model.url, model.name, lambda: zoo_config(model))
        return ckpt, zoo_config(model) if config is None else config
    return _cached(checkpoint, _url_entry_name(checkpoint), lambda: None), config


def _url_entry_name(url):
    """Cache name of a URL outside the zoo: its file name and a hash of the whole URL, so two
    servers' ``model.pth`` do not share an entry."""
    stem = os.path.splitext(os.path.basename(urllib.parse.urlparse(url).path))[0] or "checkpoint"
    return f"{stem}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def _cached(url, name, conversion_config):
    """The cache's ``<name>.ckpt``, downloaded and converted first if it is not there yet.

    ``conversion_config()`` is the config to convert with: a zoo model's own (whatever config
    the caller runs, e.g. a fine-tuning one with another class count), None for other URLs
    (recognised from the tensors, as weight_convert.py does without --config). It is asked for
    before downloading, so that a missing config fails before hundreds of megabytes arrive.
    """
    folder = cache_dir()
    ckpt = os.path.join(folder, name + ".ckpt")
    if os.path.isfile(ckpt):
        return ckpt
    config = conversion_config()
    is_ckpt = urllib.parse.urlparse(url).path.endswith(".ckpt")
    if not is_ckpt and importlib.util.find_spec("torch") is None:
        raise CheckpointError(f"{url} is a PyTorch checkpoint and converting it needs torch "
                              "(pip install torch==2.13.0), or convert it elsewhere with "
                              "weight_convert.py and pass the .ckpt")
    os.makedirs(folder, exist_ok=True)
    with _folder_lock(folder):
        if os.path.isfile(ckpt):  # another process filled it while this one waited
            return ckpt
        if is_ckpt:
            return download(url, ckpt)
        pth = download(url, os.path.join(folder, name + ".pth"))
        _convert(pth, ckpt, config)
    return ckpt


@contextlib.contextmanager
def _folder_lock(folder):
    """An exclusive flock on the cache folder itself (no lock file to leave behind)."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _convert(pth, ckpt, config):
    """``pth`` → ``ckpt`` with weight_convert.py's code; the ``.pth`` is removed either way."""
    from .apis.convert import convert  # loads MindSpore and, to read the .pth, torch

    print(f"converting {pth} to {ckpt}", file=sys.stderr)
    try:
        convert(pth, ckpt, config)
    finally:
        os.remove(pth)


def _manual_route(url, ckpt):
    """What to do by hand instead: fetch, convert, and pass the .ckpt or put it in the cache."""
    name = os.path.basename(urllib.parse.urlparse(url).path) or "FILE.pth"
    stem = os.path.splitext(name)[0]
    convert = "" if name.endswith(".ckpt") else f", python weight_convert.py {name} {stem}.ckpt"
    return f"download it by hand{convert} and pass {stem}.ckpt, or copy that to {ckpt}"


def download(url, dst):
    """``url`` → ``dst`` through ``dst + '.part'``, resuming after a cut connection.

    Returns ``dst``. Raises DownloadError (one line: the URL, the reason, the manual route).
    """
    part = dst + ".part"
    for _ in range(ATTEMPTS):
        try:
            _fetch_into(url, part, os.path.basename(dst))
        except _ConnectionCut as cut:
            reason = str(cut)
            continue
        except urllib.error.HTTPError as err:
            reason = f"HTTP {err.code} {err.reason}"
        except urllib.error.URLError as err:
            reason = f"{err.reason}"
        except (HTTPException, OSError) as err:
            reason = f"{type(err).__name__}: {err}"
        else:
            os.replace(part, dst)
            return dst
        break
    if os.path.isfile(part) and os.path.getsize(part) == 0:
        os.remove(part)
    resume = " (run again to resume from the .part file)" if os.path.isfile(part) else ""
    route = _manual_route(url, os.path.splitext(dst)[0] + ".ckpt")
    raise DownloadError(f"cannot download {url}: {reason}{resume}; {route}")


def _fetch_into(url, part, label):
    """One request, appending to ``part`` from its current size (HTTP Range) when it exists."""
    have = os.path.getsize(part) if os.path.isfile(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "mmdet_ms"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing after ``have``: complete, or a stale .part
            if err.headers.get("Content-Range", "") == f"bytes */{have}":
                return
            os.remove(part)
            raise _ConnectionCut("the partial file did not fit the server's; starting again")
        raise
    with response:
        if have and response.status != 206:  # the server ignored the Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as out, \
                tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=label, file=sys.stderr) as bar:
            try:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (HTTPException, OSError) as err:
                raise _ConnectionCut(f"connection lost ({type(err).__name__})") from err
    size = os.path.getsize(part)
    if total is not None and size < total:
        raise _ConnectionCut(f"connection cut at {size} of {total} bytes")
