"""The model card of the pretrained model (``forecaster/pretrained/MODEL_CARD.md``): what it is, how
``forecaster.pretrain`` made it, and every series it learnt from with its source and licence."""

from __future__ import annotations

from typing import Any

from .corpus import FAMILIES, SOURCES, TRAIN_SHARE, Part

__all__ = ["card"]

LICENCES = {  # from the traces folder's README, "Sources and licences"
    "nab_": "numenta/NAB, MIT",
    "bitbrains_": "GWA-T-12 Bitbrains rnd traces (Shen, van Beek and Iosup, CCGrid 2015), via a BSD-2-Clause "
    "repository; cite the Grid Workloads Archive",
    "nasa_": "NASA-HTTP logs of the Internet Traffic Archive, counts from an MIT-licensed repository",
    "alibaba": "Alibaba clusterdata 2018 (machine_usage), CC BY 4.0: attribution to Alibaba",
}


def _licence(name: str) -> str:
    return next((v for k, v in LICENCES.items() if name.startswith(k)), "promcast's own generator (this repository)")


# The card's one-row groups: name prefix, what corpus.json gives of each, step (None: list them), validation rows
# (None: as the first's), source and licence.
GROUPS = (
    ("mixed_", "lists each seed", None, None, "promcast's own generator (this repository)"),
    (
        "mixup_",
        "gives each one's segments and weights",
        "none (rows of several traces)",
        "none (mixed from training rows)",
        "weighted sums of segments of the traces' training rows above (TSMixup)",
    ),
)

# What the card says of the corpus when the model learnt from it (forecaster.corpus gives the rule).
_BALANCE = [
    "The series of the pretraining corpus (real workloads at 5 minutes; none of them a benchmark trace) are "
    "also read at 30 minutes and 1 hour (the mean of each block of 6 or 12 samples). At each step a series is split "
    "at its NaN runs and gives its longest finite segment; no window crosses a NaN run. Each family (Bitbrains, "
    "Azure, Google, NAB) gives the same number of training windows at each step, shared equally by its series: "
    "the family with the most series does not swamp the rest.",
    "",
]


def _corpus_rows(parts: list[Part]) -> list[str]:
    """One row for each file of the corpus folder: its segments, series and windows, and its family's source."""
    rows = []
    for stem, family in SOURCES.items():
        for step in sorted({p.step_seconds for p in parts if p.name.startswith(f"{stem}/")}):
            group = [p for p in parts if p.name.startswith(f"{stem}/") and p.step_seconds == step]
            rows.append(
                f"| `{stem}/*` ({len(group)} series, one finite segment each; `corpus.json` gives each one's row "
                f"and columns) | {step:g} s | the first {TRAIN_SHARE:.1%} of each segment | the rest "
                f"| {FAMILIES[family]}; {sum(p.windows for p in group)} training windows in all |"
            )
    return rows


def card(
    f: Any, parts: list[Part], digest: str, command: str, seconds: float, windows: str, excluded: dict[str, str]
) -> str:
    """The card's text. ``windows``: how many windows each series gives; ``excluded``: what was left out, and why."""
    corpus = [p for p in parts if p.name.split("/")[0] in SOURCES]
    parts = [p for p in parts if p not in corpus]
    rows = [
        f"| `{p.name}` | {p.step_seconds:g} s | 0..{p.train_end - 1} | {p.train_end}..{p.rows - 1} | "
        f"{_licence(p.name)} |"
        for p in parts
        if not p.name.startswith(tuple(g[0] for g in GROUPS))
    ]
    hp = f.meta["model"]["hparams"]
    for prefix, what, step, validation, source in GROUPS:  # one row for each group of many small series
        group = [p for p in parts if p.name.startswith(prefix)]
        if group:
            steps = step or ", ".join(f"{x:g} s" for x in sorted({p.step_seconds for p in group}))
            first = group[0]
            rows.append(
                f"| `{prefix}*` ({len(group)} series, `corpus.json` {what}) | {steps} | 0..{first.train_end - 1} | "
                f"{validation or f'{first.train_end}..{first.rows - 1}'} | {source}; at most {first.windows} "
                "training windows each |"
            )
    return "\n".join(
        [
            "# promcast's pretrained model",
            "",
            f"A global forecaster of the next {f.horizon} steps from the last {f.input_length} points of a series "
            "of any step, level or unit, shipped in the package and served by the NumPy runtime "
            "(`forecaster.load_pretrained()`, `promcast predict --model pretrained`). No download at run time.",
            "",
            f"- Network: `mlp` ({hp}), window {f.window}, the default gate; reversible instance normalisation of every "
            "input window, and an identity global scaler, so that the network never sees a series' level or unit; "
            "`periods`: the calendar seasons whose seasonal-naive forecast, weighted by their autocorrelation in the "
            "window, it also reads.",
            f"- Weights: `artifact/weights.safetensors`, sha256: {digest}",
            f"- Made by: `{command}` "
            f"({seconds:.0f} s of training on a 2-core CPU; {f.meta['training']['epochs_run']} epochs). DATA is the "
            "folder of the benchmark's public traces, CORPUS the folder of the real workload series.",
            f"- Corpus: {len(parts) + len(corpus)} series; {windows}, evenly spaced; each series z-scaled by its "
            "own training rows. `corpus.json` lists them.",
            "- Left out: " + "; ".join(f"`{k}` ({v})" for k, v in excluded.items()) + ".",
            "",
            "Every trace contributes only its first 80 % (train + validation under the benchmark's "
            "protocol); its test part, the last 20 %, stays unseen, so the zero-shot figures below are out of sample "
            "in time for every trace, though not in kind: 16 of the 17 traces gave it their past. On traces it never "
            "saw at all: `python -m benchmarks.pretrained_unseen` (two folds of traces).",
            "",
            *(_BALANCE if corpus else []),
            "| series | step | training rows | validation rows (early stopping, calibration) | source and licence |",
            "|---|---|---|---|---|",
            *rows,
            *_corpus_rows(corpus),
            "",
            "Intervals: split-conformal on the validation windows of the whole corpus, in the scale-free space of "
            "each window's own spread; the daemon's online adaptation corrects them per target.",
            "",
        ]
    )
