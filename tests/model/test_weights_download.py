"""Downloading ImageNet weights, against an HTTP server on 127.0.0.1 that the test runs."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from model import weights as W
from model.classifier import DenseNetClassifier
from model.errors import DownloadCancelled, WeightsUnavailableError
from model.zoo import MODELS, ModelEntry
from tests.conftest import make_tiny


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut_after: int | None = None  # send only this many bytes, then hang up

    def do_GET(self):  # noqa: N802 - http.server's name
        data = self.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data if self.cut_after is None else data[: self.cut_after])
        self.wfile.flush()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    handler = type("Handler", (_Handler,), {"files": {}, "cut_after": None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(W.BASE_URL_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/models")
    yield handler
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _published(tmp_path: Path, handler) -> tuple[ModelEntry, bytes]:
    """Write a checkpoint, name it like torchvision does (hash prefix) and serve it."""
    path = tmp_path / "ckpt.pth"
    torch.save(make_tiny().state_dict(), path)
    data = path.read_bytes()
    name = f"densenet121-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    handler.files[f"models/{name}"] = data
    return dataclasses.replace(MODELS["densenet121"], weights_file=name), data


def _cache_files() -> list[Path]:
    d = W.cache_dir()
    return sorted(d.iterdir()) if d.exists() else []


def test_download_lands_in_cache_with_progress(server, tmp_path):
    weights, data = _published(tmp_path, server)
    calls = []
    path = W.download_weights(weights, progress=lambda done, total: calls.append((done, total)))
    assert path == W.cache_dir() / weights.weights_file and path.read_bytes() == data
    assert calls[0] == (0, len(data)) and calls[-1] == (len(data), len(data))
    assert _cache_files() == [path]


def test_load_by_name_downloads_then_uses_cache(server, tmp_path, monkeypatch):
    weights, _ = _published(tmp_path, server)
    monkeypatch.setitem(MODELS, "densenet121", weights)
    clf = DenseNetClassifier.load("densenet121", device="cpu")
    assert clf.config.num_classes == 4
    server.files.clear()  # a second load must not need the network
    assert DenseNetClassifier.load("densenet121", device="cpu").config.num_classes == 4


def test_hash_mismatch_leaves_nothing_in_cache(server, tmp_path):
    weights, data = _published(tmp_path, server)
    server.files[f"models/{weights.weights_file}"] = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    with pytest.raises(WeightsUnavailableError, match="corrupt"):
        W.download_weights(weights)
    assert _cache_files() == []


def test_connection_cut_midway_leaves_nothing_in_cache(server, tmp_path):
    weights, data = _published(tmp_path, server)
    server.cut_after = len(data) // 3
    with pytest.raises(WeightsUnavailableError, match="could not download|cut off"):
        W.download_weights(weights, timeout=5)
    assert _cache_files() == []


def test_cancel_leaves_nothing_in_cache(server, tmp_path):
    weights, _ = _published(tmp_path, server)
    with pytest.raises(DownloadCancelled):
        W.download_weights(weights, progress=lambda done, total: done == 0)
    assert _cache_files() == []


def test_unreachable_server_says_how_to_continue(server, tmp_path, monkeypatch):
    weights, _ = _published(tmp_path, server)
    monkeypatch.setenv(W.BASE_URL_ENV, "http://127.0.0.1:9/models")  # discard port: refused
    with pytest.raises(WeightsUnavailableError, match="the demo model or a weights file"):
        W.download_weights(weights, timeout=5)
    assert _cache_files() == []
