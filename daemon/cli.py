"""The ``promcast`` command: one entry point whose subcommands come from the core and the daemon."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from promcast.daemon.http.dashboard import add_dashboard
from promcast.daemon.models.commands import add_models, add_train
from promcast.daemon.offline.commands import add_backtest, add_bursts
from promcast.daemon.settings import ConfigError, Settings, TargetSettings, load_settings
from promcast.forecaster.cli import add_predict
from promcast.forecaster.evaluation.cli import add_evaluate
from promcast.forecaster.extras import TrainingUnavailable, missing_torch

__all__ = ["main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML or TOML settings file (PROMCAST_* variables override it)")
    p.add_argument("--listen", help="HOST:PORT of /metrics, /healthz and /readyz")
    p.add_argument(
        "--web-config-file",
        "--web.config.file",
        metavar="FILE",
        help="TLS and basic auth on every endpoint: a web config file of Prometheus exporters (exporter-toolkit)",
    )
    p.add_argument("--model-dir", help="folder of the model store")
    p.add_argument("--log-format", choices=["auto", "json", "console"], help="log lines; auto: JSON unless a terminal")
    p.add_argument("--once", action="store_true", help="run one cycle per target, print the forecasts, exit")


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="forecast metrics from Prometheus and publish them as gauges")
    _common(p)
    p.add_argument("--prometheus-url", help="base URL of the Prometheus HTTP API")
    p.add_argument(
        "--target", action="append", default=[], metavar="NAME=PROMQL", help="a target (repeatable; step 60s)"
    )
    p.set_defaults(func=run_daemon)


def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the daemon on a built-in synthetic workload (no Prometheus needed)")
    _common(p)
    p.add_argument(
        "--workload",
        choices=["diurnal", "bursty", "shift"],
        help="shape of the synthetic workload; shift: the diurnal load drained 30 min in, back at 1.5x after 8 h",
    )
    p.add_argument("--speed", type=float, help="simulated seconds per real second (default 1)")
    p.add_argument("--series", type=int, help="number of synthetic series (default 1)")
    p.add_argument("--step", type=float, help="step in seconds (default 60)")
    p.add_argument("--horizon", type=int, help="steps forecast ahead, h = 1..HORIZON (default 12)")
    p.add_argument(
        "--first-model",
        choices=["pretrained", "train"],
        help="with no model yet: serve the pretrained model at once and train behind it (default), or train first",
    )
    p.set_defaults(func=run_demo)


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides: dict[str, Any] = {
        "listen": args.listen,
        "web_config_file": args.web_config_file,
        "model_dir": args.model_dir,
        "log_format": args.log_format,
        **extra,
    }
    return load_settings(args.config, **overrides)


def _targets_from_flags(flags: list[str]) -> list[dict[str, str]] | None:
    if not flags:
        return None
    targets = []
    for flag in flags:
        name, sep, query = flag.partition("=")
        if not sep or not query:
            raise ConfigError(f"--target {flag!r}: expected NAME=PROMQL")
        targets.append({"name": name, "query": query})
    return targets


def run_daemon(args: argparse.Namespace) -> int:
    prometheus = {"url": args.prometheus_url} if args.prometheus_url else None
    settings = _settings(args, targets=_targets_from_flags(args.target), prometheus=prometheus)
    if not settings.targets:
        raise ConfigError("no targets: set targets in the config file, PROMCAST_TARGETS, or --target NAME=PROMQL")
    return _serve(settings, 1.0, args.once)


def run_demo(args: argparse.Namespace) -> int:
    from promcast.daemon.sources.demo import demo_target

    flags = {
        "workload": args.workload,
        "speed": args.speed,
        "series": args.series,
        "step_seconds": args.step,
        "horizon": args.horizon,
        "first_model": args.first_model,
    }
    settings = _settings(args, demo={k: v for k, v in flags.items() if v is not None} or None)  # validated there
    demo = settings.demo
    # Each workload, step and horizon keeps its own model: a diurnal model never serves the bursty demo.
    folder = f"demo-{demo.workload}-{demo.step_seconds:g}s" + (f"-h{demo.horizon}" if demo.horizon != 12 else "")
    target = demo_target(demo.step_seconds, demo.horizon, demo.first_model, demo.workload)
    settings = settings.model_copy(
        update={"model_dir": settings.model_dir / folder, "source": "demo", "targets": [target]}
    )
    return _serve(settings, demo.speed, args.once)


def _limit_threads(threads: int, targets: list[TargetSettings]) -> None:
    """A sidecar computes on ``threads`` CPU threads: one is fastest for small batches.

    The default model predicts through NumPy, whose BLAS threads threadpoolctl limits; torch is imported
    (and limited) only where a target's model has no NumPy forward."""
    from threadpoolctl import threadpool_limits

    from promcast.forecaster.catalog import CATALOG
    from promcast.forecaster.extras import TRAIN_EXTRA, torch_available

    threadpool_limits(threads)
    needs = [t for t in targets if t.model in CATALOG and CATALOG[t.model].numpy is None]  # never "pretrained"
    if needs:
        if not torch_available():
            t = needs[0]
            raise ConfigError(
                f"targets.{t.name}.model: {t.model!r} has no NumPy forward and serves through torch, which this "
                f"install lacks; pip install '{TRAIN_EXTRA}', or choose a model with a NumPy forward"
            )
        import torch

        torch.set_num_threads(threads)


def _serve(settings: Settings, speed: float, once: bool) -> int:
    from promcast.daemon.app import Daemon
    from promcast.daemon.logs import configure_logging
    from promcast.daemon.sources import make_source

    configure_logging(settings.log_format, settings.log_level)
    _limit_threads(settings.torch_threads, settings.targets)
    try:  # a store the daemon cannot write is a setting to fix before the first cycle, not a failure of each
        settings.model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"invalid settings:\n  model_dir: cannot create {settings.model_dir}: {exc.strerror}"
        ) from exc
    source = make_source(settings)
    _check_queries(source, settings.targets)
    daemon = Daemon(settings, source, settings.targets, speed=speed)
    if once:
        results = daemon.run_once()
        print(json.dumps([_result_json(r) for r in results], indent=2))
        return 0 if all(r.ok for r in results) else 1
    daemon.serve_forever()
    return 0


def _check_queries(source: object, targets: list[TargetSettings]) -> None:
    """A query the source refuses to parse is a setting to fix: exit 2 naming it. A source that cannot answer now
    is no reason not to start: the cycles retry it."""
    from promcast.daemon.logs import get_logger
    from promcast.daemon.types import QueryRejected, SourceUnavailable

    check = getattr(source, "check_query", None)  # sources with a query language of their own
    if check is None:
        return
    for t in targets:
        try:
            check(t.query)
        except QueryRejected as exc:
            if not exc.syntax:  # an execution error depends on the data now, not on the setting
                get_logger("promcast.daemon").warning("query_rejected", target=t.name, error=str(exc))
                continue
            raise ConfigError(f"invalid settings:\n  targets.{t.name}.query: the source refuses it: {exc}") from exc
        except SourceUnavailable as exc:  # the rest would wait as long: none is checked
            names = [u.name for u in targets[targets.index(t) :]]
            get_logger("promcast.daemon").warning("query_unchecked", targets=names, error=str(exc))
            return


def _result_json(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"target": r.target, "ok": r.ok, "version": r.version, "error": r.error}
    if r.ok:
        out["end"] = r.end.isoformat()
        out["forecasts"] = [
            {"labels": dict(k), "values": [round(float(v), 6) for v in row]}
            for k, row in zip(r.keys, r.forecasts, strict=True)
        ]
    return out


class _Version(argparse.Action):
    """``--version``: the build is read only when asked for (it may run git), never at import time."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from promcast.daemon.build import build_info

        print(build_info().line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promcast", description="Forecasts Prometheus metrics a horizon of steps ahead (12 by default)."
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and git revision, then exit")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run(sub)
    add_demo(sub)
    add_predict(sub)
    add_evaluate(sub)
    add_train(sub)
    add_models(sub)
    add_dashboard(sub)
    add_backtest(sub)
    add_bursts(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"promcast: {exc}", file=sys.stderr)
        return 2
    except TrainingUnavailable as exc:  # promcast train, or a first-start training, in an install without torch
        print(f"promcast {args.command}: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # a command that fits models (evaluate, backtest, bursts) without the extra
        if exc.name != "torch":
            raise
        print(f"promcast {args.command}: {missing_torch(f'promcast {args.command}')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
