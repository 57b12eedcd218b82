"""`toydlm run` presets: which models, samplers, attacks and sample sizes make up a run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from toydlm.errors import UserError


@dataclass(frozen=True)
class SamplerVariant:
    """A named sampler setting of the study (a sampler config plus a short label)."""

    label: str
    name: str
    steps: int | None = None
    block_length: int | None = None
    eos_inf: bool = False
    remdm_schedule: str = "cap"
    eta: float | None = None

    def config_dict(self, temperature: float) -> dict:
        d = {"name": self.name, "steps": self.steps, "block_length": self.block_length,
             "temperature": temperature, "eos_inf": self.eos_inf}
        if self.name == "remdm":
            d.update(remdm_schedule=self.remdm_schedule, eta=self.eta)
        return d


# the sampler variants every diffusion model (learned MDLM and oracle) is run with
CORE = (
    SamplerVariant("ar_order", "ar_order"),
    SamplerVariant("random_T16", "random", 16),
    SamplerVariant("random_T4", "random", 4),
    SamplerVariant("low_confidence_T16", "low_confidence", 16),
    SamplerVariant("low_confidence_T4", "low_confidence", 4),
    SamplerVariant("low_confidence_B4_T16", "low_confidence", 16, block_length=4),
    SamplerVariant("entropy_T16", "entropy", 16),
    SamplerVariant("margin_T16", "margin", 16),
    SamplerVariant("mdlm_T16", "mdlm", 16),
    SamplerVariant("annealed_T16", "annealed", 16),
    SamplerVariant("remdm_cap_T32", "remdm", 32, remdm_schedule="cap", eta=0.05),
)
EXTRA = (
    SamplerVariant("random_T8", "random", 8),
    SamplerVariant("low_confidence_T8", "low_confidence", 8),
    SamplerVariant("low_confidence_B4_T4", "low_confidence", 4, block_length=4),
    SamplerVariant("low_confidence_eosinf_T16", "low_confidence", 16, eos_inf=True),
    SamplerVariant("mdlm_T4", "mdlm", 4),
    SamplerVariant("remdm_loop_T32", "remdm", 32, remdm_schedule="loop"),
)
WRAPPERS = ("wrapper:roleplay", "wrapper:hypothetical", "wrapper:prefix", "wrapper:cipher")
PROBES = ("prefill:2", "prefill:4", "inject:refusal@2", "inject:comply@2", "interleave")


@dataclass(frozen=True)
class RunPreset:
    """Everything that decides a `toydlm run`: models, cells, sample sizes (stored in its summary)."""

    name: str
    model_preset: str  # the toydlm.model preset of the learned models
    train_steps: dict  # arch -> training steps (None: the model preset's own step count)
    model_seeds: tuple[int, ...]
    n: int  # prompts per cell
    samplers: tuple[SamplerVariant, ...]
    attacks: tuple[str, ...]
    grammars: tuple[str, ...]  # grammar presets; learned models are trained on the first only
    learned_grammars: tuple[str, ...] = ("default",)
    temperatures: tuple[float, ...] = (1.0,)
    t0_samplers: tuple[str, ...] = ()  # labels also run at temperature 0 (on wrappers only)
    t0_grammars: tuple[str, ...] = ()  # grammars with temperature-0 cells (empty: every grammar)
    grammar_attacks: dict = field(default_factory=dict)  # grammar -> its attacks, where not `attacks`
    oracle_sim_n: int = 2000  # Model-v2 (oracle_sim) Monte Carlo trajectories per predicted cell
    fit_attacks: tuple[str, ...] = ("benign", "none", "wrapper:roleplay")
    fit_samplers: tuple[str, ...] = ("ar",)  # fit on fit_attacks only
    # a learned MDLM's own joint in each decoding order (`predict.decoding_order`): left to right, and any order
    fit_samplers_every_attack: tuple[str, ...] = ("ar_order", "random_T16")
    heldout_sampler: str = "entropy_T16"  # no cell of it is ever used for fitting
    # fit cells are sampled with fit_n_factor * n prompts: an offset read off one n-prompt cell carries
    # that cell's binomial error into every held-out prediction of its family, on top of the held-out
    # cell's own (at n = 250 a perfect theory would then land within 2 SE only ~78% of the time)
    fit_n_factor: int = 4
    # first = `sri_guard` in summary: the AR model, whose jailbreaks succeed often enough to score a detector
    sri_samplers: tuple[str, ...] = ("ar", "ar_order", "low_confidence_T16")
    sri_n_benign: int = 600
    sri_n_attack: int = 300
    budget_s: int | None = None  # the stated wall-clock budget on 2 cores
    notes: str = ""
    extra: dict = field(default_factory=dict)


PRESETS: dict[str, RunPreset] = {
    "quick": RunPreset(
        name="quick", model_preset="tiny", train_steps={"ar": 300, "mdlm": 300}, model_seeds=(0,), n=128,
        samplers=(CORE[0], CORE[1], CORE[3], CORE[5], CORE[6], CORE[8], CORE[10]),
        attacks=("benign", "none", "wrapper:roleplay", "wrapper:prefix", "wrapper:cipher", "prefill:2",
                 "inject:refusal@2", "interleave"),
        grammars=("default",), oracle_sim_n=800, budget_s=120, sri_n_benign=300, sri_n_attack=100,
        notes="smoke test: tiny models that do not reach the grammar; the oracle rows are the meaningful ones"),
    "default": RunPreset(
        # trimmed to a 10-minute budget on 2 cores with 3 training seeds (measured 9 min 42 s on a fresh cache):
        # 600/1200 training steps, no annealed sampler, and the length-matched control on the prompt sets its
        # questions need (the full preset has everything)
        name="default", model_preset="default", train_steps={"ar": 600, "mdlm": 1200}, model_seeds=(0, 1, 2),
        n=250, samplers=tuple(v for v in CORE if v.label not in ("margin_T16", "random_T4", "annealed_T16")),
        attacks=("benign", "none", *WRAPPERS, "prefill:2", "inject:refusal@2", "interleave"),
        grammars=("default", "length_matched"), temperatures=(1.0,),
        grammar_attacks={"length_matched": ("benign", "none", "wrapper:hypothetical", "wrapper:prefix", "prefill:2")},
        t0_samplers=("ar_order", "low_confidence_T16"), t0_grammars=("default",), oracle_sim_n=2000,
        sri_n_benign=400, sri_n_attack=100,
        # SRI: the AR model first (wrapper ASR 0.25-0.7, so every family has >= 10 successful jailbreaks);
        # the MDLM samplers add IRR and trajectories per sampler at the same weights (Figs. 5-6)
        sri_samplers=("ar", "ar_order", "low_confidence_T16"),
        budget_s=600),
    "full": RunPreset(
        name="full", model_preset="default", train_steps={"ar": 3000, "mdlm": 3000}, model_seeds=(0, 1, 2), n=1000,
        samplers=CORE + EXTRA, attacks=("benign", "none", *WRAPPERS, *PROBES),
        grammars=("default", "length_matched", "fixed_length", "midway", "sparse_harm"),
        learned_grammars=("default", "length_matched"),
        t0_samplers=("ar_order", "low_confidence_T16", "random_T16", "low_confidence_B4_T16"),
        oracle_sim_n=6000,
        budget_s=None, notes=(
            "not yet run end to end; estimated about 2 hours on 2 cores from the default run's measured rates "
            "(2026-12-03, fresh cache): 4 seed ensembles (2 grammars x 2 archs, 3 seeds each) x 3000 steps at "
            "~5.8 ensemble steps/s (~35 min), ~3.0M sampled rows (2373 cells) at ~780 rows/s (~65 min), Model v2 "
            "at 6000 trajectories for 1067 groups at ~15k trajectories/s (~7-10 min), SRI ~1 min; resumable, so "
            "it can be run in pieces")),
}


def get_preset(name: str) -> RunPreset:
    """The named run preset; UserError listing the valid names otherwise."""
    if name not in PRESETS:
        raise UserError(f"unknown run preset {name!r} (valid: {', '.join(PRESETS)})")
    return PRESETS[name]


def expected_duration(p: RunPreset) -> str:
    """How long the preset takes on 2 cores, for help texts: its budget, else the estimate in its notes."""
    if p.budget_s is not None:
        return f"~{p.budget_s // 60} min"
    m = re.search(r"estimated (.+?) on 2 cores", p.notes)
    return f"an estimated {m.group(1)}" if m else "duration not estimated"
