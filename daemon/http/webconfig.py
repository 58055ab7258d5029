"""The web config file of Prometheus exporters (prometheus/exporter-toolkit): TLS and basic auth on promcast's
endpoints, read into a frozen WebConfig.

Relative file names are read from the config file's folder, as exporter-toolkit reads them. Keys that promcast
does not implement are refused rather than ignored: a setting that silently does nothing is worse on a security
boundary.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["TlsServerConfig", "WebConfig", "WebConfigError", "parse", "read_raw", "watched_files"]

# exporter-toolkit's client_auth_type values that the standard ssl module can honour. RequestClientCert and
# RequireAnyClientCert accept an unverified certificate, which OpenSSL's server side does not offer.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
TOP_KEYS = ("tls_server_config", "basic_auth_users")
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version")
TLS_FILES = ("cert_file", "key_file", "client_ca_file")
# A bcrypt hash in modular crypt form: $2a$, $2b$ or $2y$, a two-digit cost, 22 characters of salt, 31 of hash.
BCRYPT = re.compile(r"^\$2[aby]\$(?P<cost>\d\d)\$[./A-Za-z0-9]{53}$")


class WebConfigError(ValueError):
    """The web config file cannot be read or is invalid; the message says which key and why."""


@dataclass(frozen=True)
class TlsServerConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"


@dataclass(frozen=True)
class WebConfig:
    """TLS (None: plain HTTP) and the basic-auth users (empty: no authentication). ``context`` is the SSLContext
    built from ``tls``, loaded once per read of the files."""

    tls: TlsServerConfig | None = None
    users: tuple[tuple[str, bytes], ...] = ()  # (username, bcrypt hash)
    context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)


def read_raw(path: Path) -> dict[str, Any]:
    """The file's top-level mapping; an empty file is an empty mapping, as for exporter-toolkit."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(f"cannot read it: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WebConfigError(f"not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise WebConfigError(f"must be a YAML mapping with {' and/or '.join(TOP_KEYS)}, not {type(raw).__name__}")
    return raw


def watched_files(raw: dict[str, Any], base: Path) -> tuple[Path, ...]:
    """The certificate, key and CA files the raw config names, best effort: what a reload watches besides the
    config file, even when the config turns out invalid."""
    tls = raw.get("tls_server_config")
    if not isinstance(tls, dict):
        return ()
    return tuple(base / v for k in TLS_FILES if isinstance(v := tls.get(k), str) and v)


def parse(raw: dict[str, Any], base: Path) -> WebConfig:
    _only(raw, TOP_KEYS, "")
    tls = _tls(raw.get("tls_server_config"), base)
    users = _users(raw.get("basic_auth_users"))
    return WebConfig(tls, users, tls_context(tls) if tls is not None else None)


def tls_context(tls: TlsServerConfig) -> ssl.SSLContext:
    """A server SSLContext from the files; a missing or mismatched file is a WebConfigError naming it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.minimum_version = TLS_VERSIONS[tls.min_version]
        ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    except ValueError as exc:  # a version this OpenSSL build does not offer
        raise WebConfigError(f"tls_server_config: min_version/max_version: {exc}") from exc
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise WebConfigError(
            f"tls_server_config: cannot load cert_file {tls.cert_file} with key_file {tls.key_file}: {_why(exc)}"
        ) from exc
    if tls.client_ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ValueError) as exc:
            raise WebConfigError(
                f"tls_server_config: cannot load client_ca_file {tls.client_ca_file}: {_why(exc)}"
            ) from exc
    ctx.verify_mode = CLIENT_AUTH[tls.client_auth_type]
    return ctx


def _why(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc)


def _only(section: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in section if k not in allowed)
    if unknown:
        raise WebConfigError(f"{where}unknown key(s) {unknown}; promcast reads {', '.join(allowed)}")


def _tls(section: Any, base: Path) -> TlsServerConfig | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise WebConfigError("tls_server_config: must be a mapping")
    _only(section, TLS_KEYS, "tls_server_config: ")
    text = {k: _string(section, k) for k in TLS_KEYS}
    for key in ("cert_file", "key_file"):
        if not text[key]:
            raise WebConfigError(f"tls_server_config: {key} is missing")
    auth = text["client_auth_type"] or "NoClientCert"
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            f"tls_server_config: client_auth_type {auth!r} is not one of {', '.join(CLIENT_AUTH)}"
            " (RequestClientCert and RequireAnyClientCert accept unverified certificates; promcast does not)"
        )
    if auth == "NoClientCert" and text["client_ca_file"]:
        raise WebConfigError("tls_server_config: client_ca_file is set but client_auth_type is NoClientCert")
    if auth != "NoClientCert" and not text["client_ca_file"]:
        raise WebConfigError(f"tls_server_config: client_auth_type {auth} needs client_ca_file")
    low, high = text["min_version"] or "TLS12", text["max_version"] or "TLS13"
    for key, version in (("min_version", low), ("max_version", high)):
        if version not in TLS_VERSIONS:
            raise WebConfigError(f"tls_server_config: {key} {version!r} is not one of {', '.join(TLS_VERSIONS)}")
    if TLS_VERSIONS[low] > TLS_VERSIONS[high]:
        raise WebConfigError(f"tls_server_config: min_version {low} is above max_version {high}")
    ca = text["client_ca_file"]
    return TlsServerConfig(
        base / text["cert_file"], base / text["key_file"], auth, base / ca if ca else None, low, high
    )


def _string(section: dict[str, Any], key: str) -> str:
    value = section.get(key)
    if value is not None and not isinstance(value, str):
        raise WebConfigError(f"tls_server_config: {key} must be a string, not {type(value).__name__}")
    return value or ""


def _users(section: Any) -> tuple[tuple[str, bytes], ...]:
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise WebConfigError("basic_auth_users: must be a mapping of user name to bcrypt hash")
    users = []
    for name, hashed in section.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise WebConfigError(f"basic_auth_users: user name {name!r} must be a non-empty string without ':'")
        match = BCRYPT.match(hashed) if isinstance(hashed, str) else None
        if match is None or not 4 <= int(match["cost"]) <= 31:
            raise WebConfigError(
                f"basic_auth_users: {name}: not a bcrypt hash ($2b$COST$ and 53 characters); "
                "make one with htpasswd -nBC 10 \"\" | tr -d ':\\n'"
            )
        users.append((name, hashed.encode()))
    return tuple(users)
