"""The artifact: a folder of plain files (safetensors weights + meta.json), written atomically, verified on read.

Nothing here unpickles. The weights file carries its own small header (model, window, horizon) so that a
``meta.json`` edited to disagree with the weights is caught even where the tensor shapes would not show it.

Every reader gets meta.json through ``migrate``: one table (``MIGRATIONS``) fills each field that an older artifact
lacks with what that artifact computed, so that the rest of the code reads every field as present. A field that an
older promcast would refuse or misread raises ``FORMAT_VERSION``, so that the older promcast says why it refuses.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from .gate import gate_from_dict, input_length

__all__ = [
    "FORMAT_VERSION",
    "META_FILE",
    "MIGRATIONS",
    "WEIGHTS_FILE",
    "ArtifactError",
    "Migration",
    "format_version",
    "fsync_dir",
    "migrate",
    "read_artifact",
    "read_meta",
    "write_artifact",
    "write_atomic",
]

FORMAT_VERSION = 2  # raised whenever an older promcast must refuse an artifact (MIGRATIONS says what each added)
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"
_HEADER_KEYS = ("model", "window", "horizon")
_META_SUM = "meta_sha256"  # checksum of meta.json's own content; format 1 artifacts may lack it


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


class Migration(NamedTuple):
    """One row of the migration table: an artifact whose meta.json lacks ``field`` is read with ``value``."""

    version: int  # the format version that introduced the field
    field: str  # a dotted path into meta.json; a row applies only where the parent object is present
    value: Any  # the value, or a function of the meta filled so far that computes it
    why: str  # what an artifact without the field computed, which the value reproduces
    model: str | None = None  # a row for one model's hyperparameters only


def _window_and_gate(meta: dict[str, Any]) -> int:
    """The points one forecast reads, from the window and the (already migrated) gate."""
    return input_length(meta["window"], gate_from_dict(meta["gate"]))


# In order: a row may read the fields that the rows above it filled.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "intervals", None, "made before the interval calibration: no intervals, predict_interval refuses"),
    Migration(1, "gate", None, "made before the recent-skill gate: the model reads its window alone, ungated"),
    Migration(2, "gate.median", False, "a gate made before the median expert weighs the model against naive only"),
    Migration(1, "input_length", _window_and_gate, "made before it was recorded: what the window and gate read"),
    Migration(1, "serves", "model", "made before the validation verdict: the network serves"),
    Migration(
        1, "model.hparams.periods", [], "an mlp made before the seasonal feature reads its window alone", model="mlp"
    ),
)


def format_version(meta: dict[str, Any]) -> int:
    """The format meta.json is written in (absent: 1, the first); raises ArtifactError for one this promcast cannot
    read, naming both versions: a newer promcast's artifact is refused here rather than misread further on."""
    version = meta.get("format_version", 1)
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ArtifactError(f"format_version {version!r}, this promcast reads formats 1 to {FORMAT_VERSION}")
    return version


def _parent(meta: dict[str, Any], row: Migration) -> dict[str, Any] | None:
    """The object that holds ``row``'s field, or None where the artifact has no such object (or another model)."""
    if row.model is not None and not (isinstance(meta.get("model"), dict) and meta["model"].get("name") == row.model):
        return None
    node: Any = meta
    for key in row.field.split(".")[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def migrate(meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``meta`` at ``FORMAT_VERSION``, each field that ``MIGRATIONS`` names and it lacks filled in.

    Raises ArtifactError for a format this promcast cannot read; KeyError, TypeError or ValueError where a value
    computed from the other fields cannot be (a malformed gate, say), which the caller reports as ArtifactError."""
    format_version(meta)
    out = copy.deepcopy(meta)
    for row in MIGRATIONS:
        parent, leaf = _parent(out, row), row.field.rsplit(".", 1)[-1]
        if parent is not None and leaf not in parent:
            parent[leaf] = row.value(out) if callable(row.value) else copy.deepcopy(row.value)
    out["format_version"] = FORMAT_VERSION
    return out


def _check_digest(meta: dict[str, Any], meta_path: Path) -> None:
    """Verify meta.json's own checksum, so that a flipped digit in, say, the interval calibration cannot load
    silently. Format 2 requires one; a format 1 artifact made before the checksum existed is read unchecked."""
    if _META_SUM not in meta and format_version(meta) < 2:
        return
    if meta.get(_META_SUM) != _meta_digest(meta):
        raise ArtifactError(f"{meta_path}: content does not match its {_META_SUM} (corrupt, edited or missing)")


def read_meta(path: str | Path) -> dict[str, Any]:
    """meta.json, checked against its own checksum and migrated to ``FORMAT_VERSION`` (``migrate``)."""
    meta_path = Path(path) / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: no {META_FILE}") from exc
    except (*_NOT_A_FILE, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{meta_path}: unreadable: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArtifactError(f"{meta_path}: expected a JSON object")
    try:
        format_version(meta)
    except ArtifactError as exc:
        raise ArtifactError(f"{meta_path}: {exc}") from exc
    _check_digest(meta, meta_path)
    try:
        return migrate(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: meta.json does not describe these weights: {exc}") from exc


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
