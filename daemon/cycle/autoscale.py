"""Scaling policies: the replicas a forecast recommends, and the autoscaler that acts on a recommendation.

One module for both uses, so that what ``promcast backtest`` measures is what the daemon publishes:

- ``recommend`` is ``promcast_recommended_replicas``: the replicas the peak of the upper bound over the horizon
  needs, never below what the last actual value needs (the reactive floor, as deploy/keda's max(actual, forecast)).
  Since the count is the larger of the two, it falls only when the forecast and the actual load both fall: the
  signal never scales in on a forecast alone (AWS predictive scaling's rule).
- ``reactive`` is what the Kubernetes HPA computes from the actual load alone: ceil(load / (capacity x target
  utilisation)).
- ``Autoscaler.run`` is the controller that follows either signal step by step, as the HPA does with its default
  behaviour: scale out at once to the signal; scale in to the highest signal of the stabilisation window
  (``scale_in_steps``; the HPA's default is 5 minutes); a new replica serves only ``startup_steps`` after it is
  asked for; a scale-in removes replicas still starting first.

Pure NumPy: the daemon (daemon/cycle/job.py) and the backtest (daemon/offline/backtest.py) import it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from promcast.daemon.settings import TargetSettings

__all__ = ["Autoscaler", "Replay", "Scaling", "needed", "recommend", "replay_metrics", "scaling_for"]


@dataclasses.dataclass(frozen=True)
class Scaling:
    """The settings every policy shares; ``ValueError`` names the bad one."""

    capacity_per_replica: float  # load one replica serves
    target_utilization: float = 1.0  # share of that capacity the policy plans to use (the HPA's target)
    min_replicas: int = 1
    max_replicas: int = 100
    startup_steps: int = 0  # steps from asking for a replica to its serving
    scale_in_steps: int = 1  # stabilisation window of a scale-in, in steps (1: none)

    def __post_init__(self) -> None:
        if not np.isfinite(self.capacity_per_replica) or self.capacity_per_replica <= 0:
            raise ValueError(f"capacity_per_replica must be > 0, got {self.capacity_per_replica:g}")
        if not 0 < self.target_utilization <= 1:
            raise ValueError(f"target_utilization must lie in (0, 1], got {self.target_utilization:g}")
        if self.min_replicas < 0:
            raise ValueError(f"min_replicas must be >= 0, got {self.min_replicas}")
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}")
        if self.startup_steps < 0:
            raise ValueError(f"startup_steps must be >= 0, got {self.startup_steps}")
        if self.scale_in_steps < 1:
            raise ValueError(f"scale_in_steps must be >= 1, got {self.scale_in_steps}")

    @property
    def planned(self) -> float:
        """Load one replica is planned to carry: capacity x target utilisation."""
        return self.capacity_per_replica * self.target_utilization


def needed(load: np.ndarray, s: Scaling) -> np.ndarray:
    """Replicas ``load`` needs at the planned utilisation, clamped to [min, max]: the reactive (HPA) count."""
    with np.errstate(invalid="ignore"):
        count = np.ceil(np.maximum(np.asarray(load, dtype=np.float64), 0.0) / s.planned)
    return np.clip(count, s.min_replicas, s.max_replicas)


def recommend(upper: np.ndarray, actual: np.ndarray, s: Scaling) -> np.ndarray:
    """``promcast_recommended_replicas``: per series (rows of ``upper``, (S, H)), the replicas the peak of the upper
    bound over the next ``startup_steps + 1`` steps needs, and never fewer than the last actual value (S,) needs.

    A replica asked for now serves ``startup_steps`` steps from now, so the peak up to that step is what it must
    be ready for; a later peak is asked for later, when it is that close. The steps before it are covered by the
    replicas already there: the count does not fall below what they need either."""
    ahead = np.asarray(upper)[:, : s.startup_steps + 1]
    return np.maximum(needed(ahead.max(axis=1), s), needed(actual, s))


@dataclasses.dataclass(frozen=True)
class Replay:
    """One policy's replay: per step the replicas asked for (they cost) and those serving (they carry load)."""

    requested: np.ndarray  # (T,) int
    serving: np.ndarray  # (T,) int


class Autoscaler:
    """A step-by-step controller that follows a signal of desired replicas with the HPA's default behaviour."""

    def __init__(self, s: Scaling) -> None:
        self.s = s

    def run(self, desired: np.ndarray, initial: int) -> Replay:
        """Follow ``desired`` (T,), decided at each step before its load is seen, from ``initial`` replicas that
        are all serving. Scale out at once; scale in to the highest desired count of the last ``scale_in_steps``
        steps; replicas asked for at step t serve from step t + ``startup_steps``."""
        s = self.s
        want = np.clip(np.asarray(desired, dtype=np.int64), s.min_replicas, s.max_replicas)
        ready_at: list[int] = [-1] * int(np.clip(initial, s.min_replicas, s.max_replicas))  # one entry per replica
        requested = np.empty(len(want), dtype=np.int64)
        serving = np.empty(len(want), dtype=np.int64)
        for t, d in enumerate(want):
            current = len(ready_at)
            if d > current:
                ready_at.extend([t + s.startup_steps] * int(d - current))
            else:
                target = min(current, int(want[max(0, t - s.scale_in_steps + 1) : t + 1].max()))
                ready_at.sort()  # the replicas still starting are the last: they go first
                del ready_at[target:]
            requested[t] = len(ready_at)
            serving[t] = sum(1 for r in ready_at if r <= t)
        return Replay(requested, serving)


def replay_metrics(demand: np.ndarray, replay: Replay, s: Scaling, step_hours: float) -> dict[str, float | int]:
    """What a policy cost and missed over a replay of ``demand`` (T,):

    - ``under_provisioned_steps`` and ``under_provisioned_share``: steps whose demand exceeds the serving capacity
      (serving replicas x capacity_per_replica, the full capacity, not the planned utilisation);
    - ``unserved``: the sum over steps of the demand above that capacity (load units x steps);
    - ``replica_hours``: replicas asked for (starting ones cost too) x the step in hours, summed;
    - ``over_provisioning``: the mean over steps of the spare serving capacity, in replicas;
    - ``scale_events``: steps at which the count asked for changed.
    """
    y = np.asarray(demand, dtype=np.float64)
    capacity = replay.serving * s.capacity_per_replica
    short = y - capacity
    under = short > 1e-9 * s.capacity_per_replica
    changes = int(np.count_nonzero(np.diff(replay.requested))) if len(y) > 1 else 0
    return {
        "under_provisioned_steps": int(under.sum()),
        "under_provisioned_share": float(under.mean()) if len(y) else 0.0,
        "unserved": float(np.maximum(short, 0.0).sum()),
        "replica_hours": float(replay.requested.sum() * step_hours),
        "over_provisioning": float(np.mean(np.maximum(-short, 0.0)) / s.capacity_per_replica) if len(y) else 0.0,
        "scale_events": changes,
    }


def scaling_for(target: TargetSettings) -> Scaling | None:
    """The replicas policy of a target's settings, or None without ``capacity_per_replica``."""
    if target.capacity_per_replica is None:
        return None
    startup = target.horizon - 1 if target.startup_steps is None else target.startup_steps
    return Scaling(
        target.capacity_per_replica, target.target_utilization, target.min_replicas, target.max_replicas, startup
    )
