"""Start-up and the HTTP endpoint under what an operator meets: a refused gzip, a client that hangs up mid-answer, a
listen port that another process holds, and a model store that cannot be created."""

from __future__ import annotations

import gzip
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import pytest

from promcast.daemon.http.server import HttpServer
from promcast.daemon.settings import ConfigError

PAGE = b"promcast_forecast 1.0\n" * 50_000  # about 1 MB: the answer outlives a client that hangs up at once


def _ready() -> tuple[bool, list[str]]:
    return True, []


@pytest.fixture
def server() -> HttpServer:
    srv = HttpServer("127.0.0.1", 0, lambda _om: PAGE, _ready)
    srv.start()
    yield srv
    srv.stop()


def _get(port: int, encoding: str) -> tuple[str | None, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": encoding})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers.get("Content-Encoding"), resp.read()


@pytest.mark.parametrize(
    ("encoding", "compressed"),
    [("gzip", True), ("gzip;q=0.5, identity", True), ("gzip;q=0", False), ("GZIP; Q=0.0", False), ("br", False)],
)
def test_gzip_only_where_the_client_accepts_it(server: HttpServer, encoding: str, compressed: bool) -> None:
    coding, body = _get(server.port, encoding)
    assert (coding == "gzip") is compressed
    assert (gzip.decompress(body) if compressed else body) == PAGE


def test_a_client_that_hangs_up_leaves_no_traceback(server: HttpServer, capfd: pytest.CaptureFixture[str]) -> None:
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends a reset
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.close()
    time.sleep(0.5)
    assert _get(server.port, "identity")[1] == PAGE  # still serving
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    assert "Traceback" not in out


def test_a_busy_port_is_a_settings_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=rf"listen: cannot listen on 127.0.0.1:{port}"):
            HttpServer("127.0.0.1", port, lambda _om: PAGE, _ready)
        cmd = [sys.executable, "-m", "promcast", "demo", "--listen", f"127.0.0.1:{port}", "--log-format", "json"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    finally:
        holder.close()
    assert done.returncode == 2  # systemd's RestartPreventExitStatus=2 stops a restart loop
    assert f"listen: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_model_dir_that_cannot_be_created_is_a_settings_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cmd = [sys.executable, "-m", "promcast", "demo", "--once", "--model-dir", str(blocker / "models")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert f"model_dir: cannot create {blocker / 'models'}" in done.stderr
