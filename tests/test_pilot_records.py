"""The fine-tuning length pilots' records: merged by setting, and the plateau rule."""

import json

import pytest

from ofdb_study.analysis import pilots, prereg
from ofdb_study.config import get_profile


def _record(path, steps_top1, overrides=None, command="c", arm_lead=1.0):
    rows = []
    for steps, (top1, loss) in steps_top1.items():
        for seed in (100, 101):
            rows.append(
                {"arm": "scratch", "seed": seed, "steps": steps, "top1": top1 + seed % 2, "final_loss": loss}
            )
            rows.append(
                {"arm": "ofdb", "seed": seed, "steps": steps, "top1": top1 + arm_lead, "final_loss": loss}
            )
    doc = {
        "command": command,
        "machine": "m",
        "measured": "2026-12-07",
        "wall_seconds": 60.0,
        "overrides": overrides or {},
        "finetune": rows,
    }
    path.write_text(json.dumps(doc))
    return path


def test_records_of_one_setting_merge_into_one_curve(tmp_path):
    prof = get_profile("mini")
    same = {"opt": prof.finetune.opt, "base_lr": prof.finetune.base_lr}  # equal to the recipe: no change
    a = _record(tmp_path / "finetune-mini.json", {300: (65.0, 1.2), 600: (70.0, 1.0)}, same, "short")
    b = _record(tmp_path / "finetune-mini-long.json", {1200: (73.0, 0.9), 2400: (73.2, 0.88)}, None, "long")
    other = _record(tmp_path / "finetune-mini-sgd.json", {600: (60.0, 1.3)}, {"opt": "sgd"}, "sgd")
    merged = pilots.merge_finetune([a, b, other], prof.finetune, prof.pretrain)
    assert len(merged) == 2
    main = next(m for m in merged if not m["changed"])
    assert sorted({r["steps"] for r in main["finetune"]}) == [300, 600, 1200, 2400]
    assert set(main["commands"]) == {"short", "long"}
    assert main["wall_seconds"] == 120.0
    sgd = next(m for m in merged if m["changed"])
    assert sgd["changed"] == {"opt": "sgd"}


def test_the_plateau_rule_reads_the_last_doubling():
    def doc(steps_top1):
        return {
            "finetune": [
                {"arm": "scratch", "seed": s, "steps": n, "top1": t, "final_loss": loss}
                for n, (t, loss) in steps_top1.items()
                for s in (1, 2)
            ]
        }

    flat = pilots.plateau(doc({1200: (73.0, 0.90), 2400: (73.3, 0.88)}))
    assert flat["reached"] is True
    assert flat["last_gain"] == pytest.approx(0.3)
    assert (flat["from_steps"], flat["to_steps"]) == (1200, 2400)
    rising = pilots.plateau(doc({600: (71.0, 1.05), 1200: (74.0, 0.90)}))
    assert rising["reached"] is False and rising["last_gain"] == pytest.approx(3.0)
    loss_still_falling = pilots.plateau(doc({1200: (73.0, 0.90), 2400: (73.1, 0.70)}))
    assert loss_still_falling["reached"] is False
    assert pilots.plateau(doc({600: (71.0, 1.0)}))["reached"] is None


def test_the_lead_is_paired_by_seed_at_each_length(tmp_path):
    prof = get_profile("mini")
    path = _record(tmp_path / "finetune-mini.json", {600: (70.0, 1.0), 1200: (73.0, 0.9)}, arm_lead=1.0)
    (doc,) = pilots.merge_finetune([path], prof.finetune, prof.pretrain)
    lead = pilots.lead(doc)
    # seed 101's scratch is one point higher than seed 100's, OFDB is not: leads 1.0 and 0.0
    assert lead.to_dict() == {600: 0.5, 1200: 0.5}
    assert pilots.lead(doc, "ofdb", "fractaldb").empty


def test_a_record_is_compared_with_the_profile_as_it_is_now(tmp_path):
    prof = get_profile("mini")
    then = pilots.profile_settings(prof)
    # a record made when the profile was one block deeper, with crops the command turned off
    then["finetune"]["depth"] = prof.finetune.depth + 1
    then["pretrain"]["depth"] = prof.pretrain.depth + 1
    path = _record(tmp_path / "finetune-mini-old.json", {600: (70.0, 1.0)}, {"scale": [1.0, 1.0]})
    doc = json.loads(path.read_text())
    doc["profile_settings"] = then
    doc["pretrain_overrides"] = {}
    path.write_text(json.dumps(doc))
    (merged,) = pilots.merge_finetune([path], prof.finetune, prof.pretrain)
    expected = {"depth": prof.finetune.depth + 1}
    if list(prof.finetune.scale) != [1.0, 1.0]:
        expected["scale"] = [1.0, 1.0]
    assert merged["changed"] == expected
    assert merged["pretrain_changed"] == {"depth": prof.pretrain.depth + 1}
    # the per-run settings (length, seed, rows) are the pilot's own, never a change
    then["finetune"]["steps"] = 12_345
    assert "steps" not in pilots.settings_changed(then["finetune"], None, prof.finetune)
    # a setting a result_dict leaves out at its default is compared at that default
    ran = dict(prof.finetune.result_dict())
    ran.pop("pipeline", None)
    assert pilots.settings_changed(ran, {"pipeline": "auto"}, prof.finetune.replace(pipeline="auto")) == {}


def test_a_profile_pilot_record_names_its_pretraining_changes():
    prof = get_profile("mini")
    doc = {
        "profile_settings": {"pretrain": {**prof.pretrain.result_dict(), "hflip": 0.0}},
        "overrides": {"hflip": 0.5},
        "finetune": None,
    }
    assert pilots.record_changed(doc, "pretrain", prof.pretrain) == {"hflip": 0.5}
    # without recorded settings only the overrides are compared
    assert (
        pilots.record_changed({"overrides": {"hflip": prof.pretrain.hflip}}, "pretrain", prof.pretrain) == {}
    )


def test_every_kept_pilot_record_has_the_settings_it_ran_with():
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "book" / "pilot"
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        assert set(doc["profile_settings"]) == {"pretrain", "finetune"}, path.name
        assert doc["profile_settings"]["finetune"]["phase"] == "finetune", path.name


def test_the_finetune_pilot_writes_a_record_the_book_merges(tmp_path, fashion):
    """``benchmarks/finetune_pilot.py`` at smoke: one pilot seed, two lengths, both arms; its
    record carries the profile's settings and merges as the profile's own curve."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "finetune_pilot.py"
    out = tmp_path / "finetune-smoke.json"
    argv = [sys.executable, str(script), "--profile", "smoke", "--seeds", "100", "--steps", "2", "4"]
    done = subprocess.run(
        [*argv, "--set", f"data_root={fashion}", "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert sorted((r["arm"], r["steps"]) for r in doc["finetune"]) == [
        ("ofdb", 2),
        ("ofdb", 4),
        ("scratch", 2),
        ("scratch", 4),
    ]
    assert all(0 <= r["top1"] <= 100 and r["final_loss"] > 0 for r in doc["finetune"])
    prof = get_profile("smoke")
    assert doc["profile_settings"] == pilots.profile_settings(prof)
    assert doc["registered_design"] == prereg.registered_design("smoke")
    (merged,) = pilots.merge_finetune([out], prof.finetune, prof.pretrain)
    assert merged["registered_designs"] == [doc["registered_design"]]
    assert pilots.measured_after(merged, prereg.registered_design("smoke")) == [
        doc["registered_design"] is not None
    ]
    assert (
        merged["changed"] == {} and merged["pretrain_changed"] == {}
    )  # data_root is not a setting of the key
    assert "--seeds 100" in doc["command"]
    refused = subprocess.run([*argv[:4], "--seeds", "0"], capture_output=True, text=True)  # the study's seed
    assert refused.returncode == 2 and "--seeds" in refused.stderr.strip().splitlines()[-1]


def test_the_label_smoothing_floor():
    assert pilots.loss_floor(10, 0.1) == pytest.approx(0.5003, abs=1e-4)
    assert pilots.loss_floor(10, 0.0) == 0.0
    assert pilots.loss_floor(100, 0.1) > pilots.loss_floor(10, 0.1)


def test_the_plateau_rule_judges_a_given_length_against_the_next():
    runs = [
        {"arm": "scratch", "seed": s, "steps": n, "top1": t + s, "final_loss": loss}
        for n, (t, loss) in {800: (70.0, 0.60), 1600: (70.2, 0.51), 3200: (71.5, 0.50)}.items()
        for s in (1, 2, 3)
    ]
    doc = {"finetune": runs}
    at_800 = pilots.plateau(doc, at=800)
    assert (at_800["from_steps"], at_800["to_steps"], at_800["pairs"]) == (800, 1600, 3)
    assert at_800["last_gain"] == pytest.approx(0.2) and at_800["gain_sd"] == pytest.approx(0.0)
    assert at_800["reached"] is False  # the loss fell 0.09 nats
    at_1600 = pilots.plateau(doc, at=1600)
    assert at_1600["last_gain"] == pytest.approx(1.3) and at_1600["reached"] is False
    assert pilots.plateau(doc, at=3200)["reached"] is None  # nothing longer was run
    assert pilots.plateau(doc, at=1000)["reached"] is None  # a length the pilot did not run


def test_a_pilot_keeps_the_registration_in_force_only_for_the_registered_design(monkeypatch):
    reg = {"design_digest": prereg.design_digest("mini"), "registered": "2026-12-08T00:00:00Z", "seeds": []}
    monkeypatch.setattr(prereg, "load", lambda profile: reg)
    assert prereg.registered_design("mini") == {
        "design_digest": reg["design_digest"],
        "registered": reg["registered"],
    }
    monkeypatch.setattr(prereg, "design_digest", lambda profile: "0" * 64)  # the design changed since
    assert prereg.registered_design("mini") is None
    monkeypatch.setattr(prereg, "load", lambda profile: None)  # no registration at all
    assert prereg.registered_design("mini") is None


def test_a_record_counts_as_measured_after_only_under_the_registration_in_force():
    now = {"design_digest": "a" * 64, "registered": "2026-12-07"}
    doc = {"registered_designs": [None, {"design_digest": "b" * 64, "registered": "2026-12-06"}, now]}
    assert pilots.measured_after(doc, now) == [False, False, True]
    assert pilots.measured_after(doc, None) == [False, False, False]
