"""The readout study: subsets, mimetic init, the gate, the interaction claim, the pre-registration
that covers the code, and the smoke-readout profile end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ofdb_study.analysis import claims, prereg, readout
from ofdb_study.config import get_profile
from ofdb_study.study import readouts


def test_subsets_never_hold_the_control_pool_and_do_not_depend_on_the_draw_count():
    labels = np.repeat(np.arange(10), 40)
    split = readouts.draw_indices(labels, pool_per_class=5, per_class=3, draws=4, seed=7)
    assert len(split.pool) == 50 and all(np.bincount(labels[split.pool]) == 5)
    for idx in split.draws:
        assert not set(idx) & set(split.pool)
        assert all(np.bincount(labels[idx], minlength=10) == 3)
    fewer = readouts.draw_indices(labels, 5, 3, 2, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(fewer.draws, split.draws))
    other = readouts.draw_indices(labels, 5, 3, 2, seed=8)
    assert not np.array_equal(other.draws[0], split.draws[0])
    assert np.array_equal(other.pool, split.pool), "the control pool is one fixed draw for every seed"


def test_a_pool_larger_than_a_class_is_refused_naming_the_setting():
    from ofdb_study.errors import ParamError

    with pytest.raises(ParamError, match="control_pool_per_class"):
        readouts.control_pool(np.repeat(np.arange(3), 4), 4)


def test_mimetic_init_sets_the_attention_products_it_promises():
    import torch

    from ofdb_study.config import phase_config
    from ofdb_study.train.models import MIMETIC_QK, MIMETIC_VPROJ, create_model, mimetic_init_

    cfg = phase_config("mini", "finetune")
    model = create_model(cfg, 10)
    mimetic_init_(model, 3)
    attn = model.blocks[0].attn
    d, heads = attn.qkv.in_features, attn.num_heads
    k = d // heads
    w = attn.qkv.weight.detach().double()
    eye = torch.eye(d, dtype=torch.float64)
    # the value-projection product is alpha Z - beta I: its diagonal is near -beta, its spread alpha
    vp = w[2 * d :].T @ attn.proj.weight.detach().double().T
    assert float(vp.diagonal().mean()) == pytest.approx(-MIMETIC_VPROJ[1], abs=0.1)
    off = vp - torch.diag(vp.diagonal())
    assert float(off.std()) == pytest.approx(MIMETIC_VPROJ[0] / math.sqrt(d), rel=0.25)
    # each head's query-key form is a rank-k matrix leaning to +identity
    for h in range(heads):
        qk = w[h * k : (h + 1) * k].T @ w[d + h * k : d + (h + 1) * k]
        assert torch.linalg.matrix_rank(qk) <= k
        assert float((qk * eye).sum()) > 0 and float(qk.diagonal().mean()) < MIMETIC_QK[1]
    again = create_model(cfg, 10)
    mimetic_init_(again, 3)
    assert torch.equal(again.blocks[0].attn.qkv.weight, attn.qkv.weight), "the same seed, the same weights"


def _values(effects: dict[str, float], seeds=range(6), noise=0.3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        dict(arm=a, seed=s, top1=60.0 + e + float(rng.normal(0, noise)))
        for a, e in effects.items()
        for s in seeds
    ]
    return pd.DataFrame(rows)


def test_the_gate_passes_only_over_the_best_free_alternative():
    free = {
        "random": 0.0,
        "mimetic": 0.5,
        "pixels-probe": 2.0,
        "pixels-1nn": -5,
        "pca-probe": 1,
        "randproj-probe": 1.5,
    }
    g = readout.gate(_values({**free, "supervised": 6.0, "ofdb+aug": 5.0}))
    assert set(g["against"]) == {"pixels-probe"}
    assert g.attrs["passed"] and g["passed"].all()
    # beating random init by 2.5 points is no pass when the pixels are 2 points above it
    g = readout.gate(_values({**free, "supervised": 6.0, "ofdb+aug": 2.5}))
    assert not g.attrs["passed"]
    assert g.set_index("arm").loc["ofdb+aug", "passed"] == False  # noqa: E712
    text = readout.gate_statement(g, "mini")
    assert text.startswith("**The assay gate failed**") and "no claims" in text
    assert readout.gate(_values({**free, "supervised": 6.0})).attrs["passed"] is False, "an unread arm fails"


def test_the_interaction_claim_reads_the_difference_of_differences():
    claim = claims.by_key("instances_matter_less_with_aug")
    effects = {"ofdb": 0.0, "ofdb+fluctuation": 3.0, "ofdb+aug": 2.0, "ofdb+fluctuation+aug": 2.5}
    values = _values(effects, seeds=range(8), noise=0.2)
    ev = claims.evaluate(
        readout.claim_runs(values).rename(columns={"top1": "value"}), value="value", claims=(claim,)
    )
    r = ev.iloc[0]
    assert r["ours"] == pytest.approx(3.0 - 0.5, abs=0.5)
    assert r["verdict"] == "agrees" and r["low"] > 0
    shown = readout.claims_for_people(ev, gate_passed=False)
    assert shown["verdict"].iloc[0].startswith("not read: the gate failed")
    assert not shown.isna().any().any()


def test_the_design_digest_covers_the_code(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 1\n")
    before = prereg.code_digest([a, b], tmp_path)
    assert prereg.code_digest([a, b], tmp_path) == before
    a.write_text("x = 2\n")
    assert prereg.code_digest([a, b], tmp_path) != before
    a.write_text("x = 1\n")
    b.rename(tmp_path / "c.py")
    assert prereg.code_digest([a, tmp_path / "c.py"], tmp_path) != before, "a renamed file is another design"


def test_the_mini_design_covers_its_code_and_rows():
    d = prereg.design("mini")
    assert d["code"] == prereg.code_digest()
    assert set(d["rows"]) == set(get_profile("mini").study.rows)
    files = {f.relative_to(prereg.code_files()[0].parents[2]).as_posix() for f in prereg.code_files()}
    for must in (
        "ofdb_study/train/engine.py",
        "ofdb_study/study/readouts.py",
        "ofdb_study/analysis/claims.py",
        "ofdb_study/fractals/render.py",
        "requirements.txt",
    ):
        assert must in files


def test_runs_started_before_the_registration_are_not_confirmatory(tmp_path):
    class Spec:
        def __init__(self, name, started):
            self.path = tmp_path / name
            self.path.mkdir()
            self.label = name
            doc = {} if started is None else {"started": started}
            (self.path / "manifest.json").write_text(json.dumps(doc))

    specs = [
        Spec("early", "2026-12-07T10:00:00Z"),
        Spec("late", "2026-12-08T10:00:00Z"),
        Spec("unknown", None),
    ]
    assert prereg.runs_before(specs, "2026-12-08T00:00:00Z") == ["early", "unknown"]


def test_the_design_history_is_generated_from_the_records_and_the_seeds_are_fresh():
    hist = prereg.history("mini")
    assert [d["design"] for d in hist] == list(range(1, len(hist) + 1)) and len(hist) >= 6
    used = {s for d in hist for s in d["seeds"]}
    assert not used & set(get_profile("mini").study.seeds), "the current design runs on fresh seeds"
    table = prereg.history_table("mini")
    assert not table.isna().any().any() and len(table) == len(hist)
    six = next(d for d in hist if d["design"] == 6)
    assert "excludes a benefit above +0.81" in six["verdicts"]["ofdb_beats_scratch"]


def test_write_readout_refuses_seeds_an_earlier_design_used(tmp_path, monkeypatch):
    monkeypatch.setattr(prereg, "FOLDER", tmp_path)
    monkeypatch.setattr(prereg, "path_of", lambda p: tmp_path / f"{p}.json")
    with pytest.raises(ValueError, match="earlier design"):
        prereg.write_readout("mini", [42, 200], tmp_path / "pilot.json", "2026-12-08T00:00:00Z")
