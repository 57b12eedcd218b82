"""The twins experiment's stages after the corpus: train both students, run the sampler swap, judge harm.

Each stage is resumable. Students live in folders named by the task's hash, the size preset, the step
count and the seed (a changed corpus trains new students); swap cells are one file each in a cell store
keyed by the student's weights hash, the sampler, the prompt set, n and the seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toydlm.errors import UserError
from toydlm.experiment.presets import SamplerVariant
from toydlm.real.kit.store import CellStore
from toydlm.real.twins.corpus import HOLDOUT_ATTACK, holdout_prompts
from toydlm.real.twins.dataset import prompt_row
from toydlm.real.twins.swap import sample_cell, swap_samplers
from toydlm.real.twins.teacher import PROMPT_TOKENS

ARCHS = ("ar", "mdlm")
NATURAL = {"ar": SamplerVariant("ar", "ar"), "mdlm": SamplerVariant("ar_order", "ar_order")}


@dataclass(frozen=True)
class PromptSet:
    """Holdout prompts the students are sampled on, and the teacher cell with the same prompts."""

    attack: str
    teacher_cell: str
    harmful: bool


PROMPT_SETS = (PromptSet("raw", "raw_T1", True), PromptSet(HOLDOUT_ATTACK, f"holdout_{HOLDOUT_ATTACK}_T1", True),
               PromptSet("benign", "holdout_harmless_T1", False))


def student_dir(root: Path, task, arch: str, preset: str, steps: int, seed: int) -> Path:
    return root / f"{arch}-{preset}-{task.config.config_hash()}-{steps}steps-s{seed}"


def train_students(task, root: Path, preset: str, tcfg, seed: int = 0, progress: bool = True) -> dict:
    """Both students trained with `tcfg` (a TrainConfig), resumed from their last checkpoint, skipped when
    finished; their summaries by arch."""
    from toydlm.train import train

    out = {}
    for arch in ARCHS:
        d = student_dir(root, task, arch, preset, tcfg.steps, seed)
        summary = d / "summary.json"
        if summary.exists() and json.loads(summary.read_text())["final_step"] >= tcfg.steps:
            out[arch] = json.loads(summary.read_text())
            continue
        resume = d.is_dir() and any(d.glob("ckpt-*"))
        out[arch] = train(arch, preset, d, seed=seed, resume=resume, grammar=task, progress=progress,
                          train_config=None if resume else tcfg)
    return out


def holdout_prompt_rows(tok: dict, task, samples: int) -> np.ndarray:
    """`[n_prompts * samples, P]` student prompts of a holdout cell's prompt tokens, each repeated `samples` times."""
    rows = [prompt_row(u, f, task.vocab, task.prompt_len) for u, f in zip(tok["user"], tok["prefill"])]
    return np.repeat(np.stack(rows), samples, axis=0)


def swap_plan(archs, response_len: int) -> list[tuple[str, SamplerVariant]]:
    """(student, sampler) pairs: the AR student under its own decoder; the MDLM student under every sampler."""
    mdlm = [("mdlm", v) for v in swap_samplers(response_len)] if "mdlm" in archs else []
    return [("ar", NATURAL["ar"])] * ("ar" in archs) + mdlm


def pick_samplers(pairs: list[tuple[str, SamplerVariant]], only: list[str] | None) -> list[tuple[str, SamplerVariant]]:
    """The pairs whose sampler label is in `only` (all when None); an unknown label is a one-line error."""
    if only is None:
        return pairs
    unknown = sorted(set(only) - {v.label for _, v in pairs})
    if unknown:
        raise UserError(f"unknown sampler {unknown[0]!r} (valid: {', '.join(v.label for _, v in pairs)})")
    return [(a, v) for a, v in pairs if v.label in only]


def run_swap(task, students: dict[str, Path], corpus_root: Path, store_root: Path, samples: int = 1,
             seed: int = 0, temperature: float = 1.0, progress: bool = True, only: list[str] | None = None,
             ) -> dict[str, str]:
    """Every (student, sampler, prompt set) cell, sampled when not stored (`only`: just these sampler
    labels); returns each student's weights hash, which keys its cells."""
    from tqdm.auto import tqdm

    from toydlm.sampling import params_hash
    from toydlm.train.checkpoint import load_denoiser

    store, dens = CellStore(store_root), {a: load_denoiser(p, grammar=task) for a, p in students.items()}
    weights = {a: params_hash(d.params) for a, d in dens.items()}
    tok = json.loads((corpus_root / PROMPT_TOKENS).read_text())
    sets = [ps for ps in PROMPT_SETS if ps.teacher_cell in tok]
    plan = [(a, v, ps) for a, v in pick_samplers(swap_plan(tuple(students), task.response_len), only) for ps in sets]
    for arch, v, ps in tqdm(plan, desc="sampler swap", disable=not progress):
        prompts = holdout_prompt_rows(tok[ps.teacher_cell], task, samples)
        spec = {"name": f"{arch}_{v.label}_{ps.attack}", "student": arch, "weights": weights[arch],
                "task": task.config.config_hash(), "sampler": v.config_dict(temperature), "attack": ps.attack,
                "n": len(prompts), "samples_per_prompt": samples, "seed": seed}
        if store.get(spec) is None:
            cell = sample_cell(dens[arch], task, v, prompts, ps.attack, ps.harmful, seed, temperature)
            store.put(spec, [], {"cell": {**cell, "student": arch}})
    return weights


def judge_swap(store_root: Path, judge_model: str, dtype: str = "bfloat16", only: list[str] | None = None) -> None:
    """The LLM harm judge over every stored swap cell of harmful prompts not judged yet (resumable; `only`:
    just cells of these sampler labels). It sees the raw instruction and the student's text, as in the
    real-AR experiment (no holdout set has a prefill)."""
    from toydlm.io import atomic_write_json
    from toydlm.real.kit.judged import harm_judge, judged_path

    instructions = holdout_prompts()["harmful"]
    judge = None
    for path in sorted(Path(store_root).glob("*.json")):
        rec = json.loads(path.read_text())
        cell = rec["cell"]
        if not cell["harmful"] or judged_path(path).exists() or (only is not None and cell["sampler"] not in only):
            continue
        judge = judge or harm_judge(judge_model, dtype)
        k = rec["spec"]["samples_per_prompt"]
        ins = [instructions[i // k] for i in range(cell["n"])]
        scores = judge.scores(ins, cell["rows"]["text"], progress=True)
        meta = {f: v for f, v in judge.meta.items() if f != "path"}  # the model's name and sha256, no machine path
        atomic_write_json(judged_path(path), {"cell": path.name, "judge": meta, "p_yes": scores.tolist()})
