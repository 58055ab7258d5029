"""The live web config: re-read when the config file or a certificate file changes, and the basic-auth check.

Each request stats the config file and the files it names (a few stat calls) and reads them again only when one
changed, so a new password or a rotated certificate applies without a restart. A changed file that is invalid is
logged once and the last good config keeps serving: never plain HTTP, never without authentication.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

import bcrypt

from promcast.daemon.http.webconfig import WebConfig, WebConfigError, parse, read_raw, watched_files
from promcast.daemon.logs import get_logger
from promcast.daemon.settings import ConfigError

__all__ = ["WebGuard"]

log = get_logger("promcast.http")

Stamp = tuple[tuple[int, int, int] | None, ...]  # per watched file: (inode, mtime ns, size), None when missing
CACHE_SIZE = 256  # accepted (user, password) pairs remembered; a scraper or a probe uses one or two


def _stamp(paths: tuple[Path, ...]) -> Stamp:
    out: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)  # follows symlinks: a Kubernetes Secret swaps its ..data link
        except (OSError, ValueError):  # ValueError: a name with a NUL byte
            out.append(None)
        else:
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


class WebGuard:
    """The current WebConfig of ``path``. Built at start-up, where an invalid file is a ConfigError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._watched: tuple[Path, ...] = (path,)
        self._stamp: Stamp = ()
        try:
            self._config = self._read()
        except WebConfigError as exc:
            raise ConfigError(f"invalid settings:\n  web_config_file: {path}: {exc}") from exc
        # A process-local key: the cache holds HMACs of accepted credentials, never a password or a fast hash.
        self._key = secrets.token_bytes(32)
        self._accepted: dict[bytes, None] = {}
        if self._config.users and self._config.tls is None:
            log.warning("web_basic_auth_without_tls", web_config_file=str(path), risk="passwords cross in clear")

    @property
    def tls(self) -> bool:
        """TLS or plain HTTP, fixed at start-up: a reload may change the certificate, never switch TLS off."""
        return self._config.tls is not None

    def current(self) -> WebConfig:
        """The config, read again first where a watched file changed since the last read."""
        if _stamp(self._watched) != self._stamp:
            with self._lock:
                if _stamp(self._watched) != self._stamp:  # another request may have read it meanwhile
                    self._reload()
        return self._config

    def _read(self) -> WebConfig:
        before = _stamp((self.path,))  # taken first: a change while reading is seen by the next request
        self._watched, self._stamp = (self.path,), before  # until the file names its certificates
        raw = read_raw(self.path)
        self._watched = (self.path, *watched_files(raw, self.path.parent))
        self._stamp = before + _stamp(self._watched[1:])
        return parse(raw, self.path.parent)

    def _reload(self) -> None:
        try:
            new = self._read()
            if (new.tls is None) != (self._config.tls is None):
                raise WebConfigError("tls_server_config was added or removed: restart promcast to switch TLS")
        except WebConfigError as exc:  # logged once: the stamps of this attempt are kept until a file changes
            log.error("web_config_invalid", web_config_file=str(self.path), error=str(exc), serving="last good")
            return
        self._config = new
        self._accepted = {}
        log.info("web_config_loaded", web_config_file=str(self.path), tls=new.tls is not None, users=len(new.users))

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header passes: always, without basic_auth_users."""
        users = self.current().users
        if not users:
            return True
        credentials = _basic(header)
        if credentials is None:
            return False
        user, password = credentials
        # Every name is compared, in constant time, and a bcrypt check runs whether or not the name exists.
        hashed, known = users[0][1], False
        for name, candidate in users:
            if hmac.compare_digest(name.encode(), user):
                hashed, known = candidate, True
        key = hmac.new(self._key, b"\0".join((user, hashed, password)), hashlib.sha256).digest()
        if known and key in self._accepted:
            return True
        try:
            ok = bcrypt.checkpw(password, hashed) and known
        except ValueError:
            return False
        if ok:
            if len(self._accepted) >= CACHE_SIZE:
                self._accepted.clear()
            self._accepted[key] = None
        return ok


def _basic(header: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) of a ``Basic`` Authorization header, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None
