"""Do the students end their answers where the teacher did? The teacher-forced end hazard in AR order
(`toydlm/real/twins/end_hazard.py`) of each student's swap checkpoint, on the validation rows: teacher
answers to training-corpus prompts that no student trained on.

  python experiments/twins_end_hazard.py --run runs/twins/<teacher>/ar-... --run runs/twins/<teacher>/mdlm-...

Writes `--out` (JSON) and a figure of the mean hazard in the positions before and at the teacher's end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OFFSETS = 24  # positions before the teacher's end shown in the figure


def args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="a student's run folder (repeat for several)")
    ap.add_argument("--teacher", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--work", default=str(ROOT / "results" / "twins_cells"))
    ap.add_argument("--real-ar-work", default=str(ROOT / "results" / "real_ar_cells"))
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--response-len", type=int, default=96)
    ap.add_argument("--validation-every", type=int, default=20, help="as the students were trained with")
    ap.add_argument("--out", default=str(ROOT / "results" / "twins_end_hazard.json"))
    return ap.parse_args()


def by_offset(rows: np.ndarray, hazards: list[np.ndarray], prompt_len: int) -> list[float | None]:
    """Mean hazard at offsets -OFFSETS..0 from the teacher's end, over the rows that end."""
    from toydlm.real.twins.swap import end_lengths

    sums, counts = np.zeros(OFFSETS + 1), np.zeros(OFFSETS + 1)
    for e, ended, h in zip(*end_lengths(rows[:, prompt_len:]), hazards):
        if not ended:
            continue
        for k in range(OFFSETS + 1):
            if e - OFFSETS + k >= 0:
                sums[k] += h[e - OFFSETS + k]
                counts[k] += 1
    return [float(s / c) if c else None for s, c in zip(sums, counts)]


def main() -> None:
    a = args()
    from toydlm.io import atomic_write_json, provenance
    from toydlm.real.twins.build import build_task
    from toydlm.real.twins.end_hazard import hazard_summary, row_hazards
    from toydlm.real.twins.students import best_checkpoint
    from toydlm.sampling import params_hash
    from toydlm.train.checkpoint import load_denoiser, read_checkpoint

    teacher = a.teacher
    task, _ = build_task(Path(a.work) / teacher, Path(a.real_ar_work) / teacher, a.prompt_len, a.response_len,
                         validation_every=a.validation_every)
    rows, students = task.held_out_rows, {}
    for run in map(Path, a.run):
        ck = best_checkpoint(run)
        meta = read_checkpoint(ck)[0]
        den = load_denoiser(ck, grammar=task)
        hazards = row_hazards(den, rows, task.prompt_len)
        students[run.name] = {"arch": meta["arch"], "step": int(meta["step"]), "weights": params_hash(den.params),
                              **hazard_summary(rows, hazards, task.prompt_len),
                              "hazard_by_offset": by_offset(rows, hazards, task.prompt_len)}
        print(run.name, {k: v for k, v in students[run.name].items() if k != "hazard_by_offset"}, flush=True)
    out = Path(a.out)
    config = {k: v for k, v in vars(a).items() if k not in ("run", "work", "real_ar_work", "out")}
    atomic_write_json(out, {"rows": "validation", "n_rows": len(rows), "offsets": list(range(-OFFSETS, 1)),
                            "students": students, "provenance": provenance(0, config=config)})
    figure(out, students)


def figure(out: Path, students: dict) -> None:
    from toydlm.real.kit.figures import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for s in students.values():
        y = s["hazard_by_offset"]
        x = [k - OFFSETS for k in range(len(y))]
        ax.plot(x, y, marker="o", ms=3, label=f"{s['arch']} (step {s['step']}): length NLL {s['length_nll']:.2f}")
    ax.set(xlabel="response position relative to the teacher's end", ylabel="P(end | true prefix, rest masked)",
           title="AR-order end hazard at the teacher's answers", yscale="log")
    ax.legend(fontsize=7)
    print(f"wrote {out} and {save_figure(fig, out.parent, out.stem + '.png')}")


if __name__ == "__main__":
    main()
