"""SRI figures from an sri.json-shaped dict: which files, robustness to missing data, clear errors."""

import numpy as np
import pytest

from toydlm.plots.sri_plots import write_sri_figures
from toydlm.sri import detector_report, irr_table, trajectory_summary

T = 8


def _run(seed: int, detectors: bool) -> dict:
    rng = np.random.default_rng(seed)
    sig = {"benign": np.clip(0.9 + 0.05 * rng.normal(size=(40, T)), 0, 1),
           "jail": np.clip(np.linspace(0.9, 0.2, T) + 0.1 * rng.normal(size=(30, T)), 0, 1)}
    run = {"irr": irr_table({"none": sig["jail"][:5], "cipher": sig["jail"], "all_attacks": sig["jail"]}),
           "trajectories": {"benign": trajectory_summary(sig["benign"], np.ones((40, T))),
                            "jailbreak_success": trajectory_summary(sig["jail"], np.ones((30, T))),
                            "harmful_refused": trajectory_summary(np.zeros((0, T))),
                            "examples": [{"family": "cipher", "row": 0, "sri": sig["jail"][0].tolist(),
                                          "text": [1.0] * T}]},
           "seen_families": ["roleplay"], "unseen_families": ["cipher"]}
    if detectors:
        neg, pos = rng.normal(size=40), rng.normal(2, 1, size=30)
        rep = lambda p: {"seen": detector_report(neg, p, 1.5, roc=True),  # noqa: E731
                         "unseen": detector_report(neg, p, 1.5, roc=True)}
        run["sri"] = {"last": rep(pos)}
        run["baselines"] = {"guard_model": rep(pos), "perplexity_filter": rep(pos[:3])}  # 3 positives: AUROC null
        row = {"auroc_seen": 0.9, "auroc_ci95_seen": [0.8, 0.95], "n_pos_seen": 30, "auroc_unseen": None,
               "auroc_ci95_unseen": None, "n_pos_unseen": 3}
        run["ablation"] = {"layer_indices": {"first": 1, "middle": 2, "last": 3},
                           "rows": [row | {"variant": v} for v in ("text_level_signal", "sri_last_layer")]}
    return run


def test_every_figure_is_written_from_the_dict_alone(tmp_path):
    sri = {"primary": {"model_sampler": "ar/ar"}, "runs": {"ar/ar": _run(0, True), "mdlm/x": _run(1, False)}}
    paths = write_sri_figures(sri, tmp_path / "figs")
    assert [p.name for p in paths] == ["fig_sri_trajectories.png", "fig_sri_irr.png", "fig_sri_roc.png",
                                       "fig_sri_ablation.png"]
    assert all(p.is_file() and p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_runs_without_detectors_give_only_the_signal_figures(tmp_path):
    paths = write_sri_figures({"runs": {"mdlm/x": _run(2, False)}}, tmp_path)
    assert [p.name for p in paths] == ["fig_sri_trajectories.png", "fig_sri_irr.png"]


@pytest.mark.parametrize("bad", [{}, {"runs": {}}, None, {"primary": {}}])
def test_a_dict_without_runs_is_rejected(bad, tmp_path):
    with pytest.raises(ValueError, match="runs"):
        write_sri_figures(bad, tmp_path)
