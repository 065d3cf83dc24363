"""The pre-registration: the committed file matches the design the code runs, and only that
design's results are labelled confirmatory; the history keeps every earlier design's verdicts."""

from __future__ import annotations

import json

import pytest

from ofdb_study.analysis import claims, prereg
from ofdb_study.config import get_profile


def test_mini_registration_is_for_its_plan_and_seeds():
    reg = prereg.load("mini")
    if reg is None:  # registered by hand when a design is fixed; the book then says exploratory
        assert prereg.status("mini", list(get_profile("mini").study.seeds))[0] == "exploratory"
        return
    assert reg["seeds"] == sorted(get_profile("mini").study.seeds)
    assert {c["key"] for c in reg["claims"]} == {c.key for c in claims.READOUT_CLAIMS}
    assert reg["endpoint"] == get_profile("mini").study.primary_readout
    assert reg["pilot"]["claims"] and reg["power"]["pairs"] == len(reg["seeds"])
    assert not {s for d in prereg.history("mini") for s in d["seeds"]} & set(reg["seeds"])


def test_confirmatory_only_for_the_registered_design_and_seeds(monkeypatch, tmp_path):
    seeds = sorted(get_profile("mini").study.seeds)
    digest = prereg.design_digest("mini")
    reg = {"design_digest": digest, "seeds": seeds, "registered": "2026-12-08T00:00:00Z"}
    monkeypatch.setattr(prereg, "load", lambda profile: reg if profile == "mini" else None)
    assert prereg.status("mini", seeds)[0] == "confirmatory"
    assert prereg.status("mini", seeds[:-1])[0] == "exploratory"
    assert prereg.status("smoke", [0]) == ("exploratory", "the smoke profile has no pre-registration")
    monkeypatch.setattr(claims, "MIN_PAIRS_FRACTION", 0.5)  # a rule changed after the fact
    status, why = prereg.status("mini", seeds)
    assert status == "exploratory" and "differs" in why
    monkeypatch.undo()
    monkeypatch.setattr(prereg, "load", lambda profile: reg if profile == "mini" else None)
    monkeypatch.setattr(prereg, "code_digest", lambda *a, **k: "other code")
    assert prereg.status("mini", seeds)[0] == "exploratory", "a change to the code is another design"


def test_the_digest_covers_the_claims_the_rules_and_the_configs(monkeypatch):
    from ofdb_study.analysis import readout

    base = prereg.design_digest("mini")
    monkeypatch.setattr(claims, "MIN_PAIRS_FRACTION", 0.5)
    assert prereg.design_digest("mini") != base
    monkeypatch.undo()
    monkeypatch.setattr(readout, "GATE_MARGIN", 0.5)
    assert prereg.design_digest("mini") != base, "the assay gate is part of the design"
    monkeypatch.undo()
    assert prereg.design_digest("mini") == base
    smoke = prereg.design_digest("smoke")
    assert smoke != base
    monkeypatch.setattr(claims, "FAILED_LOSS_MADS", 4.0)
    assert prereg.design_digest("smoke") != smoke, "a fine-tuning study's failed-run rule"


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
    keys = {c.key for c in prereg.tested_primaries("paper-short")}
    assert prereg.power_statement(2.0, 12, "pilot", "paper-short")["hypotheses"] == 2 * len(keys)
    assert len(prereg.tested_primaries("smoke")) == len(prereg.tested_primaries())
    power = prereg.readout_power(
        {
            "aug_noninferior_to_instances": {"mean": -0.5, "sd": 1.0},
            "aug_helps_ofdb": {"mean": 3.0, "sd": 1.0},
        },
        8,
        "mini",
    )
    assert power["hypotheses"] == 4 and power["claims"]["aug_helps_ofdb"]["expected"] == "decidable"
    assert power["claims"]["aug_noninferior_to_instances"]["expected"] == "read by its bound only"
