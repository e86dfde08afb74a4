"""torchvision's published ImageNet DenseNet weights: cache and download.

Weights are data (``model.zoo``): each entry names its file, whose 8 hex
digits start its SHA-256 (as torchvision checks), its size and accuracy.
Files land in the standard torch hub cache, so a file torchvision already
downloaded is reused, and vice versa.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from model.errors import DownloadCancelled, WeightsUnavailableError
from model.zoo import MODELS, ModelEntry

DEFAULT_BASE_URL = "https://download.pytorch.org/models/"
BASE_URL_ENV = "DENSELENS_WEIGHTS_URL"

# progress(bytes_done, bytes_total or None) -> False to cancel
ProgressCallback = Callable[[int, "int | None"], "bool | None"]


def cache_dir() -> Path:
    """torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def cached_path(weights: ModelEntry) -> Path | None:
    """The weights file if present: bundled with the app (offline build), else in the torch hub cache."""
    from model.paths import assets_dir

    for folder in (assets_dir() / "weights", cache_dir()):
        path = folder / weights.weights_file
        if path.is_file():
            return path
    return None


def base_url() -> str:
    url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def download_weights(weights: ModelEntry, progress: ProgressCallback | None = None,
                     url: str | None = None, timeout: float = 30.0) -> Path:
    """Download into the cache and return the path; verify the SHA-256 prefix.

    The file is written to a temporary name beside its destination and renamed
    only once complete and verified, so the cache never holds a corrupt file.
    """
    url = url or base_url() + weights.weights_file
    dest_dir = cache_dir()
    dest = dest_dir / weights.weights_file
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsUnavailableError(f"cannot create the weights cache {dest_dir}: {e.strerror}") from e
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{weights.weights_file}.", suffix=".partial")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            if progress and progress(0, total) is False:
                raise DownloadCancelled("download cancelled")
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress and progress(done, total) is False:
                    raise DownloadCancelled("download cancelled")
            if total is not None and done != total:
                raise WeightsUnavailableError(
                    f"download of {weights.weights_file} was cut off after {done:,} of {total:,} bytes")
        if not digest.hexdigest().startswith(weights.sha256_prefix):
            raise WeightsUnavailableError(
                f"{weights.weights_file} from {url} is corrupt (SHA-256 {digest.hexdigest()[:8]}, "
                f"expected {weights.sha256_prefix}...); nothing was saved")
        os.replace(tmp, dest)
        return dest
    except (OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e)
        raise WeightsUnavailableError(
            f"could not download {weights.name} weights from {url}: {reason}. "
            f"Use the demo model or a weights file, or place {weights.weights_file} in {dest_dir}") from e
    finally:
        tmp.unlink(missing_ok=True)


def ensure_weights(arch: str, progress: ProgressCallback | None = None,
                   allow_download: bool = True) -> Path:
    """Path of the cached ImageNet weights for ``arch``, downloading them if needed."""
    weights = MODELS[arch]
    path = cached_path(weights)
    if path is not None:
        return path
    if not allow_download:
        raise WeightsUnavailableError(
            f"{arch} ImageNet weights are not in {cache_dir()} and downloading is off")
    return download_weights(weights, progress)
