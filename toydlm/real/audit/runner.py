"""`toydlm audit`: check everything, print the plan, decode every cell batch by batch (resumable),
judge, analyse, and write audit.json, report.md and report.html."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toydlm.errors import UserError
from toydlm.io import atomic_write_json, provenance
from toydlm.real.audit import analyse
from toydlm.real.audit.checkpoint import check_kind, end_tokens, logits_shift_for, weights_sha256
from toydlm.real.audit.judge import Judge, check_judge
from toydlm.real.audit.plan import AuditCell, base_cells, injection_cells, plan_summary, prompt_lists
from toydlm.real.audit.sample import decode_batch
from toydlm.real.audit.shard import barrier, finish, mine, rank_and_world
from toydlm.real.audit.spec import AuditConfig, check_config, settings
from toydlm.real.audit.store import AuditStore


@dataclass
class Clock:
    """Sampling time of this run, the rate measured on its first decoded batch, and the budget."""

    budget_s: float | None
    start: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    rows: int = 0
    tokens: int = 0
    work_rate: float | None = None  # work units per second, from the first batch
    estimated_seconds: float | None = None
    overhead_s: float = 0.0  # per-cell start-up (a diffusion cell compiles its policy), from the first batch
    n_cells: int = 1
    stopped: bool = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def work_units(cell: AuditCell, rows: int, tokens_per_row: float) -> float:
    """Cost model: an AR row costs its tokens; a diffusion row costs steps × canvas positions."""
    if cell.sampler.cfg.name == "ar":
        return rows * min(tokens_per_row, cell.gen_length)
    return rows * cell.sampler.cfg.resolved(cell.gen_length).steps * cell.gen_length


def inspect_model(cfg: AuditConfig, out: Path) -> tuple[Path, object, bool, str]:
    """(folder, tokenizer, logits shift, weights sha256): every check that needs no weights loaded."""
    from toydlm.bridge.loading import check_device_map, load_tokenizer, require_local
    from toydlm.real.twins.student_setup import student_root

    check_device_map(cfg.device_map)
    if student_root(cfg.model) is not None:
        return _inspect_student(cfg)
    p = require_local(cfg.model)
    tok = load_tokenizer(p, cfg.trust_remote_code)
    check_kind(p, cfg.kind, tok, cfg.mask_id)
    shift = logits_shift_for(p, cfg.logits_shift) if cfg.kind == "dlm" else False
    return p, tok, shift, weights_sha256(p, out / "weights-sha256.json")


def _inspect_student(cfg: AuditConfig) -> tuple[Path, object, bool, str]:
    """A twins student's folder: it runs as a diffusion model on canvases up to the one it was trained on."""
    from toydlm.real.twins.student_setup import read_record, student_root, student_sha256, student_tokenizer

    root = student_root(cfg.model)
    if cfg.kind != "dlm":
        raise UserError(f"{cfg.model} is a twins student: audit it with --kind dlm")
    L = read_record(root)["response_len"]
    if max(cfg.gen_lengths) > L:
        raise UserError(f"--gen-length {max(cfg.gen_lengths)} is longer than the {L}-token canvas the student "
                        "was trained on")
    return Path(cfg.model), student_tokenizer(root), False, student_sha256(cfg.model)


def load_weights(cfg: AuditConfig, p: Path, tok, shift: bool, sha: str) -> tuple[dict, object]:
    """(model description, loaded bridge Setup, or a twins student's)."""
    from toydlm.real.kit.checkpoint import open_checkpoint
    from toydlm.real.twins.student_setup import StudentTokenizer, open_student

    if isinstance(tok, StudentTokenizer):
        st = open_student(p, tok)
        return {"name": st.name, "path": str(cfg.model), "sha256": sha, "kind": "dlm", "mask_id": st.mask_id,
                "end_tokens": end_tokens(tok, st.end_ids), "logits_shift": False, "student": True}, st

    st = open_checkpoint(str(p), cfg.kind, gen_length=max(cfg.gen_lengths), batch_size=cfg.batch_size,
                         dtype=cfg.dtype, device=cfg.device, seed=cfg.seed, trust_remote_code=cfg.trust_remote_code,
                         mask_id=cfg.mask_id, device_map=cfg.device_map, tok=tok, logits_shift=shift, verbose=False)
    model = {"name": Path(cfg.model).name if Path(cfg.model).exists() else cfg.model,
             "path": str(cfg.model), "sha256": sha, "kind": cfg.kind, "mask_id": st.mask_id,
             "end_tokens": end_tokens(tok, st.end_ids), "logits_shift": shift}
    return model, st


def cell_key_model(model: dict, cfg: AuditConfig) -> dict:
    """The part of every cell's key that comes from the checkpoint and the run's numerics."""
    return {"sha256": model["sha256"], "kind": model["kind"], "dtype": cfg.dtype, "device": cfg.device,
            "device_map": cfg.device_map, "batch_size": cfg.batch_size, "chat": cfg.chat,
            "mask_id": model["mask_id"], "end_ids": [e["id"] for e in model["end_tokens"]],
            "logits_shift": model["logits_shift"]}


def run_cell(st, cell: AuditCell, spec: dict, store: AuditStore, cfg: AuditConfig, clock: Clock,
             plan_work: Callable[[float], float], log) -> dict | None:
    """A cell's stored record, decoding its missing batches; None when the budget stopped it."""
    from tqdm import tqdm

    rec = store.cell(spec)
    if rec is not None:
        return rec
    done = store.batches(spec)
    bar = tqdm(total=cell.rows, desc=cell.name, disable=not cfg.progress, leave=False)
    bar.update(sum(len(v["samples"]) for v in done.values()))
    for a in range(0, cell.rows, cfg.batch_size):
        if a in done:
            continue
        b = min(a + cfg.batch_size, cell.rows)
        if _over_budget(clock, cell, b - a, first=not done):
            bar.close()
            clock.stopped = True
            return None
        stamps = [time.perf_counter()]
        rows = decode_batch(st, cell, a, b, cfg.chat, on_step=lambda i, s=stamps: s.append(time.perf_counter()))
        dt = time.perf_counter() - stamps[0]
        store.put_batch(spec, a, rows, dt)
        done[a] = {"samples": rows, "seconds": dt}
        _account(clock, cell, rows, stamps, dt, plan_work, log)
        bar.update(len(rows))
    bar.close()
    samples = [r for a in sorted(done) for r in done[a]["samples"]]
    return store.finish(spec, samples, {"seconds": sum(v["seconds"] for v in done.values())})


def _over_budget(clock: Clock, cell: AuditCell, rows: int, first: bool) -> bool:
    """Would the next batch end past the budget (at the measured rate, plus a new cell's start-up)?"""
    if clock.budget_s is None or clock.work_rate is None:
        return False
    need = work_units(cell, rows, clock.tokens / max(clock.rows, 1)) / clock.work_rate
    need += clock.overhead_s if first else 0.0
    return clock.elapsed() + need > clock.budget_s


def _account(clock: Clock, cell: AuditCell, rows: list[dict], stamps: list[float], dt: float,
             plan_work: Callable[[float], float], log) -> None:
    """Count a decoded batch; after the first one, print the expected sampling time."""
    toks = sum(r["length"] + int(r["ended"]) for r in rows)
    first = clock.work_rate is None
    clock.seconds += dt
    clock.rows += len(rows)
    clock.tokens += toks
    if not first:
        return
    per_row = toks / len(rows)
    work, overhead = work_units(cell, len(rows), per_row), 0.0
    if cell.sampler.cfg.name != "ar" and len(stamps) > 2:  # diffusion: the first step compiles the policy
        steady = (stamps[-1] - stamps[1]) / (len(stamps) - 2)
        overhead = max(stamps[1] - stamps[0] - steady, 0.0)
        clock.work_rate = work * (len(stamps) - 2) / (len(stamps) - 1) / max(stamps[-1] - stamps[1], 1e-9)
    else:
        clock.work_rate = work / dt
    clock.overhead_s = overhead
    clock.estimated_seconds = dt + max(plan_work(per_row) - work, 0.0) / clock.work_rate + \
        overhead * (clock.n_cells - 1)
    log(f"first batch: {len(rows)} rows in {dt:.1f} s ({toks / dt:.1f} tokens/s); expected sampling time "
        f"{clock.estimated_seconds / 60:.1f} min")
    if clock.budget_s is not None and dt > clock.budget_s:
        raise UserError(f"--max-minutes {clock.budget_s / 60:g} is too small for one batch, which took "
                        f"{dt / 60:.2f} min (the batch is kept): raise --max-minutes or lower --batch-size")


def run_audit(cfg: AuditConfig, log=print) -> dict | None:
    """Run (or resume) an audit; returns the audit.json record (None on every process but the first)."""
    clock = Clock(None if cfg.max_minutes is None else cfg.max_minutes * 60)  # the budget counts loading too
    rank, world = rank_and_world()
    log = log if rank == 0 else (lambda *a, **k: None)
    check_config(cfg)
    harmful, harmless = prompt_lists(cfg)
    check_judge(cfg.judge)
    out = Path(cfg.out)
    p, tok, shift, sha = inspect_model(cfg, out)
    cells = base_cells(cfg, harmful, harmless, tok)
    n_inj = 6 * min(50, len(harmful)) * len(cfg.temperatures) * len(cfg.gen_lengths) if "injection" in cfg.attacks \
        else 0
    summary = plan_summary(cells, 6 * len(cfg.temperatures) * len(cfg.gen_lengths) if n_inj else 0)
    log(f"plan: {summary['cells']} cells, at most {summary['rows'] + n_inj} rows and "
        f"{summary['tokens_worst'] + n_inj * max(cfg.gen_lengths)} tokens ({Path(str(p)).name}, {cfg.kind}, "
        f"{cfg.device}, {cfg.dtype}, {world} process{'es' if world > 1 else ''}); the expected time follows the "
        "first batch")
    model, st = load_weights(cfg, p, tok, shift, sha)
    key_model = cell_key_model(model, cfg)
    store = AuditStore(out)
    todo = mine(cells, rank, world)
    clock.n_cells = sum(store.cell(c.spec(key_model)) is None for c in todo)

    def plan_work(per_row: float) -> float:
        return sum(work_units(c, c.rows, per_row) for c in todo) + n_inj * per_row / world

    _sample_all(st, todo, cfg, key_model, store, clock, plan_work, log)
    barrier(world)
    records = {c.name: r for c in cells if (r := store.cell(c.spec(key_model))) is not None}
    if not clock.stopped and "injection" in cfg.attacks:
        for raw in [c for c in cells if c.attack == "raw" and c.name in records]:
            rec = records[raw.name]
            inj = injection_cells(raw, rec["samples"], analyse.refusals(rec["samples"]), tok)
            cells += inj
            _sample_all(st, mine(inj, rank, world), cfg, key_model, store, clock, plan_work, log)
        barrier(world)
        records = {c.name: r for c in cells if (r := store.cell(c.spec(key_model))) is not None}
    clock.stopped = clock.stopped or len(records) < len(cells)
    finish(world)
    if rank != 0:
        return None
    return _write(cfg, model, cells, records, key_model, clock, out)


def _write(cfg, model, cells, records, key_model, clock, out: Path) -> dict:
    from toydlm.real.audit.assemble import assemble
    from toydlm.real.audit.report import write_reports

    judge = Judge(cfg.judge, device=cfg.device, cache_root=out / "judged")
    result = assemble(cfg, model, cells, records, judge, key_model, clock)
    result["timing_history"] = _log_timing(out, result["timing"], result["complete"])
    result.update(provenance(seed=cfg.seed, config=settings(cfg)))
    atomic_write_json(out / "audit.json", result)
    write_reports(result, out)
    return result


def _sample_all(st, cells, cfg, key_model, store, clock, plan_work, log) -> None:
    """Decode every cell into the store, in order, until the budget stops one."""
    for c in cells:
        if run_cell(st, c, c.spec(key_model), store, cfg, clock, plan_work, log) is None:
            log(f"stopped before {c.name}: --max-minutes {cfg.max_minutes:g} reached; rerun the same command to "
                "resume")
            return


def _log_timing(out: Path, timing: dict, complete: bool) -> list[dict]:
    """Every invocation's timing in this folder, this one appended (a resumed audit keeps its history)."""
    import json

    from toydlm.io import atomic_write_text

    path = out / "timing_history.json"
    hist = json.loads(path.read_text()) if path.exists() else []
    hist.append({**{k: v for k, v in timing.items() if k != "note"}, "complete": complete,
                 "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    atomic_write_text(path, json.dumps(hist, indent=1) + "\n")
    return hist
