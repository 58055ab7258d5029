"""The Grafana dashboard for a target's horizon and step: ``promcast dashboard --horizon 24 --step 300``.

``deploy/grafana/promcast-dashboard.json`` is this module's output for the defaults (12 steps of 1 minute); a
test keeps the two equal. Only the ``h`` variable depends on the horizon and step: its text is the step
number h (the ``h`` label of ``promcast_forecast``), its value h steps as a Prometheus duration (for ``offset``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from promcast.forecaster import DEFAULT_HORIZON

__all__ = ["TEMPLATE", "add_dashboard", "duration", "h_variable", "render"]

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "promcast-dashboard.json"
_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds``, in the largest unit that divides it (``300`` -> ``5m``)."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"a duration must be positive, got {seconds!r} s")
    for unit, size in _UNITS:
        if ms % (size * 1000) == 0:
            return f"{ms // (size * 1000)}{unit}"
    return f"{ms}ms"


def h_variable(horizon: int, step_seconds: float) -> dict[str, Any]:
    """The dashboard's ``h`` variable: options 1..horizon, each worth h steps as a duration."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    pairs = [(str(h), duration(h * step_seconds)) for h in range(1, horizon + 1)]
    return {
        "name": "h",
        "label": "Steps ahead",
        "type": "custom",
        "description": (
            f"Text: steps ahead h (1..{horizon}); value: h steps of {duration(step_seconds)} as a duration (for "
            "offset). Generated for this horizon and step: promcast dashboard --horizon H --step SECONDS."
        ),
        "query": ", ".join(f"{text} : {value}" for text, value in pairs),
        "options": [{"text": t, "value": v, "selected": i == 0} for i, (t, v) in enumerate(pairs)],
        "current": {"text": pairs[0][0], "value": pairs[0][1], "selected": True},
    }


def render(template: dict[str, Any], horizon: int, step_seconds: float) -> dict[str, Any]:
    """``template`` with its ``h`` variable made for ``horizon`` steps of ``step_seconds``; the rest unchanged."""
    out = copy.deepcopy(template)
    variables = out["templating"]["list"]
    places = [i for i, v in enumerate(variables) if v.get("name") == "h"]
    if len(places) != 1:
        raise ValueError(f"the dashboard template needs exactly one variable named h, found {len(places)}")
    variables[places[0]] = h_variable(horizon, step_seconds)
    return out


def dumps(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def run_dashboard(args: argparse.Namespace) -> int:
    from promcast.daemon.settings import ConfigError

    try:
        template = json.loads(Path(args.template).read_text())
        text = dumps(render(template, args.horizon, args.step))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"dashboard: {exc}") from exc
    if args.out is None:
        sys.stdout.write(text)
    else:
        tmp = Path(f"{args.out}.tmp")
        tmp.write_text(text)
        tmp.replace(args.out)
    return 0


def add_dashboard(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="write the Grafana dashboard for a horizon and step")
    p.add_argument("--horizon", type=int, default=DEFAULT_HORIZON, help=f"steps ahead (default {DEFAULT_HORIZON})")
    p.add_argument("--step", type=float, default=60.0, help="the target's step in seconds (default 60)")
    p.add_argument("--template", default=str(TEMPLATE), help="dashboard to start from (default: deploy/'s)")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.set_defaults(func=run_dashboard)
