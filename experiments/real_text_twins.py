"""Real-text twins: AR and MDLM students of a real refusing chat model, and the sampler swap on real text.

Stages (each resumable; `--work` keeps one file per finished cell):
  corpus  sample the teacher's corpus and holdout cells (prints the compute estimate first), then write
          the manifest, the prompt tokens and the token bytes beside the cells
  train   train the AR student, then the MDLM students (one per seed, adapted from the AR student by
          default), each stopped early on the validation loss
  swap    sample the finished students on the holdout prompts: the AR student with its own decoder, each
          MDLM student under every sampler and the gen-length sweep (fixed weights)
  judge   the LLM harm judge over the swap cells of harmful prompts
  coherence  the teacher's NLL of the swap cells' answers and of its own holdout samples
  report  results/twins.json and its figures from what is stored
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from toydlm.real.twins.pipeline import TwinsConfig


def args() -> argparse.Namespace:
    from toydlm.real.twins.corpus import CorpusMix
    from toydlm.real.twins.pipeline import TwinsConfig
    from toydlm.real.twins.students import INITS, StudentPlan

    d = CorpusMix()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("corpus", "train", "swap", "judge", "coherence", "report"))
    ap.add_argument("--teacher", default="qwen2.5-coder-0.5b-instruct", help="a `toydlm weights` name")
    ap.add_argument("--work", default=str(ROOT / "results" / "twins_cells"))
    ap.add_argument("--n-raw", type=int, default=d.n_raw, help="raw harmful training prompts")
    ap.add_argument("--raw-samples", type=int, default=d.raw_samples, help="teacher samples per raw harmful prompt")
    ap.add_argument("--n-attacked", type=int, default=d.n_attacked, help="attacked harmful training prompts")
    ap.add_argument("--n-harmless", type=int, default=d.n_harmless, help="harmless training prompts")
    ap.add_argument("--seed", type=int, default=d.seed, help="the corpus's and the swap's sampling seed")
    ap.add_argument("--train-seed", type=int, default=0, help="the AR student's training seed")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--limit-cells", type=int, default=None, help="corpus: sample only the first N cells")
    ap.add_argument("--real-ar-work", default=str(ROOT / "results" / "real_ar_cells"),
                    help="the real-AR cell store (the holdout's raw_T1 teacher cell lives there)")
    ap.add_argument("--prompt-len", type=int, default=64,
                    help="student prompt tokens (longer prompts lose their middle)")
    ap.add_argument("--response-len", type=int, default=96, help="student response tokens (the teacher's cap)")
    sp = StudentPlan()
    ap.add_argument("--preset", default=sp.preset, help="the students' model size preset")
    ap.add_argument("--ar-steps", type=int, default=sp.ar_steps, help="the AR student's schedule length (steps)")
    ap.add_argument("--mdlm-steps", type=int, default=sp.mdlm_steps, help="each MDLM student's schedule length")
    ap.add_argument("--mdlm-lr", type=float, default=sp.mdlm_lr, help="the MDLM students' peak learning rate")
    ap.add_argument("--mdlm-seeds", default=",".join(map(str, sp.mdlm_seeds)), help="MDLM training seeds")
    ap.add_argument("--mdlm-init", default=sp.mdlm_init, choices=INITS,
                    help="start each MDLM student from the AR student (shifted logits) or from scratch")
    ap.add_argument("--mdlm-suffix-frac", type=float, default=sp.mdlm_suffix_frac,
                    help="share of MDLM training rows masked as a suffix (the canvases AR-order decoding visits)")
    ap.add_argument("--patience", type=int, default=sp.patience,
                    help="stop an MDLM student after this many evaluations without a new best validation loss")
    ap.add_argument("--ar-patience", type=int, default=sp.ar_patience,
                    help="the same for the AR student (default: none, it runs its whole schedule)")
    ap.add_argument("--train-batch", type=int, default=sp.batch)
    ap.add_argument("--students", default=None, help="train: only these students (e.g. ar,mdlm_s0)")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "twins"), help="where the students are trained")
    ap.add_argument("--samples", type=int, default=2, help="swap: samples per holdout prompt, per student")
    ap.add_argument("--seeds-per-prompt", type=int, default=TwinsConfig.seeds_per_prompt or 0,
                    help="swap: MDLM seeds that sample each holdout prompt (0: all of them)")
    ap.add_argument("--samplers", default=None, help="swap and judge: comma-separated sampler labels (default: all)")
    ap.add_argument("--judge-model", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--out", default=str(ROOT / "results"))
    return ap.parse_args()


def twins_config(a: argparse.Namespace) -> TwinsConfig:
    """The stages' settings from the parsed arguments (`--samplers`: comma-separated labels)."""
    from toydlm.real.twins.pipeline import TwinsConfig
    from toydlm.real.twins.students import StudentPlan

    split = lambda s: tuple(x for x in s.split(",") if x) if s else None
    plan = StudentPlan(preset=a.preset, batch=a.train_batch, ar_steps=a.ar_steps, mdlm_steps=a.mdlm_steps,
                       mdlm_lr=a.mdlm_lr, mdlm_seeds=tuple(int(x) for x in split(a.mdlm_seeds)),
                       mdlm_init=a.mdlm_init, mdlm_suffix_frac=a.mdlm_suffix_frac, patience=a.patience,
                       ar_patience=a.ar_patience, seed=a.train_seed)
    return TwinsConfig(work=Path(a.work), real_ar_work=Path(a.real_ar_work), runs=Path(a.runs), out=Path(a.out),
                       teacher=a.teacher, prompt_len=a.prompt_len, response_len=a.response_len, students=plan,
                       only_students=split(a.students), seed=a.seed, samples=a.samples,
                       seeds_per_prompt=a.seeds_per_prompt or None,
                       samplers=split(a.samplers), judge_model=a.judge_model)


def main() -> None:
    a = args()
    if a.stage != "corpus":
        from toydlm.real.twins.pipeline import run_stage

        run_stage(a.stage, twins_config(a))
    else:
        from toydlm.real.twins.corpus import CorpusMix
        from toydlm.real.twins.teacher import generate

        mix = CorpusMix(n_raw=a.n_raw, raw_samples=a.raw_samples, n_attacked=a.n_attacked,
                        n_harmless=a.n_harmless, seed=a.seed)
        m = generate(a.teacher, Path(a.work), mix, a.batch_size, limit_cells=a.limit_cells)
        done = sum(c["done"] for c in m["cells"])
        print(f"corpus: {done}/{len(m['cells'])} cells stored under {Path(a.work) / a.teacher}")


if __name__ == "__main__":
    from toydlm.errors import UserError

    try:
        main()
    except UserError as e:
        sys.exit(f"error: {e}")
