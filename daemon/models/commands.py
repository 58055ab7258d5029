"""`promcast train` and `promcast models list|rollback|unpin`: the retrain job and the model store from the shell."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from promcast.daemon.models.store import ModelStore, StoreError
from promcast.daemon.settings import ConfigError, Settings, TargetSettings, load_settings
from promcast.daemon.sources.sharding import shard_for
from promcast.forecaster.progress import Emit, Stages

__all__ = ["add_models", "add_train"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML or TOML settings file (PROMCAST_* variables override it)")
    p.add_argument("--model-dir", help="folder of the model store")
    p.add_argument("--target", required=True, metavar="NAME", help="a target named in the settings")


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="retrain one target; promote the challenger only if it wins on the holdout")
    _common(p)
    p.add_argument("--margin", type=float, help="relative MAE gain needed over the champion (default: settings)")
    p.add_argument("--dry-run", action="store_true", help="score and print the decision; write nothing")
    p.add_argument("--log-format", choices=["auto", "json", "console"], help="log lines; auto: JSON unless a terminal")
    p.add_argument(
        "--trigger",
        choices=["manual", "cron", "drift", "first"],
        default="manual",
        # The daemon's own children pass their reason; anyone else leaves the default, so that the daemon counts
        # the run as promcast_retrains_total{reason="manual"} when its report appears. Not for users: no help.
        help=argparse.SUPPRESS,
    )
    p.set_defaults(func=run_train)


def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list a target's model versions, roll back to one and pin it, or unpin")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="versions, which is current, and their scores")
    _common(ls)
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=run_list)
    rb = actions.add_parser(
        "rollback",
        help="point current at an earlier version (default: the one before) and pin it there until models unpin",
    )
    _common(rb)
    rb.add_argument("--to", metavar="VERSION", help="the version to serve and pin (any version in the store)")
    rb.set_defaults(func=run_rollback)
    up = actions.add_parser("unpin", help="release a rollback's pin: current stays; retrains may promote again")
    _common(up)
    up.set_defaults(func=run_unpin)


def _load(args: argparse.Namespace, **extra: Any) -> tuple[Settings, TargetSettings, ModelStore]:
    settings = load_settings(args.config, model_dir=args.model_dir, **extra)
    by_name = {t.name: t for t in settings.targets}
    if args.target not in by_name:
        raise ConfigError(f"no target {args.target!r} in the settings; have {sorted(by_name)}")
    return settings, by_name[args.target], ModelStore(settings.model_dir, args.target, settings.retrain.keep)


def run_train(args: argparse.Namespace) -> int:
    from promcast.daemon.logs import configure_logging
    from promcast.forecaster import PRETRAINED_MODEL
    from promcast.forecaster.extras import require_torch

    margin = {"margin": args.margin} if args.margin is not None else None  # merged into the file's section
    settings, target, store = _load(args, log_format=args.log_format, retrain=margin)
    if target.model == PRETRAINED_MODEL:
        print(f"nothing to train for {target.name}: it serves the pretrained model (model: {PRETRAINED_MODEL})")
        return 0
    require_torch("promcast train")  # before the retrain job imports the Forecaster, and torch with it

    from promcast.daemon.models.retrain import ChampionUnreadable, RetrainBusy, retrain
    from promcast.daemon.sources import make_source
    from promcast.daemon.types import SourceUnavailable

    rs = settings.retrain
    configure_logging(settings.log_format, settings.log_level)
    try:
        source = make_source(settings)
        with Stages(4, f"train {target.name}", _log_stage(target.name)) as stages:  # read, fit, score, write
            result = retrain(
                target,
                source,
                store,
                rs,
                dry_run=args.dry_run,
                shard=shard_for(settings),
                trigger=args.trigger,
                stage=stages.stage,
                bars=stages.terminal,
            )
    except (SourceUnavailable, RetrainBusy, ChampionUnreadable, StoreError, ValueError, OSError) as exc:
        print(f"failed {target.name}: {exc}")
        return 1
    if result.decision == "promote":
        what = "would promote" if args.dry_run else f"promoted {target.name} version {result.version}"
        print(f"{what}: {result.reason}")
    else:
        print(f"kept {target.name} version {result.report['champion_version']}: {result.reason}")
    return 0


def _log_stage(target: str) -> Emit:
    """Off a terminal, a stage of ``promcast train`` is one log line (a JSON object, by default there)."""
    from promcast.daemon.logs import get_logger

    log = get_logger("promcast.train")

    def emit(number: int, total: int, what: str) -> None:
        log.info("train_stage", target=target, stage=number, stages=total, doing=what)

    return emit


def _raw_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _row(
    store: ModelStore, target: TargetSettings, version: str, current: str | None, pinned: str | None
) -> dict[str, Any]:
    from promcast.daemon.models.serving import LOAD_ERRORS, load_version
    from promcast.forecaster import PRETRAINED_MODEL
    from promcast.forecaster.artifact import read_meta
    from promcast.forecaster.predictor import is_pretrained
    from promcast.forecaster.scalers import WINDOW

    path = store.versions_dir / version
    try:
        meta = read_meta(path)  # migrated: every field of the current format is there
    except LOAD_ERRORS:
        meta = _raw_meta(path)  # what a broken artifact still says of itself
    try:
        load_version(store, target, version)
        error = None
    except LOAD_ERRORS as exc:
        error = str(exc)
    report = store.decision_of(version) or {}
    holdout = ((report.get("scores") or {}).get("challenger") or {}).get("mae")
    validation = (meta.get("validation") or {}).get("mae")
    # A model that scales each window by itself reports its validation MAE in each series' spreads, not in units.
    scale_free = (meta.get("scaler") or {}).get("kind") == WINDOW
    pretrained = is_pretrained((meta.get("scaler") or {}).get("kind"), meta.get("training"))
    architecture = (meta.get("model") or {}).get("name")
    return {
        "version": version,
        "current": version == current,
        "pinned": version == pinned,
        "loads": error is None,
        "error": error,
        "model": PRETRAINED_MODEL if pretrained else architecture,
        "architecture": architecture,
        "created": meta.get("trained_at"),
        "validation_mae": None if scale_free else validation,  # the target's units, as holdout_mae
        "scale_free_mae": validation if scale_free else None,
        "serves": meta.get("serves"),
        "holdout_mae": holdout,
        "decision": report.get("reason"),
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.6g}"
    return "-" if v is None else str(v)


def _quiet_logs(settings: Settings) -> None:
    """Log lines (a torch_fallback warning while versions are loaded) go to stderr, never into the listing."""
    from promcast.daemon.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)


def _current(store: ModelStore) -> tuple[str | None, str | None]:
    """(the version ``current`` names, the reason it names none when it is broken)."""
    try:
        return store.current_version(), None
    except StoreError as exc:
        return None, str(exc)


# The table's columns; every MAE column holds one unit (the legend under the table says which).
COLUMNS = ("version", "model", "serves", "created", "holdout_mae", "validation_mae", "scale_free_mae")
LEGEND = (
    "holdout_mae, validation_mae: in the target's units. scale_free_mae: validation MAE in standard deviations "
    "of each series (the pretrained model's: on its own corpus)."
)


def _cell(r: dict[str, Any], col: str) -> str:
    if col == "model" and r["model"] != r["architecture"]:
        return f"{r['model']} ({_fmt(r['architecture'])})"  # pretrained (mlp)
    return _fmt(r[col])


def run_list(args: argparse.Namespace) -> int:
    """Every version, newest first: ``*`` marks the current one, ``!`` one that does not load (its cause below);
    the pin, if any, is said below the table."""
    settings, target, store = _load(args)
    _quiet_logs(settings)
    current, broken = _current(store)
    pin = store.pin()
    pinned = pin["version"] if pin is not None else None
    rows = [_row(store, target, v, current, pinned) for v in reversed(store.versions())]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    mark = {(True, True): "*", (True, False): "*!", (False, True): "", (False, False): "!"}
    table = [["", *COLUMNS]] + [[mark[r["current"], r["loads"]], *(_cell(r, c) for c in COLUMNS)] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if not r["loads"]:
            print(f"! {r['version']} does not load: {r['error']}")
    if broken is not None:
        print(f"! current: {broken}")
    if any(r["scale_free_mae"] is not None for r in rows):
        print(LEGEND)
    if pin is not None:
        _print_pin(store, target.name, pin)
    if not rows:
        print(f"no versions in {store.versions_dir}")
    return 0


def _print_pin(store: ModelStore, target: str, pin: dict[str, Any]) -> None:
    """The pin, how to release it, and what the last retrain would have done without it."""
    if pin["version"] is None:
        print(f"pinned: {pin['error']}")
    else:
        print(f"pinned: {pin['version']} by {pin.get('by')} at {pin.get('at')}; no retrain promotes over it")
    print(f"release it with: promcast models unpin --target {target}")
    last = store.latest_decision() or {}
    if last.get("pinned") is not None:
        print(f"last retrain {last.get('run')}: {last.get('reason')}")


def run_rollback(args: argparse.Namespace) -> int:
    """Point ``current`` at ``--to``, or at the newest older version that loads (skipping those that do not)."""
    from promcast.daemon.models.serving import LOAD_ERRORS, load_version, newest_loadable

    settings, target, store = _load(args)
    _quiet_logs(settings)
    current, broken = _current(store)
    try:
        if args.to:
            if args.to not in store.versions():
                raise StoreError(f"{store.dir}: no version {args.to!r}; have {store.versions()}")
            version = load_version(store, target, args.to).version  # never point at a bad one
        else:
            served, refused = newest_loadable(store, target, store.older_versions(current))
            for skipped, cause in refused:
                print(f"skipped {skipped}: {cause}")
            if served is None:
                print(f"failed {target.name}: no loadable version before {current or broken}")
                return 1
            version = served.version
        store.pin_to(version, "promcast models rollback", current)
    except LOAD_ERRORS as exc:
        print(f"failed {target.name}: {exc}")
        return 1
    print(f"rolled back {target.name}: {current or 'a broken current'} -> {version}")
    print(f"pinned {version}: no retrain promotes over it, across restarts, until promcast models unpin")
    return 0


def run_unpin(args: argparse.Namespace) -> int:
    """Release the target's pin; ``current`` stays, and the next retrain may promote over it."""
    _, target, store = _load(args)
    pin = store.unpin()
    if pin is None:
        print(f"{target.name} has no pin: retrains promote as usual")
        return 0
    current, broken = _current(store)
    now = current or broken or "no version"
    print(f"unpinned {target.name}: {now} stays current; the next retrain may promote over it")
    return 0
