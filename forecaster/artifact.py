"""The artifact: a folder of plain files (safetensors weights + meta.json), written atomically, verified on read.

Nothing here unpickles. The weights file carries its own small header (model, window, horizon) so that a
``meta.json`` edited to disagree with the weights is caught even where the tensor shapes would not show it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

__all__ = [
    "FORMAT_VERSION",
    "META_FILE",
    "WEIGHTS_FILE",
    "ArtifactError",
    "fsync_dir",
    "read_artifact",
    "write_artifact",
    "write_atomic",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"
_HEADER_KEYS = ("model", "window", "horizon")
_META_SUM = "meta_sha256"  # checksum of meta.json's own content; absent in artifacts written before it existed


class ArtifactError(Exception):
    """The artifact is missing, corrupt, tampered with, or does not match its own description.

    A file system that cannot read an intact artifact now (EIO, EACCES, a stale NFS handle) is no fault of the
    artifact: reading then raises that OSError itself, so that a caller can tell "retry later" from "replace it"."""


# What an OSError means about the artifact itself: a file that is absent, or a folder where a file belongs.
_NOT_A_FILE = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write one file whole or not at all: a temporary sibling, fsync, rename (the reports' files)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a report from its readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _canonical(blob: bytes) -> bytes:
    """The same safetensors file with its header's keys sorted. safetensors writes the header's metadata in a hash
    map's order, which changes from one write to the next, so the same tensors written twice hashed apart (the
    pretrained model's card names its weights' checksum). The data offsets count from the end of the header, and
    the sorted header has the same keys and values, so the header keeps its length and the data stays as it is."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > size:  # not for safetensors' compact header; were it longer, its own bytes stay (still valid)
        return blob
    return blob[:8] + text.ljust(size) + blob[8 + size :]


def write_artifact(path: str | Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write weights and meta into a temporary sibling folder, fsync, then rename it to ``path``.

    An existing folder at ``path`` is moved aside first and removed only after the new one is in place, so
    a crash at any point leaves either the old artifact, the new one, or the old one under a ``.old`` name.
    """
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    header = {k: str(meta[k] if k != "model" else meta["model"]["name"]) for k in _HEADER_KEYS}
    blob = _canonical(st_save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=header))
    full_meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
    }
    full_meta[_META_SUM] = _meta_digest(full_meta)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        _write_file(tmp / WEIGHTS_FILE, blob)
        _write_file(tmp / META_FILE, json.dumps(full_meta, indent=2, sort_keys=True).encode())
        fsync_dir(tmp)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "artifact")
        os.replace(tmp, target)
        fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _meta_digest(meta: dict[str, Any]) -> str:
    """sha256 of meta.json's content bar its own checksum, in one canonical spelling (key order, no spaces)."""
    body = {k: v for k, v in meta.items() if k != _META_SUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_meta(path: str | Path) -> dict[str, Any]:
    meta_path = Path(path) / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: no {META_FILE}") from exc
    except (*_NOT_A_FILE, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{meta_path}: unreadable: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArtifactError(f"{meta_path}: expected a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{meta_path}: format_version {version!r}, this promcast reads {FORMAT_VERSION}")
    # Artifacts written before the meta checksum existed have none and are read unchecked; any other is verified,
    # so that a flipped digit in, say, the interval calibration cannot load silently.
    if _META_SUM in meta and meta[_META_SUM] != _meta_digest(meta):
        raise ArtifactError(f"{meta_path}: content does not match its {_META_SUM} (corrupt or edited)")
    return meta


def read_artifact(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return (tensors, meta) after checking the checksum, the weights header and every tensor shape."""
    meta = read_meta(path)
    weights_path = Path(path) / WEIGHTS_FILE
    try:
        blob = weights_path.read_bytes()
    except _NOT_A_FILE as exc:
        raise ArtifactError(f"{weights_path}: unreadable: {exc}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta.get("weights_sha256"):
        raise ArtifactError(f"{weights_path}: checksum {digest[:12]}… does not match meta.json's")
    try:
        tensors = st_load(blob)
        header = _safetensors_header(blob)
    except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{weights_path}: not a valid safetensors file: {exc}") from exc
    try:
        expected = {k: str(meta[k] if k != "model" else meta["model"]["name"]) for k in _HEADER_KEYS}
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: meta.json lacks {exc}") from exc
    for key, value in expected.items():
        if header.get(key) != value:
            raise ArtifactError(
                f"{path}: meta.json says {key}={value} but the weights were saved with {header.get(key)}"
            )
    shapes = meta.get("tensors")
    actual = {k: list(v.shape) for k, v in tensors.items()}
    if shapes != actual:
        raise ArtifactError(f"{path}: tensor shapes {actual} differ from meta.json's {shapes}")
    return tensors, meta


def _safetensors_header(blob: bytes) -> dict[str, str]:
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    meta = header.get("__metadata__", {})
    return dict(meta) if isinstance(meta, dict) else {}
