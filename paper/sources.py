"""Where the paper's numbers come from: required and optional result files, and how to produce each."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "paper"
RESULTS = ROOT / "results"

RUN = "runs/default-s1"
_EXP = ".venv/bin/python experiments/{} --run " + RUN

# Source name -> (path relative to the repo root, command that produces it).
REQUIRED: dict[str, tuple[str, str]] = {
    "default-s1/summary.json": ("results/default-s1/summary.json",
                                f".venv/bin/toydlm run --preset default --seed 1 --out {RUN}, then copy "
                                f"{RUN}/summary.json, sri.json and fig_*.png to results/default-s1/"),
    "default-s1/sri.json": ("results/default-s1/sri.json", f"the same `toydlm run` (writes {RUN}/sri.json)"),
    "exp1_recovery_by_revision.json": ("results/exp1_recovery_by_revision.json",
                                       _EXP.format("exp1_recovery_by_revision.py")),
    "exp2_sampler_swap.json": ("results/exp2_sampler_swap.json", _EXP.format("exp2_sampler_swap.py")),
    "exp3_theory_calibration.json": ("results/exp3_theory_calibration.json",
                                     _EXP.format("exp3_theory_calibration.py")),
    "exp6_oracle_vs_learned.json": ("results/exp6_oracle_vs_learned.json",
                                    _EXP.format("exp6_oracle_vs_learned.py")),
    "exp7_length_hypothesis.json": ("results/exp7_length_hypothesis.json",
                                    _EXP.format("exp7_length_hypothesis.py")),
    "bench_bridge.json": ("results/bench_bridge.json",
                          ".venv/bin/toydlm bench bridge --json > results/bench_bridge.json"),
    "exp8_sri_guard.json": ("results/exp8_sri_guard.json", ".venv/bin/python experiments/exp8_sri_guard.py"),
    "model_quality.json": ("results/model_quality.json", ".venv/bin/python experiments/model_quality.py"),
    "real_ar.json": ("results/real_ar.json", ".venv/bin/python experiments/real_ar.py gen|judge|report "
                     "(docs/real-checkpoints.md)"),
    "seed": ("paper/seed_reference.json",
             "hand-curated quotes of the seed-study notes, docs/seed-study-excerpts.md (checked by the tests)"),
    "goals": ("paper/goals.json", "the project's stated targets (not results)"),
}

_SRI = (".venv/bin/python experiments/real_sri.py report (after its signals, judge and detectors stages; "
        "docs/real-sri.md)")

# Results that may not exist yet: the paper renders a "not yet run" note in their place.
OPTIONAL: dict[str, tuple[str, str]] = {
    "exp4_sweeps.json": ("results/exp4_sweeps.json", _EXP.format("exp4_sweeps.py")),
    "exp5_recovery_curves.json": ("results/exp5_recovery_curves.json", _EXP.format("exp5_recovery_curves.py")),
    "bridge_gpu.json": ("results/bridge_gpu.json",
                        ".venv/bin/toydlm bridge run --model PATH --kind dlm --prompts FILE --device cuda --out DIR"),
    "bench_train.json": ("results/bench_train.json", ".venv/bin/toydlm bench train --json > results/bench_train.json"),
    "twins.json": ("results/twins.json", ".venv/bin/python experiments/real_text_twins.py report (after its corpus, "
                   "train, swap and judge stages; docs/real-text-twins.md)"),
    "real_sri.json": ("results/real_sri.json", _SRI),
    "twins_reading.json": ("results/twins_reading.json", "a reading of twins answers by the project's engineer, "
                           "picked by `experiments/twins_reading.py select` and checked by its `check`"),
    "real_sri_signal.json": ("results/real_sri_signal.json", _SRI),
    "twins_end_hazard.json": ("results/twins_end_hazard.json", ".venv/bin/python experiments/twins_end_hazard.py --run "
                              "RUN_DIR (once per student; docs/real-text-twins.md)"),
}


class MissingSourceError(RuntimeError):
    """A required results file is absent (one clear line: which file and the command that makes it)."""


class PlaceholderError(ValueError):
    """A placeholder or directive in the template cannot be resolved."""


@dataclass
class Sources:
    """Loaded result files by source name; optional ones that are absent map to None."""

    root: Path = ROOT
    data: dict[str, object | None] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        """Whether a source was found (required sources are always present once loaded)."""
        return self.data.get(name) is not None

    def get(self, name: str):
        """The parsed JSON of a source; raises for unknown names and absent sources."""
        if name not in REQUIRED and name not in OPTIONAL:
            raise PlaceholderError(f"unknown source {name!r} (known: {', '.join([*REQUIRED, *OPTIONAL])})")
        if self.data.get(name) is None:
            path, cmd = OPTIONAL.get(name) or REQUIRED[name]
            raise MissingSourceError(f"missing {path}: produce it with `{cmd}`")
        return self.data[name]


def command_for(name: str) -> str:
    """The command that produces a source."""
    return (OPTIONAL.get(name) or REQUIRED[name])[1]


def path_for(name: str) -> str:
    """A source's path relative to the repository root."""
    return (OPTIONAL.get(name) or REQUIRED[name])[0]


def load_sources(root: Path = ROOT) -> Sources:
    """Read every required source (failing on the first absent one) and every optional one that exists."""
    s = Sources(root=root)
    for name, (rel, cmd) in REQUIRED.items():
        p = root / rel
        if not p.is_file():
            raise MissingSourceError(f"missing {rel}: produce it with `{cmd}`")
        s.data[name] = json.loads(p.read_text())
    for name, (rel, _) in OPTIONAL.items():
        p = root / rel
        s.data[name] = json.loads(p.read_text()) if p.is_file() else None
    return s
