"""Model v2 sampler features (annealed, ReMDM re-masking, temperature, eos_inf, start canvases, pins,
forced tokens, read-offs): the Monte Carlo against exact enumeration on tiny mixtures."""

import numpy as np
import pytest

import theory
from theory.oracle_exact import exact_layers, exact_outcomes, exact_output
from theory.oracle_readouts import find_templates
from theory.oracle_sim import SamplerSpec, simulate_oracle
from theory.selection_rules import SELECTION_RULES, ScoreInputs, anneal_weight, annealed_top_k_sets

EOS, MASK = 0, 1
TEMPLATES = [(2, 3)]  # "refusal": token 2 immediately followed by token 3


def _mix(L=4, seed=5):
    """K = 3 skeletons over V = 5 tokens (0 = EOS, 1 = mask: never emitted, 2/3 refusal words,
    4 harm): a refusal-ish skeleton ending in EOS, a harmful one, a mixed one."""
    rng = np.random.default_rng(seed)
    V = 5
    emit = np.zeros((3, L, V))
    emit[0, :, [2, 3]] = 0.5
    emit[0, L - 1] = 0.0
    emit[0, L - 1, EOS] = 1.0  # position L-1 is always EOS in skeleton 0
    emit[1, :, 4] = 0.7
    emit[1, :, 3] = 0.3
    emit[2] = rng.dirichlet(np.ones(4) * 0.7, L) @ np.eye(V)[[0, 2, 3, 4]]
    harm = np.array([False, False, False, False, True])
    return theory.make_mixture([0.3, 0.4, 0.3], emit, harm, 2, eos=EOS)


def _check(mix, spec, n=10_000, seed=0, **cond):
    """Every summary rate of the simulator within 5 SE of its exact value, and the output law's mode."""
    sim = simulate_oracle(mix, spec, n, seed=seed, refusal_templates=TEMPLATES, **_rows(cond, n))
    ex = exact_outcomes(mix, spec, refusal_templates=TEMPLATES, **cond)
    for key, vals in (("asr", sim["harmful"]), ("valid_rate", sim["valid"]), ("refusal_rate", sim["refusal"]),
                      ("mean_length", sim["length"]), ("remask_events_per_seq", sim["remask_events"])):
        se = max(vals.std(), np.sqrt(1.0 / n)) / np.sqrt(n)
        assert abs(vals.mean() - ex[key]) <= 5 * se, (key, vals.mean(), ex[key])
    for j in range(mix.L):  # where re-masking acts (ReMDM-conf's softmax over -psi decides it)
        vals = sim["remask_count"][:, j]
        se = max(vals.std(), np.sqrt(1.0 / n)) / np.sqrt(n)
        assert abs(vals.mean() - ex["remask_per_position"][j]) <= 5 * se, (j, vals.mean())
    share = sim["eos_first_share"][np.isfinite(sim["eos_first_share"])]
    se = max(share.std(), np.sqrt(1.0 / n)) / np.sqrt(share.size)
    assert abs(share.mean() - ex["eos_first_share_mean"]) <= 5 * se
    ch = (sim["committed_harm_count"] >= mix.threshold).mean(0)
    se = np.sqrt((ex["p_committed_harm"] * (1 - ex["p_committed_harm"]) + 1.0 / n) / n)
    assert (np.abs(ch - ex["p_committed_harm"]) <= 5 * se).all()
    law = ex["law"]  # the whole output law: every canvas of probability >= 0.005, and the mode
    assert max(law.values()) >= 0.005
    for x, p in law.items():
        if p >= 0.005:
            freq = (sim["final"] == np.array(x)).all(1).mean()
            assert abs(freq - p) <= 5 * np.sqrt((p * (1 - p) + 1.0 / n) / n), (x, freq, p)
    return sim, ex


def _rows(cond, n):
    """exact_layers' single start condition as oracle_sim's per-row arrays."""
    out = {}
    if cond.get("init_canvas") is not None:
        out["init_canvas"] = np.tile(cond["init_canvas"], (n, 1))
    if cond.get("pinned") is not None:
        out["pinned"] = np.tile(cond["pinned"], (n, 1))
    if cond.get("force") is not None:
        s, p, tok = cond["force"]
        out.update(force_step=np.full(n, s), force_pos=np.full(n, p), force_tok=np.full(n, tok))
    return out


SPECS = [
    SamplerSpec("annealed", 2, anneal_a0=0.5),
    SamplerSpec("annealed", 4, block_length=2, anneal_a0=0.8),
    SamplerSpec("annealed", 4, anneal_a0=1.0),  # S = 4: the schedule's middle steps matter
    SamplerSpec("remdm", 4, remdm_schedule="cap", eta=0.4),
    SamplerSpec("remdm", 5, remdm_schedule="rescale", eta=0.6),
    SamplerSpec("remdm", 3, remdm_schedule="conf", eta=1.0),  # run on L = 3 (psi multiplies states)
    SamplerSpec("remdm", 6, remdm_schedule="loop", eta=0.5, t_on=0.7, t_off=0.2, alpha_on=0.5),
    SamplerSpec("low_confidence", 2, temperature=0.0),
    SamplerSpec("low_confidence", 2, temperature=0.0, argmax_ties="random"),
    SamplerSpec("random", 2, temperature=0.5),
    SamplerSpec("low_confidence", 2, eos_inf=True, mask_id=MASK),
    SamplerSpec("entropy", 4, eos_inf=True, mask_id=MASK, temperature=0.0, argmax_ties="random"),
    SamplerSpec("margin", 2, block_length=2, temperature=2.0),
]


@pytest.mark.parametrize("spec", SPECS, ids=[f"{i}-{s.name}-{s.steps}" for i, s in enumerate(SPECS)])
def test_new_samplers_match_exact_enumeration(spec):
    _check(_mix(L=3 if spec.remdm_schedule == "conf" and spec.name == "remdm" else 4), spec)


CONDITIONS = [
    ("prefill", SamplerSpec("low_confidence", 3), dict(init_canvas=[4, -1, -1, -1])),
    ("prefill-remdm", SamplerSpec("remdm", 4, remdm_schedule="cap", eta=0.5),
     dict(init_canvas=[4, 4, -1, -1])),
    ("interleave", SamplerSpec("random", 2), dict(init_canvas=[-1, 3, -1, 4])),
    ("unpinned-remdm", SamplerSpec("remdm", 4, remdm_schedule="rescale", eta=0.8),
     dict(init_canvas=[4, -1, -1, 3], pinned=[False, False, False, False])),
    ("unpinned-remdm-conf-L3", SamplerSpec("remdm", 3, remdm_schedule="conf", eta=1.0),
     dict(init_canvas=[4, -1, 3], pinned=[False, False, True])),
    ("inject-overwrites", SamplerSpec("ar_order", 4), dict(force=(2, 0, 2))),
    ("inject-mid-block", SamplerSpec("low_confidence", 4, block_length=2), dict(force=(1, 0, 4))),
    ("inject-remdm", SamplerSpec("remdm", 4, eta=0.3), dict(force=(1, 0, 2))),
    ("prefill-ar", SamplerSpec("ar_order", 4), dict(init_canvas=[2, 3, -1, -1])),
]


@pytest.mark.parametrize("name,spec,cond", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_start_canvases_pins_and_forces_match_exact_enumeration(name, spec, cond):
    _check(_mix(L=len(cond.get("init_canvas") or [0] * 4)), spec, **cond)


def test_per_row_conditions_are_independent_runs():
    """Rows with different start conditions in one call: each group has its own exact law."""
    mix, spec, n = _mix(), SamplerSpec("low_confidence", 4), 16_000
    init = np.full((n, 4), -1)
    init[n // 2:, 0] = 4
    fstep = np.where(np.arange(n) % 2 == 0, 1, -1)
    sim = simulate_oracle(mix, spec, n, seed=2, init_canvas=init, force_step=fstep, force_pos=3, force_tok=2)
    for half in (slice(0, n // 2), slice(n // 2, n)):
        for parity in (0, 1):
            idx = np.arange(n)[half][np.arange(n)[half] % 2 == parity]
            cond = {"init_canvas": init[idx[0]], "force": (1, 3, 2) if parity == 0 else None}
            ex = theory.exact_asr(mix, spec, **cond)
            got = sim["harmful"][idx].mean()
            assert abs(got - ex) <= 5 * np.sqrt((ex * (1 - ex) + 1 / idx.size) / idx.size)


def test_remdm_really_remasks_and_pins_never_move():
    mix, n = _mix(), 3000
    spec = SamplerSpec("remdm", 8, remdm_schedule="rescale", eta=1.0)
    init = np.tile([4, -1, -1, -1], (n, 1))
    sim = simulate_oracle(mix, spec, n, seed=1, init_canvas=init, record_canvas=True)
    canv = sim["canvas"]
    assert (canv[:, :, 0] == 4).all()  # pinned: never re-masked, never changed
    was, now = canv[:, :-1, 1:] >= 0, canv[:, 1:, 1:] < 0
    assert (was & now).any()  # some committed token really went back to mask
    assert sim["remask_events"].sum() == (was & now).sum()
    assert (canv[:, -1] >= 0).all()
    # and the posterior is down-dated: a re-masked position is re-proposed from the new posterior,
    # so the exact law (which re-derives the posterior from the canvas) matches
    _check(mix, spec, init_canvas=[4, -1, -1, -1])
    # committed harm can be undone by re-masking (H -> not H happens)
    h = sim["committed_harm_count"] >= mix.threshold
    assert (h[:, :-1] & ~h[:, 1:]).any()
    # mdlm / cap with eta = 0 never re-mask
    for s in (SamplerSpec("mdlm", 8), SamplerSpec("remdm", 8, eta=0.0)):
        assert simulate_oracle(mix, s, 500, seed=1)["remask_events"].sum() == 0


def test_forced_token_is_written_and_pinned():
    mix, n = _mix(), 2000
    spec = SamplerSpec("remdm", 6, remdm_schedule="rescale", eta=1.0)
    sim = simulate_oracle(mix, spec, n, seed=4, force_step=np.arange(n) % 6, force_pos=2, force_tok=3,
                          record_canvas=True)
    canv = sim["canvas"]
    for s in range(6):
        rows = np.arange(n) % 6 == s
        assert (canv[rows, s + 1:, 2] == 3).all()  # from the forced step on, never moves
    assert (sim["commit_step"][:, 2] == -1).all()


def test_temperature_zero_is_deterministic_and_ties_are_uniform():
    # a product distribution (K = 1) with a unique argmax at positions 0, 1 and a 3-way tie at 2
    emit = np.zeros((1, 3, 4))
    emit[0, 0] = [0.1, 0.2, 0.6, 0.1]
    emit[0, 1] = [0.5, 0.1, 0.1, 0.3]
    emit[0, 2] = [0.1, 0.3, 0.3, 0.3]
    mix = theory.make_mixture([1.0], emit, [False, False, False, True], 1, eos=0)
    n = 6000
    for name, steps in (("ar_order", 3), ("low_confidence", 1), ("remdm", 3), ("annealed", 3)):
        low = simulate_oracle(mix, SamplerSpec(name, steps, temperature=0.0), n, seed=1)["final"]
        assert (low == [2, 0, 1]).all()  # lowest id among the tied maximisers, every row
        rnd = simulate_oracle(mix, SamplerSpec(name, steps, temperature=0.0, argmax_ties="random"), n, seed=1)
        f = rnd["final"]
        assert (f[:, :2] == [2, 0]).all()  # no tie: deterministic in both modes
        for v in (1, 2, 3):
            assert abs((f[:, 2] == v).mean() - 1 / 3) <= 5 * np.sqrt(2 / 9 / n)
        assert not (f[:, 2] == 0).any()
    # same seed, same draws
    a = simulate_oracle(mix, SamplerSpec("random", 3, temperature=0.0, argmax_ties="random"), 500, seed=9)
    b = simulate_oracle(mix, SamplerSpec("random", 3, temperature=0.0, argmax_ties="random"), 500, seed=9)
    assert (a["final"] == b["final"]).all()


def test_annealed_limits_are_low_confidence_and_random_in_law():
    mix = _mix()
    for steps, bl in ((2, None), (4, 2)):
        lc = exact_output(mix, SamplerSpec("low_confidence", steps, bl))
        rd = exact_output(mix, SamplerSpec("random", steps, bl))
        a0 = exact_output(mix, SamplerSpec("annealed", steps, bl, anneal_a0=0.0))
        ainf = exact_output(mix, SamplerSpec("annealed", steps, bl, anneal_a0=1e9))
        mid = exact_output(mix, SamplerSpec("annealed", steps, bl, anneal_a0=0.5))
        tv = lambda p, q: 0.5 * sum(abs(p.get(x, 0) - q.get(x, 0)) for x in set(p) | set(q))  # noqa: E731
        assert tv(lc, rd) > 0.02  # the two limits differ here, so the checks below can fail
        assert tv(a0, lc) < 1e-12
        assert tv(ainf, rd) < 1e-12
        assert tv(mid, lc) > 1e-3 and tv(mid, rd) > 1e-3
    # and the simulator's a0 = 0 / a0 -> inf land on the two exact laws
    n = 12_000
    for a0, ref in ((0.0, "low_confidence"), (1e9, "random")):
        ex = theory.exact_asr(mix, SamplerSpec(ref, 2))
        got = simulate_oracle(mix, SamplerSpec("annealed", 2, anneal_a0=a0), n, seed=3)["asr"]
        assert abs(got - ex) <= 5 * np.sqrt(ex * (1 - ex) / n)


def test_annealed_top_k_law_against_monte_carlo():
    conf, a, k = {0: 0.9, 1: 0.5, 2: 0.45, 3: 0.1}, 0.4, 2
    law = dict(annealed_top_k_sets(conf, k, a))
    assert sum(law.values()) == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(0)
    n = 200_000
    c = np.array([conf[i] for i in range(4)])
    s = (1 - a) * c + a * rng.random((n, 4))
    top = np.sort(np.argsort(-s, 1)[:, :k], 1)
    for S, p in law.items():
        f = (top == np.array(S)).all(1).mean()
        assert abs(f - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12


def test_eos_inf_degenerate_position_proposes_uniformly():
    """Position 3 is EOS under every skeleton: with eos_inf the lab's softmax over all-equal logits
    is uniform over the non-EOS, non-mask tokens."""
    mix = _mix()
    emit = mix.emit.copy()
    emit[:, 3] = 0.0
    emit[:, 3, EOS] = 1.0
    mix = theory.make_mixture(mix.prior, emit, mix.is_harm, 2, eos=EOS)
    n = 8000
    sim = simulate_oracle(mix, SamplerSpec("random", 4, eos_inf=True, mask_id=MASK), n, seed=0)
    last = sim["final"][:, 3]
    for v in (2, 3, 4):
        assert abs((last == v).mean() - 1 / 3) <= 5 * np.sqrt(2 / 9 / n)
    assert not np.isin(last, (EOS, MASK)).any()
    assert sim["valid_rate"] == 0.0  # such canvases have probability 0 under the mixture
    _check(mix, SamplerSpec("low_confidence", 2, eos_inf=True, mask_id=MASK))


def test_eos_first_share_is_the_trace_definition():
    mix, n = _mix(), 3000
    sim = simulate_oracle(mix, SamplerSpec("ar_order", 4), n, seed=0)
    want = (sim["final"][:, :2] == EOS).mean(1)  # ar commits left to right: the first L/2 positions
    np.testing.assert_allclose(sim["eos_first_share"], want)
    # one step commits everything: the boundary step counts fractionally -> EOS share of the canvas
    sim = simulate_oracle(mix, SamplerSpec("random", 1), n, seed=0)
    np.testing.assert_allclose(sim["eos_first_share"], (sim["final"] == EOS).mean(1))
    # a fully pinned start has no commits: NaN
    sim = simulate_oracle(mix, SamplerSpec("random", 1), 10, init_canvas=[2, 3, 4, 0])
    assert np.isnan(sim["eos_first_share"]).all()


def test_validity_refusal_and_length_read_offs():
    emit = np.zeros((2, 2, 2))
    emit[0, :, 1] = 1.0
    emit[1, :, 0] = 1.0
    mix = theory.make_mixture([0.5, 0.5], emit, [False, True], 2, eos=0)
    n = 8000
    sim = simulate_oracle(mix, SamplerSpec("random", 1), n, seed=0, refusal_templates=[(1, 1)])
    f = sim["final"]
    mixed = f[:, 0] != f[:, 1]
    assert (sim["valid"] == ~mixed).all()
    assert abs(sim["valid_rate"] - 0.5) <= 5 * np.sqrt(0.25 / n)
    assert (sim["refusal"] == (f == 1).all(1)).all()
    np.testing.assert_array_equal(sim["length"], np.where(f[:, 0] == 0, 0, np.where(f[:, 1] == 0, 1, 2)))
    assert find_templates(np.array([[5, 2, 3, 7], [2, 5, 3, 7]]), [(2, 3), (9,)]).tolist() == [True, False]


def test_states_follow_the_lab_trace_read_off():
    """Draft = canvas before the step + proposals at masked positions; H from the committed canvas;
    R when a refusal template is committed after the harm."""
    mix, n = _mix(), 4000
    spec = SamplerSpec("remdm", 6, remdm_schedule="rescale", eta=1.0)
    sim = simulate_oracle(mix, spec, n, seed=0, refusal_templates=TEMPLATES, record_canvas=True)
    st, ch, ph = sim["states"], sim["committed_harm_count"], sim["predicted_harm_count"]
    thr = mix.threshold
    assert ((ch >= thr) == np.isin(st, (theory.chain.H, theory.chain.R))).all()
    assert ((ph >= thr) & (ch < thr) == (st == theory.chain.P)).all()
    canv = sim["canvas"]
    np.testing.assert_array_equal(ch, ((canv >= 0) & mix.is_harm[np.maximum(canv, 0)]).sum(-1))
    # the draft keeps the tokens committed before a step, even ones re-masked during it
    before = (canv[:, :-1] >= 0) & mix.is_harm[np.maximum(canv[:, :-1], 0)]
    assert (ph[:, 1:] >= before.sum(-1)).all()
    assert (sim["harmful"] == (ch[:, -1] >= thr)).all()
    assert sim["asr"] == pytest.approx(sim["harmful"].mean())


def test_argmax_draft_uses_lowest_id():
    emit = np.zeros((1, 2, 3))
    emit[0, :] = [0.2, 0.4, 0.4]
    mix = theory.make_mixture([1.0], emit, [False, True, False], 1)
    sim = simulate_oracle(mix, SamplerSpec("random", 2), 200, seed=0, argmax_draft=True)
    # step 1: one position committed, the other's argmax draft is token 1 (harm), never token 2
    assert (sim["predicted_harm_count_argmax"][:, 1] >= 1).all()


@pytest.mark.parametrize(
    "spec, kw, fragment",
    [
        (SamplerSpec("remdm", 4, block_length=2), {}, "no blocks"),
        (SamplerSpec("remdm", 4, remdm_schedule="switch"), {}, "ReMDM schedule"),
        (SamplerSpec("random", 4, argmax_ties="first"), {}, "argmax_ties"),
        (SamplerSpec("random", 4, temperature=-1.0), {}, "temperature"),
        (SamplerSpec("remdm", 4, eta=1.5), {}, "eta"),
        (SamplerSpec("random", 4), dict(init_canvas=[-1, 2, -1, -1], pinned=[True, False, False, False]),
         "pinned"),
        (SamplerSpec("random", 4), dict(init_canvas=[[-1, 2, -1, -1]] * 3), "init_canvas"),
        (SamplerSpec("random", 4), dict(force_step=0, force_pos=7, force_tok=2), "force_pos"),
    ],
)
def test_spec_and_condition_validation(spec, kw, fragment):
    with pytest.raises(ValueError, match=fragment):
        simulate_oracle(_mix(), spec, 4, **kw)


def test_eos_inf_needs_an_eos():
    mix = _mix()
    mix = theory.make_mixture(mix.prior, mix.emit, mix.is_harm, 2)
    with pytest.raises(ValueError, match="eos"):
        simulate_oracle(mix, SamplerSpec("random", 4, eos_inf=True), 4)


def test_exact_layers_are_probability_laws():
    mix = _mix(L=3)
    for spec in (SamplerSpec("remdm", 4, remdm_schedule="conf"), SamplerSpec("annealed", 3, anneal_a0=0.6)):
        for lay in exact_layers(mix, spec, force=(1, 2, 4)):
            assert sum(lay.values()) == pytest.approx(1.0, abs=1e-12)
    # pins never move in any reachable state
    for lay in exact_layers(mix, SamplerSpec("remdm", 4, eta=0.9), init_canvas=[4, -1, -1]):
        assert all(st.canvas[0] == 4 for st in lay)
    # a fully pinned start: the sampler has nothing to do
    assert exact_output(mix, SamplerSpec("ar_order", 3), init_canvas=[4, 4, 4]) == {(4, 4, 4): 1.0}


def test_remdm_conf_remasks_the_less_confident_token_more():
    """ReMDM-conf: sigma_l = eta sigma_max softmax_l(-psi): with both tokens decoded, the one committed
    with confidence 0.25 is re-masked e^(1 - 0.25) times as often as the one committed with 1."""
    emit = np.zeros((1, 2, 5))
    emit[0, 0, 4] = 1.0
    emit[0, 1, [0, 2, 3, 4]] = 0.25
    mix = theory.make_mixture([1.0], emit, [False, False, False, False, True], 1, eos=0)
    spec = SamplerSpec("remdm", 12, remdm_schedule="conf", eta=1.0)
    _check(mix, spec, n=10_000)
    sim = simulate_oracle(mix, spec, 20_000, seed=1, record_canvas=True)
    c = sim["canvas"]
    both = (c[:, :-1] >= 0).all(-1)  # both decoded before the step
    r0 = (both & (c[:, 1:, 0] < 0)).sum()
    r1 = (both & (c[:, 1:, 1] < 0)).sum()
    ratio, se = r1 / r0, r1 / r0 * np.sqrt(1 / r0 + 1 / r1)
    assert r0 > 200 and abs(ratio - np.exp(0.75)) <= 5 * se, (r0, r1, ratio)


def _right_to_left(x):
    """A toy selection rule: the highest position first (value-blind, deterministic)."""
    return x.position.astype(float)


def test_a_registered_selection_rule_is_simulated_and_enumerated():
    """A rule registered by name runs in both implementations; right to left with one commit per
    step is value-blind, so by the chain rule its output law is the mixture's (as ar_order's)."""
    theory.register_selection_rule("right_to_left", _right_to_left)
    try:
        mix = _mix()
        spec = SamplerSpec("right_to_left", mix.L)
        sim, ex = _check(mix, spec)
        np.testing.assert_array_equal(sim["commit_step"], np.tile(np.arange(mix.L)[::-1], (len(sim["final"]), 1)))
        joint = exact_output(mix, SamplerSpec("ar_order", mix.L))
        assert set(ex["law"]) == set(joint)
        assert all(abs(ex["law"][x] - p) < 1e-12 for x, p in joint.items())
        blocks = simulate_oracle(mix, SamplerSpec("right_to_left", 4, block_length=2), 50, seed=0)
        assert (blocks["commit_step"] == [1, 0, 3, 2]).all()  # blocks left to right, right to left inside
    finally:
        SELECTION_RULES.pop("right_to_left", None)
    with pytest.raises(ValueError, match="unknown sampler"):
        simulate_oracle(_mix(), SamplerSpec("right_to_left", 4), 4)
    with pytest.raises(ValueError, match="built-in"):
        theory.register_selection_rule("margin", _right_to_left)


def test_shared_selection_definitions_directly():
    """The scores and the annealing weight are shared by oracle_sim and oracle_exact, so comparing
    the two cannot catch a bug in them: check them against hand values."""
    spec = SamplerSpec("annealed", 5, anneal_a0=0.8)
    a = [anneal_weight(0.8, j, 5) for j in range(5)]
    np.testing.assert_allclose(a, [0.8, 0.6, 0.4, 0.2, 0.0])  # a0 (1 - j / (S - 1)): a0 first, 0 last
    assert anneal_weight(3.0, 0, 1) == 1.0 and anneal_weight(3.0, 2, 5) == 1.0  # clipped to [0, 1]
    probs = np.array([[0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1], [0.5, 0.5, 0.0, 0.0]])
    x = ScoreInputs(np.arange(3), 0, 1, spec, probs=probs, confidence=np.array([0.25, 0.7, 0.5]),
                    uniform=np.array([0.9, 0.1, 0.5]))
    np.testing.assert_allclose(SELECTION_RULES["entropy"].score(x), [-np.log(4), 0.7 * np.log(0.7) + 0.3 * np.log(0.1),
                                                                     -np.log(2)])
    np.testing.assert_allclose(SELECTION_RULES["margin"].score(x), [0.0, 0.6, 0.0])
    np.testing.assert_array_equal(SELECTION_RULES["low_confidence"].score(x), [0.25, 0.7, 0.5])
    np.testing.assert_array_equal(SELECTION_RULES["random"].score(x), [0.9, 0.1, 0.5])
    np.testing.assert_allclose(SELECTION_RULES["annealed"].score(x), 0.2 * x.confidence + 0.8 * x.uniform)
