"""The pre-registration: the committed file matches the design the code runs, and only that
design's results are labelled confirmatory; the history keeps every earlier design's verdicts."""

from __future__ import annotations

import json

import pytest

from ofdb_study.analysis import claims, prereg
from ofdb_study.config import get_profile


def test_mini_is_preregistered_for_the_design_it_runs():
    reg = prereg.load("mini")
    assert reg is not None, "mini has no pre-registration"
    assert reg["design_digest"] == prereg.design_digest("mini"), (
        "the mini design changed after its pre-registration: register the new design on fresh seeds"
    )
    assert reg["seeds"] == sorted(get_profile("mini").study.seeds)
    assert len(reg["seeds"]) >= 12
    keys = {c["key"] for c in reg["claims"]}
    assert {c.key for c in prereg.tested_primaries("mini")} <= keys
    assert len(prereg.tested_primaries("mini")) >= 3
    assert reg["power"]["pairs"] == len(reg["seeds"]) and reg["power"]["effect_points"] > 0


def test_confirmatory_only_for_the_registered_design_and_seeds(monkeypatch):
    seeds = sorted(get_profile("mini").study.seeds)
    assert prereg.status("mini", seeds)[0] == "confirmatory"
    assert prereg.status("mini", seeds[:-1])[0] == "exploratory"
    assert prereg.status("smoke", [0]) == ("exploratory", "the smoke profile has no pre-registration")
    monkeypatch.setattr(claims, "MIN_PAIRS_FRACTION", 0.5)  # a rule changed after the fact
    status, why = prereg.status("mini", seeds)
    assert status == "exploratory" and "differs" in why


def test_the_digest_covers_the_claims_the_rules_and_the_configs(monkeypatch):
    base = prereg.design_digest("mini")
    monkeypatch.setattr(claims, "FAILED_LOSS_MADS", 4.0)
    assert prereg.design_digest("mini") != base
    monkeypatch.undo()
    assert prereg.design_digest("mini") == base
    assert prereg.design_digest("smoke") != base


def test_a_new_design_cannot_reuse_the_registered_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(prereg, "FOLDER", tmp_path)
    power = prereg.power_statement(3.0, 12, "a test")
    path = prereg.write("smoke", list(range(12)), power, "2026-12-06")
    assert json.loads(path.read_text())["design_digest"] == prereg.design_digest("smoke")
    monkeypatch.setattr(claims, "ALPHA", 0.1)
    with pytest.raises(ValueError, match="fresh seeds"):
        prereg.write("smoke", [0, 1], power, "2026-12-06")
    prereg.write("smoke", list(range(100, 112)), power, "2026-12-06")


def test_power_statement_is_prospective_and_in_sd_units():
    p = prereg.power_statement(2.0, 12, "pilot")
    assert p["hypotheses"] == 8 and p["effect_points"] == pytest.approx(2.0 * p["effect_in_sd"], abs=0.01)
    assert prereg.power_statement(2.0, 24, "pilot")["effect_points"] < p["effect_points"]


def test_the_holm_family_of_the_power_statement_is_the_plans():
    # mini runs no FractalDB row: its non-inferiority claim is not in the family
    keys = {c.key for c in prereg.tested_primaries("mini")}
    assert "pattern_noninferior_to_fractaldb" not in keys and "ofdb_beats_scratch" in keys
    assert prereg.power_statement(2.0, 12, "pilot", "mini")["hypotheses"] == 2 * len(keys)
    assert len(prereg.tested_primaries("smoke")) == len(prereg.tested_primaries())
    reg = prereg.load("mini")
    assert reg["power"]["hypotheses"] == 2 * len(keys)
    assert not {c["key"] for c in reg["claims"]} & {"pattern_noninferior_to_fractaldb"}


def test_history_keeps_every_earlier_design():
    hist = prereg.history()
    assert [h["seeds"] for h in hist] == [
        "0, 1, 2, 3, 4, 5",
        "6, 7, 8, 9, 10, 11",
        "12, 13, 14, 15, 16, 17",
        ", ".join(str(s) for s in range(18, 30)),
        ", ".join(str(s) for s in range(30, 42)),
    ]
    used = {int(s) for h in hist for s in h["seeds"].split(", ")}
    assert not used & set(get_profile("mini").study.seeds), "the current design must run on fresh seeds"
    for h in hist:
        assert {c.key for c in claims.CLAIMS if c.primary} <= set(h)
