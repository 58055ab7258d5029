"""TLS and basic auth on promcast's endpoints from an exporter-toolkit web config file, through the real server:
a throw-away CA and certificates made by the openssl command, HTTPS clients from the standard library, the
daemon as a user starts it, and a real Prometheus scraping it as deploy/README.md says."""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from structlog.testing import capture_logs

from promcast.daemon.http.server import HttpServer
from promcast.daemon.settings import ConfigError

from .support.deploy import DEPLOY
from .support.http import wait_until
from .support.prometheus_server import PrometheusServer, free_port, require_prometheus

PAGE = b"promcast_test_metric 42\n"
COST = 4  # bcrypt's lowest cost: slow hashing is the point in production, not in a test


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca: Path
    server: tuple[Path, Path]  # certificate, key: CN=promcast, for 127.0.0.1
    rotated: tuple[Path, Path]  # another server certificate, CN=rotated
    client: tuple[Path, Path]  # a client certificate of the same CA


def _openssl(folder: Path, *args: str) -> None:
    tool = shutil.which("openssl")
    assert tool is not None, "the openssl command is missing: apt-get install openssl"  # fails, never skips
    subprocess.run([tool, *args], cwd=folder, check=True, capture_output=True, timeout=60)


def _leaf(folder: Path, name: str, usage: str) -> tuple[Path, Path]:
    (folder / f"{name}.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(folder, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")  # fmt: skip
    _openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt")  # fmt: skip
    return folder / f"{name}.crt", folder / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    _openssl(folder, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=promcast-test-ca", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return Pki(
        folder,
        folder / "ca.crt",
        _leaf(folder, "promcast", "serverAuth"),
        _leaf(folder, "rotated", "serverAuth"),
        _leaf(folder, "client", "clientAuth"),
    )


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(COST)).decode()


def _write(path: Path, text: str) -> None:
    """As an editor or a Kubernetes Secret update does: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _config(pki: Pki, users: dict[str, str] | None = None, client_auth: str | None = None) -> str:
    lines = ["tls_server_config:", f"  cert_file: {pki.server[0]}", f"  key_file: {pki.server[1]}"]
    if client_auth:
        lines += [f"  client_auth_type: {client_auth}", f"  client_ca_file: {pki.ca}"]
    if users:
        lines += ["basic_auth_users:", *(f"  {u}: {h}" for u, h in users.items())]
    return "\n".join(lines) + "\n"


def _serve(path: Path) -> HttpServer:
    server = HttpServer("127.0.0.1", 0, lambda _om: PAGE, lambda: (True, []), web_config_file=path)
    server.start()
    return server


def _context(pki: Pki, client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.ca)  # verifies promcast's certificate and its name, 127.0.0.1
    if client_cert:
        ctx.load_cert_chain(*pki.client)
    return ctx


def _get(
    port: int,
    ctx: ssl.SSLContext,
    path: str = "/metrics",
    auth: tuple[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes, dict[str, str]]:
    """(status, headers, body, the server certificate's subject) of one HTTPS GET."""
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        assert isinstance(conn.sock, ssl.SSLSocket)  # read before the answer: HTTP/1.0 closes it after
        subject = {k: v for rdn in conn.sock.getpeercert()["subject"] for k, v in rdn}
        resp = conn.getresponse()
        return resp.status, dict(resp.headers), resp.read(), subject
    finally:
        conn.close()


@pytest.fixture
def web(tmp_path: Path, pki: Pki) -> Iterator[tuple[Path, HttpServer]]:
    """promcast over TLS with one user, alice, password 'right'."""
    path = tmp_path / "web.yml"
    _write(path, _config(pki, {"alice": _hash("right")}))
    server = _serve(path)
    try:
        yield path, server
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/"])
def test_tls_with_basic_auth_serves_the_right_password_and_refuses_others(
    web: tuple[Path, HttpServer], pki: Pki, path: str
) -> None:
    _, server = web
    status, _, body, subject = _get(server.port, _context(pki), path, ("alice", "right"))
    assert status == 200
    assert subject["commonName"] == "promcast"
    if path == "/metrics":
        assert body == PAGE
    for auth in (None, ("alice", "wrong"), ("bob", "right"), ("alice", "")):
        status, headers, body, _ = _get(server.port, _context(pki), path, auth)
        assert status == 401, auth
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert PAGE not in body


def test_a_plain_http_client_on_the_tls_port_fails_and_costs_one_debug_line(
    web: tuple[Path, HttpServer], pki: Pki, capfd: pytest.CaptureFixture[str]
) -> None:
    _, server = web
    with capture_logs() as logs:
        plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            plain.request("GET", "/metrics")
            plain.getresponse()
        plain.close()
        failed = wait_until(lambda: [e for e in logs if e["event"] == "tls_handshake_failed"], timeout=10)
    assert [e["log_level"] for e in failed] == ["debug"]
    assert len(logs) == 1, logs
    assert _get(server.port, _context(pki), auth=("alice", "right"))[0] == 200  # still serving
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


def test_a_client_that_never_speaks_holds_up_no_other_client(web: tuple[Path, HttpServer], pki: Pki) -> None:
    _, server = web
    silent = socket.create_connection(("127.0.0.1", server.port))  # connected, never starts its handshake
    try:
        # Well inside the 10 s a handshake may take: a handshake in the accept loop would time this client out.
        assert _get(server.port, _context(pki), auth=("alice", "right"), timeout=3)[0] == 200
    finally:
        silent.close()


def test_a_changed_password_applies_without_a_restart(web: tuple[Path, HttpServer], pki: Pki) -> None:
    path, server = web
    assert _get(server.port, _context(pki), auth=("alice", "right"))[0] == 200  # and remembered
    _write(path, _config(pki, {"alice": _hash("new")}))
    assert _get(server.port, _context(pki), auth=("alice", "right"))[0] == 401
    assert _get(server.port, _context(pki), auth=("alice", "new"))[0] == 200


def test_a_rotated_certificate_is_served_without_a_restart(tmp_path: Path, pki: Pki) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server[0], cert)
    shutil.copy(pki.server[1], key)
    path = tmp_path / "web.yml"
    _write(path, "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n")  # relative to web.yml
    server = _serve(path)
    try:
        assert _get(server.port, _context(pki))[3]["commonName"] == "promcast"
        _write(key, pki.rotated[1].read_text())
        _write(cert, pki.rotated[0].read_text())
        assert _get(server.port, _context(pki))[3]["commonName"] == "rotated"
    finally:
        server.stop()


def test_an_invalid_change_keeps_the_last_good_config_and_logs_once(web: tuple[Path, HttpServer], pki: Pki) -> None:
    path, server = web
    with capture_logs() as logs:
        _write(path, _config(pki, {"alice": "not-a-bcrypt-hash"}))
        for _ in range(3):
            assert _get(server.port, _context(pki), auth=("alice", "right"))[0] == 200
            assert _get(server.port, _context(pki))[0] == 401
        _write(path, "basic_auth_users:\n  alice: " + _hash("right") + "\n")  # TLS off: refused, not served plain
        assert _get(server.port, _context(pki), auth=("alice", "right"))[0] == 200
        _write(path, _config(pki, {"alice": _hash("fixed")}))
        assert _get(server.port, _context(pki), auth=("alice", "fixed"))[0] == 200
    errors = [e for e in logs if e["event"] == "web_config_invalid"]
    assert [e["log_level"] for e in errors] == ["error", "error"]
    assert "basic_auth_users: alice: not a bcrypt hash" in errors[0]["error"]
    assert "restart" in errors[1]["error"]
    assert [e["event"] for e in logs if e["event"] == "web_config_loaded"] == ["web_config_loaded"]


def test_a_client_certificate_is_required_where_the_file_says_so(tmp_path: Path, pki: Pki) -> None:
    path = tmp_path / "web.yml"
    _write(path, _config(pki, client_auth="RequireAndVerifyClientCert"))
    server = _serve(path)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _get(server.port, _context(pki))
        status, _, body, _ = _get(server.port, _context(pki, client_cert=True))
        assert (status, body) == (200, PAGE)
    finally:
        server.stop()


def _bad_configs(pki: Pki, tmp_path: Path) -> list[tuple[str, str]]:
    good = _config(pki)
    return [
        ("bogus: 1\n", "unknown key(s) ['bogus']"),
        (good.replace("tls_server_config:", "tls_server_config:\n  cipher_suites: [x]"), "['cipher_suites']"),
        ("basic_auth_users:\n  alice: $2b$04$short\n", "alice: not a bcrypt hash"),
        (good.replace(str(pki.server[0]), str(tmp_path / "missing.crt")), "cannot load cert_file"),
        (good.replace(str(pki.server[1]), str(pki.rotated[1])), "cannot load cert_file"),  # key of another cert
        (_config(pki, client_auth="RequireAnyClientCert"), "client_auth_type 'RequireAnyClientCert' is not one of"),
        (
            _config(pki, client_auth="RequireAndVerifyClientCert").replace(f"  client_ca_file: {pki.ca}\n", ""),
            "needs client_ca_file",
        ),
        (good + "  min_version: TLS14\n", "min_version 'TLS14'"),
        ("tls_server_config: [\n", "not valid YAML"),
        ("- a list\n", "must be a YAML mapping"),
    ]


def test_an_invalid_file_is_a_settings_error_naming_what_is_wrong(tmp_path: Path, pki: Pki) -> None:
    for text, message in _bad_configs(pki, tmp_path):
        path = tmp_path / "bad.yml"
        _write(path, text)
        with pytest.raises(ConfigError) as info:
            HttpServer("127.0.0.1", 0, lambda _om: PAGE, lambda: (True, []), web_config_file=path)
        assert "web_config_file" in str(info.value), text
        assert message in str(info.value), (text, str(info.value))
    with pytest.raises(ConfigError, match=r"web_config_file: .*cannot read it"):
        HttpServer("127.0.0.1", 0, lambda _om: PAGE, lambda: (True, []), web_config_file=tmp_path / "none.yml")


@pytest.mark.parametrize("flag", ["--web.config.file", "--web-config-file"])
def test_a_bad_file_at_start_up_exits_2_naming_web_config_file(tmp_path: Path, flag: str) -> None:
    (tmp_path / "bad.yml").write_text("basic_auth_users:\n  alice: plain-text-password\n")
    cmd = [sys.executable, "-m", "promcast", "demo", flag, "bad.yml", "--listen", "127.0.0.1:0"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "web_config_file: bad.yml: basic_auth_users: alice: not a bcrypt hash" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_shipped_example_file_loads_once_its_placeholders_are_filled(tmp_path: Path, pki: Pki) -> None:
    example = (DEPLOY / "systemd" / "web-config.yml").read_text()
    (tmp_path / "tls").mkdir()
    shutil.copy(pki.server[0], tmp_path / "tls" / "promcast.crt")
    shutil.copy(pki.server[1], tmp_path / "tls" / "promcast.key")
    path = tmp_path / "web-config.yml"
    _write(path, example)
    with pytest.raises(ConfigError, match="prometheus: not a bcrypt hash"):  # shipped as is, it refuses to start
        _serve(path)
    _write(path, example.replace("REPLACE-WITH-A-BCRYPT-HASH", _hash("scrape")))
    server = _serve(path)
    try:
        assert _get(server.port, _context(pki), auth=("prometheus", "scrape"))[0] == 200
    finally:
        server.stop()


# ---- a real Prometheus scraping `promcast demo` over TLS with basic auth ----------------------------------------


def _readme_scrape_config() -> dict[str, Any]:
    """The TLS scrape job of deploy/README.md, exactly as a user copies it."""
    text = (DEPLOY / "README.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "scheme: https" in b]
    assert len(blocks) == 1, "deploy/README.md holds one TLS scrape config"
    (job,) = yaml.safe_load(blocks[0])["scrape_configs"]
    assert isinstance(job, dict)
    return job


@pytest.mark.prometheus
def test_a_real_prometheus_scrapes_the_daemon_over_tls_with_basic_auth(tmp_path: Path, pki: Pki) -> None:
    require_prometheus()
    port = free_port()
    (tmp_path / "web.yml").write_text(_config(pki, {"prometheus": _hash("scrape")}))
    env = {**os.environ, "PROMCAST_LOG_FORMAT": "json"}
    cmd = [sys.executable, "-m", "promcast", "demo", "--listen", f"127.0.0.1:{port}", "--web.config.file", "web.yml"]
    with open(tmp_path / "daemon.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=log, env=env)
    try:

        def started() -> bool:
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
            return f'"listen": "https://127.0.0.1:{port}"' in (tmp_path / "daemon.log").read_text()

        wait_until(started, timeout=60)
        (tmp_path / "password").write_text("scrape\n")  # Prometheus trims the trailing newline
        job = _readme_scrape_config()
        job["tls_config"]["ca_file"] = str(pki.ca)  # the README's paths and host, made this test's
        job["basic_auth"]["password_file"] = str(tmp_path / "password")
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
        no_password = {k: v for k, v in job.items() if k != "basic_auth"} | {"job_name": "no-password"}
        with PrometheusServer(tmp_path / "prom", extra_scrape_configs=[job, no_password]) as prom:
            built = prom.wait_for('promcast_build_info{job="promcast"}', timeout=30)
            assert built[0]["value"][1] == "1"
            assert prom.wait_for('up{job="promcast"} == 1', timeout=5)
            assert prom.wait_for('up{job="no-password"} == 0', timeout=30)
            assert not prom.query('promcast_build_info{job="no-password"}')
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
