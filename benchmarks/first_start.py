"""First start of a target without a model: the daemon's peak memory until it publishes every series.

    .venv/bin/python -m benchmarks.first_start [SERIES]          # default 1,000 series

Backfills SERIES series of 8 hours at 1 minute into a local Prometheus (as daemon_bench does), starts a real
`promcast run` with an empty model store and a history of 8 hours, and polls the daemon's VmHWM (not the
training child's) until /metrics holds forecasts for every series. Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.daemon_bench import _backfill, _forecasts, _vm
from tests.support.prometheus_server import PrometheusServer, free_port, require_prometheus


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 1000
    require_prometheus(fail_in_ci=False)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _backfill(tmp, n)
        port = free_port()
        with PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom:
            target = {"name": "bench", "query": "bench_load", "step_seconds": 60, "history": "PT8H", "epochs": 5}
            config = {
                "prometheus": {"url": prom.url, "timeout_seconds": 60},
                "targets": [target],
                "listen": f"127.0.0.1:{port}",
                "model_dir": str(tmp / "models"),
                "log_format": "json",
                "log_level": "warning",
            }
            (tmp / "promcast.json.yaml").write_text(json.dumps(config))
            t0 = time.monotonic()
            cmd = [sys.executable, "-m", "daemon", "run", "--config", str(tmp / "promcast.json.yaml")]
            with open(tmp / "stderr", "w") as err:
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            hwm = 0
            try:
                while not _forecasts(f"http://127.0.0.1:{port}/metrics", n):
                    if proc.poll() is not None or time.monotonic() - t0 > 600:
                        raise RuntimeError((tmp / "stderr").read_text()[-2000:])
                    hwm = max(hwm, _vm(proc.pid, "VmHWM"))
                    time.sleep(0.5)
                hwm = max(hwm, _vm(proc.pid, "VmHWM"))
                rss = _vm(proc.pid, "VmRSS")
                print(
                    f"{n} series: first forecasts after {time.monotonic() - t0:.1f} s; "
                    f"daemon VmHWM {hwm / 1024:.0f} MiB, VmRSS {rss / 1024:.0f} MiB"
                )
            finally:
                proc.terminate()
                proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
