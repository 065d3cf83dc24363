"""The pre-registered claims: one-sided paired tests, Holm, Welch, power, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ofdb_study.analysis import claims, stats


def test_one_sided_p_matches_known_t_quantiles():
    # t_{0.95, 5} = 2.015048, t_{0.99, 10} = 2.763769 (standard tables)
    assert stats.one_sided_p(2.015048, 5) == pytest.approx(0.05, abs=2e-6)
    assert stats.one_sided_p(2.763769, 10) == pytest.approx(0.01, abs=2e-6)
    assert stats.one_sided_p(0.0, 7) == pytest.approx(0.5)


def test_paired_t_and_non_inferiority_shift():
    d = [1.0, 2.0, 3.0, 2.0]
    mean, sd, t, n = stats.paired_t(d)
    assert (mean, n) == (2.0, 4) and sd == pytest.approx(np.std(d, ddof=1))
    assert t == pytest.approx(2.0 / (sd / 2.0))
    _, _, t_shift, _ = stats.paired_t(d, shift=2.0)  # tests d > -2
    assert t_shift == pytest.approx(4.0 / (sd / 2.0))
    assert math.isnan(stats.paired_t([1.0])[2])
    assert stats.paired_t([1.0, 1.0, 1.0])[2] == math.inf


def test_holm_step_down_in_input_order():
    adj = stats.holm([0.01, 0.04, 0.03, math.nan])
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 with running maximum: 0.03, 0.06, 0.06
    assert adj[:3] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adj[3])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_welch_interval_covers_the_true_difference_symmetrically():
    diff, low, high = stats.welch_interval([1, 2, 3, 4], [0, 1, 2, 3])
    assert diff == pytest.approx(1.0) and low < 1.0 < high
    assert (high - diff) == pytest.approx(diff - low)
    assert math.isnan(stats.welch_interval([1.0], [2.0, 3.0])[1])


def test_detectable_effect_shrinks_with_more_seeds():
    a, b = stats.detectable_effect(1.0, 4, 0.0125), stats.detectable_effect(1.0, 16, 0.0125)
    assert a > b > 0
    # (t_{0.95,9} + t_{0.8,9}) / sqrt(10) with t values 1.833113 and 0.883408
    assert stats.detectable_effect(1.0, 10, 0.05) == pytest.approx(
        (1.833113 + 0.883408) / math.sqrt(10), rel=1e-5
    )


def test_slopes_per_seed_on_log2_categories():
    df = pd.DataFrame(
        {"seed": [0, 0, 0, 1, 1, 1], "categories": [4, 8, 16] * 2, "top1": [50, 52, 54, 60, 59, 58]}
    )
    s = stats.slopes(df, "categories", "top1")
    assert s[0] == pytest.approx(2.0) and s[1] == pytest.approx(-1.0)


def _runs(effects: dict[str, float], seeds: int = 8, noise: float = 0.5, rng_seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed)
    seed_effect = rng.normal(0, 2.0, seeds)  # shared by every row of a seed: pairing removes it
    rows = []
    for row, mu in effects.items():
        for s in range(seeds):
            rows.append(
                {
                    "row": row,
                    "categories": None if row == "scratch" else 16,
                    "seed": s,
                    "top1_last": 60 + mu + seed_effect[s] + rng.normal(0, noise),
                }
            )
    return pd.DataFrame(rows)


def _verdicts(df: pd.DataFrame) -> dict[str, str]:
    return dict(zip(df["key"], df["verdict"]))


def test_verdicts_agree_disagree_and_stay_inconclusive():
    runs = _runs(
        {"scratch": 0.0, "ofdb": 5.0, "ofdb+pattern": 4.5, "fractaldb": 4.5, "ofdb+fluctuation": 5.0}
    )
    v = _verdicts(claims.evaluate(runs))
    assert v["ofdb_beats_scratch"] == "agrees"
    assert v["pattern_noninferior_to_fractaldb"] == "agrees"  # no difference, a 1-point margin
    assert v["fluctuation_hurts"] == "inconclusive"  # no effect: not counted as agreement
    worse = _runs(
        {"scratch": 3.0, "ofdb": 0.0, "ofdb+pattern": 0.0, "fractaldb": 6.0, "ofdb+fluctuation": 0.0}
    )
    v = _verdicts(claims.evaluate(worse))
    assert v["ofdb_beats_scratch"] == "disagrees"
    assert v["pattern_noninferior_to_fractaldb"] == "disagrees"  # 6 points worse: beyond the margin


def test_pairing_decides_what_the_seed_spread_would_hide():
    runs = _runs({"scratch": 0.0, "ofdb": 1.0}, seeds=6, noise=0.3)
    row = claims.evaluate(runs).set_index("key").loc["ofdb_beats_scratch"]
    assert row["verdict"] == "agrees" and row["welch_low"] < 0 < row["low"]


def test_one_holm_family_over_both_directions_of_the_primary_claims():
    runs = _runs(
        {"scratch": 0.0, "ofdb": 5.0, "ofdb+pattern": 5.0, "fractaldb": 5.0, "ofdb+fluctuation": 5.0}
    )
    df = claims.evaluate(runs).set_index("key")
    prim = df[df["primary"]]
    assert df.attrs["family"] == 2 * len(prim) == 6  # three comparisons ran (no sweep), each both ways
    family = prim["p"].tolist() + prim["p_opposite"].tolist()
    assert prim["p_holm"].tolist() + prim["p_holm_opposite"].tolist() == pytest.approx(stats.holm(family))
    assert df.loc["pattern_helps", "p_holm"] != df.loc["pattern_helps", "p_holm"]  # NaN: secondary


def test_holm_levels_give_bounds_that_match_the_decisions():
    levels = stats.holm_levels([0.001, 0.04, 0.012, math.nan], 0.05)
    # sorted 0.001 (< .05/3), 0.012 (< .05/2), 0.04 (< .05/1): all rejected at their own steps
    assert levels[:3] == pytest.approx([0.05 / 3, 0.05, 0.025]) and math.isnan(levels[3])
    # 0.03 fails its step (.05/2): it and every later one get that step's level
    assert stats.holm_levels([0.001, 0.03, 0.04], 0.05) == pytest.approx([0.05 / 3, 0.025, 0.025])
    rng = np.random.default_rng(3)
    for trial in range(200):
        effects = {
            "scratch": 0.0,
            **{
                r: float(rng.normal(0, 1.0))
                for r in ("ofdb", "ofdb+pattern", "fractaldb", "ofdb+fluctuation")
            },
        }
        df = claims.evaluate(_runs(effects, seeds=6, noise=1.0, rng_seed=trial))
        claims.check_consistent(df)  # raises if a verdict and its bound disagree
        for r in df[df["primary"]].itertuples():
            assert (r.p_holm < claims.ALPHA) == (r.low > -r.shift)
            assert (r.p_holm_opposite < claims.ALPHA) == (r.high < -r.shift)


def test_the_gate_is_per_seed_and_a_claim_needs_two_thirds_of_its_pairs():
    runs = _runs({"scratch": 0.0, "ofdb": 5.0}, seeds=12)
    own = [80.0] * 9 + [20.0] * 3  # three seeds below the bar: their pairs drop
    pretrain = pd.DataFrame(
        [{"row": "ofdb", "categories": 16, "seed": s, "own_top1": own[s], "bar": 50.0} for s in range(12)]
    )
    row = claims.evaluate(runs, pretrain=pretrain).set_index("key").loc["ofdb_beats_scratch"]
    assert row["verdict"] == "agrees" and (row["n"], row["seeds"]) == (9, 12)
    assert "passed its own-task bar in 9 of 12 seeds" in row["why"]
    pretrain["own_top1"] = [80.0] * 7 + [20.0] * 5  # 7 of 12 < two thirds
    row = claims.evaluate(runs, pretrain=pretrain).set_index("key").loc["ofdb_beats_scratch"]
    assert row["verdict"] == "not interpretable" and row["why"].startswith("7 of 12 pairs usable")


def test_a_failed_finetuning_drops_its_pair():
    runs = _runs({"scratch": 0.0, "ofdb": 2.0, "ofdb+fluctuation": 2.0}, seeds=12, noise=0.5)
    runs["final_loss"] = 0.6 + np.random.default_rng(5).normal(0, 0.02, len(runs))
    bad = runs.index[(runs["row"] == "ofdb+fluctuation") & (runs["seed"] == 4)]
    runs.loc[bad, ["final_loss", "top1_last"]] = [1.8, 30.0]  # stopped far short of its siblings
    failed = claims.failed_finetunes(runs)
    assert list(runs.index[failed]) == list(bad)
    row = claims.evaluate(runs).set_index("key").loc["fluctuation_hurts"]
    assert row["n"] == 11 and "1 failed fine-tuning(s) dropped" in row["why"]
    assert row["verdict"] == "inconclusive"  # without the failure there is no effect to find


def test_a_row_below_its_learning_bar_is_not_interpreted():
    runs = _runs({"scratch": 0.0, "ofdb": 5.0})
    pretrain = pd.DataFrame(
        [{"row": "ofdb", "categories": 16, "seed": s, "own_top1": 20.0, "bar": 50.0} for s in range(8)]
    )
    row = claims.evaluate(runs, pretrain=pretrain).set_index("key").loc["ofdb_beats_scratch"]
    assert row["verdict"] == "not interpretable"
    assert "ofdb (16 categories) passed its own-task bar in 0 of 8 seeds (mean 20.0 %)" in row["why"]


def test_trend_claim_over_the_scaling_sweep():
    rng = np.random.default_rng(1)
    scaling = pd.DataFrame(
        [
            {
                "row": "ofdb",
                "categories": c,
                "seed": s,
                "top1_last": 50 + 1.5 * math.log2(c) + rng.normal(0, 0.3),
            }
            for s in range(6)
            for c in (4, 8, 16)
        ]
    )
    row = (
        claims.evaluate(_runs({"scratch": 0.0}), scaling=scaling).set_index("key").loc["more_categories_help"]
    )
    assert row["verdict"] == "agrees" and row["ours"] == pytest.approx(1.5, abs=0.3)


def test_learning_bars():
    assert claims.learning_bar("ofdb+pattern", 16) == claims.OFDB_BAR
    assert claims.learning_bar("fractaldb", 16) == pytest.approx(3 * 100 / 16)
    assert claims.learning_bar("ofdb+fluctuation", 8) == pytest.approx(3 * 100 / 8)
    assert claims.learning_bar("ofdb", 4) == 50.0 and claims.learning_bar("ofdb", 2) == 75.0  # above chance


def test_a_fractaldb_that_did_not_learn_makes_its_claim_not_interpretable():
    runs = _runs({"ofdb+pattern": 5.0, "fractaldb": 1.0})
    pretrain = pd.DataFrame(
        [
            {"row": "ofdb+pattern", "categories": 16, "seed": s, "own_top1": 80.0, "bar": 50.0}
            for s in range(8)
        ]
        + [
            {"row": "fractaldb", "categories": 16, "seed": s, "own_top1": 10.0, "bar": 18.75}
            for s in range(8)
        ]
    )
    row = claims.evaluate(runs, pretrain=pretrain).set_index("key").loc["pattern_noninferior_to_fractaldb"]
    assert row["verdict"] == "not interpretable" and "fractaldb (16 categories) passed" in row["why"]
    pretrain.loc[pretrain["row"] == "fractaldb", "own_top1"] = 30.0  # FractalDB learned: the claim is read
    row = claims.evaluate(runs, pretrain=pretrain).set_index("key").loc["pattern_noninferior_to_fractaldb"]
    assert row["verdict"] == "agrees"


def test_probe_claims_read_the_probe_column():
    runs = _runs({"scratch": 0.0, "ofdb": 4.0, "ofdb+fluctuation": 4.0})
    runs["probe_top1"] = runs["top1_last"]
    df = claims.evaluate(runs, value="probe_top1", claims=claims.PROBE_CLAIMS).set_index("key")
    assert df.loc["probe_ofdb_beats_random", "verdict"] == "agrees" and not df["primary"].any()
    assert df.loc["probe_fluctuation_hurts", "verdict"] == "inconclusive"


def test_one_seed_gives_point_estimates_not_verdicts():
    """At a one-seed profile (paper, paper-21k) each claim's difference is shown as a point
    estimate, labelled so: neither a column of 'inconclusive' nor agreement."""
    runs = _runs({"scratch": 0.0, "ofdb": 5.0, "ofdb+pattern": 4.5, "fractaldb": 4.5}, seeds=1)
    df = claims.evaluate(runs).set_index("key")
    assert set(df["verdict"]) == {claims.POINT_ESTIMATE}
    assert df.loc["ofdb_beats_scratch", "ours"] == pytest.approx(
        runs.loc[runs.row == "ofdb", "top1_last"].iloc[0]
        - runs.loc[runs.row == "scratch", "top1_last"].iloc[0]
    )
    assert all(w.startswith("one seed: a point estimate") for w in df["why"])
    claims.check_consistent(df.reset_index())
