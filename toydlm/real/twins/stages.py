"""The twins experiment's stages after training: the sampler swap on the students, and the harm judge.

Each stage is resumable: swap cells are one file each in a cell store keyed by the student's weights
hash, the sampler, its length, the prompt set, n and the seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toydlm.errors import UserError
from toydlm.real.kit.store import CellStore
from toydlm.real.twins.corpus import HOLDOUT_ATTACK, holdout_prompts
from toydlm.real.twins.dataset import prompt_row
from toydlm.real.twins.pooling import is_second_swap
from toydlm.real.twins.swap import SwapSampler, sample_cell, sampler_at, swap_samplers
from toydlm.real.twins.teacher import PROMPT_TOKENS


@dataclass(frozen=True)
class PromptSet:
    """Holdout prompts the students are sampled on, and the teacher cell with the same prompts."""

    attack: str
    teacher_cell: str
    harmful: bool


PROMPT_SETS = (PromptSet("raw", "raw_T1", True), PromptSet(HOLDOUT_ATTACK, f"holdout_{HOLDOUT_ATTACK}_T1", True),
               PromptSet("benign", "holdout_harmless_T1", False))


def holdout_prompt_rows(tok: dict, task, samples: int, prompts: np.ndarray | None = None) -> np.ndarray:
    """`[n_prompts * samples, P]` student prompts of a holdout cell's prompt tokens, each repeated `samples` times
    (`prompts`: only these prompt indices, in order)."""
    rows = [prompt_row(u, f, task.vocab, task.prompt_len) for u, f in zip(tok["user"], tok["prefill"])]
    rows = np.stack(rows) if prompts is None else np.stack(rows)[np.asarray(prompts)]
    return np.repeat(rows, samples, axis=0)


def seed_prompt_shares(seed_names: tuple[str, ...], n_prompts: int, seeds_per_prompt: int | None
                       ) -> dict[str, np.ndarray | None]:
    """Which holdout prompts each MDLM seed samples: prompt i goes to the `seeds_per_prompt` seeds j (in
    `seed_names` order) with (i - j) mod S < seeds_per_prompt, so every prompt gets the same number of seeds
    and every seed about the same number of prompts. None (or S): every seed samples every prompt."""
    S = len(seed_names)
    if seeds_per_prompt is None or seeds_per_prompt >= S:
        return {name: None for name in seed_names}
    if seeds_per_prompt < 1:
        raise UserError(f"seeds per prompt must be at least 1, got {seeds_per_prompt}")
    i = np.arange(n_prompts)
    return {name: i[(i - j) % S < seeds_per_prompt] for j, name in enumerate(seed_names)}


def swap_plan(students: tuple[str, ...], response_len: int, temperature: float = 1.0) -> list[tuple[str, SwapSampler]]:
    """(student, sampler) pairs: the AR student under its own decoder; each MDLM student under every sampler."""
    out = [(name, sampler_at("ar", response_len, temperature)) for name in students if name == "ar"]
    mdlm = swap_samplers(response_len, temperature)
    return out + [(name, v) for name in students if name != "ar" for v in mdlm]


def cell_label(sampler: str, gen_length: int, response_len: int) -> str:
    """The label `--samplers` picks a cell by: the sampler, with `:L` when it runs at another length."""
    return sampler if gen_length == response_len else f"{sampler}:{gen_length}"


def pick_samplers(pairs: list[tuple[str, SwapSampler]], only: list[str] | None, response_len: int,
                  ) -> list[tuple[str, SwapSampler]]:
    """The pairs whose cell label is in `only` (all when None); an unknown label is a one-line error."""
    if only is None:
        return pairs
    labels = list(dict.fromkeys(cell_label(v.label, v.gen_length, response_len) for _, v in pairs))
    unknown = sorted(set(only) - set(labels))
    if unknown:
        raise UserError(f"unknown sampler {unknown[0]!r} (valid: {', '.join(labels)})")
    return [(a, v) for a, v in pairs if cell_label(v.label, v.gen_length, response_len) in only]


def run_swap(task, students: dict[str, Path], corpus_root: Path, store_root: Path, samples: int = 2,
             seed: int = 0, temperature: float = 1.0, progress: bool = True, only: list[str] | None = None,
             split_seeds: tuple[str, ...] = (), seeds_per_prompt: int | None = None,
             ) -> dict[str, str]:
    """Every (student, sampler, prompt set) cell, sampled when not stored (`only`: just these cell labels);
    `students` maps a name (`ar`, `mdlm_s0`, ...) to the checkpoint it is sampled from. With
    `seeds_per_prompt`, the MDLM seeds in `split_seeds` (all of the plan's, finished or not) split each
    prompt set by `seed_prompt_shares`; a seed whose share is empty samples nothing. Returns each student's
    weights hash, which keys its cells."""
    from tqdm.auto import tqdm

    from toydlm.sampling import params_hash
    from toydlm.train.checkpoint import load_denoiser

    store, dens = CellStore(store_root), {a: load_denoiser(p, grammar=task, response_logits_only=True)
                                            for a, p in students.items()}
    weights = {a: params_hash(d.params) for a, d in dens.items()}
    tok = json.loads((corpus_root / PROMPT_TOKENS).read_text())
    sets = [ps for ps in PROMPT_SETS if ps.teacher_cell in tok]
    pairs = pick_samplers(swap_plan(tuple(students), task.response_len, temperature), only, task.response_len)
    # the gen-length sweep runs on the raw harmful prompts only
    plan = [(a, v, ps) for a, v in pairs for ps in sets if v.gen_length == task.response_len or ps.attack == "raw"]
    for name, v, ps in tqdm(plan, desc="sampler swap", disable=not progress):
        n_prompts = len(tok[ps.teacher_cell]["user"])
        share = seed_prompt_shares(split_seeds, n_prompts, seeds_per_prompt).get(name)
        if share is not None and not len(share):
            continue
        prompts = holdout_prompt_rows(tok[ps.teacher_cell], task, samples, share)
        spec = {"name": f"{name}_{v.label}_{ps.attack}_L{v.gen_length}", "student": name,
                "weights": weights[name], "task": task.config.config_hash(), "sampler": v.cfg.to_dict(),
                "gen_length": v.gen_length, "attack": ps.attack, "n": len(prompts), "samples_per_prompt": samples,
                "seed": seed, **({} if share is None else {"prompts": share.tolist()})}
        if store.get(spec) is None:
            cell = sample_cell(dens[name], task, v, prompts, ps.attack, ps.harmful, seed, samples)
            if share is not None:  # rows name the holdout prompt, so pooled seeds cluster by the same prompt
                cell["rows"] = [{**r, "prompt": int(share[r["prompt"]])} for r in cell["rows"]]
                cell["prompts"] = share.tolist()
            store.put(spec, [], {"cell": {**cell, "student": name}})
    return weights


def judge_swap(store_root: Path, judge_model: str, response_len: int, dtype: str = "bfloat16",
               only: list[str] | None = None, weights: set[str] | None = None) -> None:
    """The LLM harm judge over every stored swap cell of harmful prompts not judged yet (resumable; `only`:
    just cells of these labels, as `cell_label` writes them; `weights`: just cells of the students with these
    weights hashes, so a superseded student costs nothing). It sees the raw instruction and the student's
    text, as in the real-AR experiment (no holdout set has a prefill)."""
    from toydlm.io import atomic_write_json
    from toydlm.real.kit.judged import harm_judge, judged_path

    instructions = holdout_prompts()["harmful"]
    judge = None
    for path in sorted(Path(store_root).glob("*.json")):
        rec = json.loads(path.read_text())
        cell = rec["cell"]
        if not is_second_swap(rec) or not cell["harmful"] or judged_path(path).exists():
            continue  # first-swap cells were judged in their own time
        if only is not None and cell_label(cell["sampler"], cell["gen_length"], response_len) not in only:
            continue
        if weights is not None and rec["spec"]["weights"] not in weights:
            continue
        judge = judge or harm_judge(judge_model, dtype)
        ins = [instructions[r["prompt"]] for r in cell["rows"]]  # a row names its holdout prompt (seeds split them)
        scores = judge.scores(ins, [r["text"] for r in cell["rows"]], progress=True)
        meta = {f: v for f, v in judge.meta.items() if f != "path"}  # the model's name and sha256, no machine path
        atomic_write_json(judged_path(path), {"cell": path.name, "judge": meta, "p_yes": scores.tolist()})


def holdout_texts() -> dict[str, tuple[list[str], list[str]]]:
    """(user turns, prefills) of each holdout teacher cell, by its name."""
    from toydlm.real.twins.corpus import holdout_plans, reference_plan

    h = holdout_prompts()
    return {p.name: (list(p.users), list(p.prefills)) for p in (*holdout_plans(h), reference_plan(h))}


def teacher_scores_path(corpus_root: Path, teacher_cell: str) -> Path:
    return Path(corpus_root) / "coherence" / f"teacher_{teacher_cell}.json"


def run_coherence(store_root: Path, corpus_root: Path, teacher_cells: dict[str, dict], teacher: dict,
                  weights: set[str] | None = None, progress: bool = True) -> None:
    """The teacher's NLL of its own holdout samples and of every stored swap cell's answers (of the students
    with these weights hashes; all when None), each scored once and stored (resumable). `teacher`: the
    manifest's record (`checkpoint`, `sha256`). Scores made in another dtype than `SCORING_DTYPE` are redone."""
    from tqdm.auto import tqdm

    from toydlm.io import atomic_write_json, read_json_or_none
    from toydlm.real.kit.checkpoint import open_checkpoint
    from toydlm.real.twins.coherence import SCORING_DTYPE, is_current, read_scores, score_rows, write_scores

    texts, st = holdout_texts(), None
    todo = [(ps, None) for ps in PROMPT_SETS if ps.teacher_cell in teacher_cells
            and not is_current(read_json_or_none(teacher_scores_path(corpus_root, ps.teacher_cell), "teacher scores"))]
    by_attack = {ps.attack: ps for ps in PROMPT_SETS}
    for path in sorted(Path(store_root).glob("*.json")):
        rec = json.loads(path.read_text())
        if (is_second_swap(rec) and (weights is None or rec["spec"]["weights"] in weights)
                and not is_current(read_scores(path))):
            todo.append((by_attack[rec["cell"]["attack"]], path))
    for ps, path in tqdm(todo, desc="coherence", disable=not progress):
        st = st or open_checkpoint(teacher["checkpoint"], "ar", gen_length=96, batch_size=16, dtype=SCORING_DTYPE)
        users, prefills = texts[ps.teacher_cell]
        meta = {"checkpoint": teacher["checkpoint"], "sha256": teacher["sha256"], "dtype": SCORING_DTYPE}
        if path is None:
            scores = score_rows(st, users, prefills, teacher_cells[ps.teacher_cell]["samples"])
            atomic_write_json(teacher_scores_path(corpus_root, ps.teacher_cell), {**scores, "teacher": meta})
        else:
            write_scores(path, score_rows(st, users, prefills, json.loads(path.read_text())["cell"]["rows"]), meta)
