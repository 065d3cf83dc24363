"""The last deviations from the public code, closed per profile: weight decay on pos_embed and
cls_token, the autocast precision (fp16 with a gradient scaler), and claims that cite the table of
their profile. mini and smoke keep their keys when a setting is added at its default."""

from __future__ import annotations

import pytest

from ofdb_study.analysis import claims, paper
from ofdb_study.config import KEYED_UNLESS_DEFAULT, PRECISIONS, PROFILES, TrainConfig, phase_config, resolve
from ofdb_study.errors import ParamError

# The keys of mini's and smoke's current designs with every later setting at its default (run
# folders are named by them).
KEYS_BEFORE = {
    ("smoke", "pretrain"): "5e64032531e8",
    ("smoke", "finetune"): "89c6adfcff09",
    ("mini", "pretrain"): "00922d2460ef",
    ("mini", "finetune"): "9c6557a76b9b",
}


@pytest.mark.parametrize(("profile", "phase"), list(KEYS_BEFORE))
def test_new_settings_keep_the_keys_of_configs_at_their_defaults(profile, phase):
    cfg = PROFILES[profile].recipe(phase).cfg
    assert cfg.digest()[:12] == KEYS_BEFORE[profile, phase]
    doc = cfg.result_dict()
    assert not set(KEYED_UNLESS_DEFAULT) & set(doc)
    for key, default in KEYED_UNLESS_DEFAULT.items():
        assert getattr(TrainConfig(), key) == default
    # a value other than the default is part of the key
    assert cfg.replace(precision="fp16").digest() != cfg.digest()
    assert cfg.replace(decay_embed_tokens=True).digest() != cfg.digest()


def test_public_profiles_follow_the_public_main_py():
    for name in ("paper", "paper-short", "paper-21k"):
        pre = PROFILES[name].pretrain_recipe
        assert pre.cfg.decay_embed_tokens is True and pre.cfg.precision == "fp16"
        assert pre.cites["decay_embed_tokens"].source.startswith("inferred:")
        assert "DDP-wrapped" in pre.cites["decay_embed_tokens"].source
        assert "NativeScaler" in pre.cites["precision"].source
    # the CIFAR fine-tuning runs the same main.py; ImageNet-1k's follows the CVPR 2022 finetune.py
    assert PROFILES["paper"].finetune.precision == "fp16" and PROFILES["paper"].finetune.decay_embed_tokens
    ft21 = PROFILES["paper-21k"].finetune_recipe
    assert ft21.cfg.precision == "fp32" and ft21.cfg.decay_embed_tokens is False
    assert "--amp" in ft21.cites["precision"].source
    for name in ("mini", "smoke"):
        for phase in ("pretrain", "finetune"):
            rec = PROFILES[name].recipe(phase)
            assert (rec.cfg.precision, rec.cfg.decay_embed_tokens) == ("bf16", False)
            assert rec.cites["precision"].public == "fp16" and rec.cites["decay_embed_tokens"].public is True


def _decay_of(cfg) -> dict[str, float]:
    torch = pytest.importorskip("torch")
    from ofdb_study.train import engine, models

    torch.manual_seed(0)
    model = models.create_model(cfg, 10)
    optimizer, *_ = engine.build_optimization(model, cfg, resolve(cfg), 10)
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            out[names[id(p)]] = group["weight_decay"]
    assert len(out) == len(names)  # every parameter is optimised once
    return out


TINY = dict(depth=1, embed_dim=32, num_heads=2, img_size=32)


def test_paper_decays_pos_embed_and_cls_token_and_mini_does_not():
    paper_decay = _decay_of(phase_config("paper", "pretrain", **TINY))
    assert paper_decay["pos_embed"] == paper_decay["cls_token"] == 0.05
    # 1-D parameters stay undecayed, as timm's factory leaves them on the public DDP model
    assert paper_decay["blocks.0.norm1.weight"] == paper_decay["head.bias"] == 0.0
    assert paper_decay["blocks.0.attn.qkv.weight"] == 0.05
    mini = phase_config("mini", "pretrain", **TINY)
    mini_decay = _decay_of(mini.replace(global_pool="token"))  # a class token to look at
    assert mini_decay["pos_embed"] == mini_decay["cls_token"] == 0.0
    assert mini_decay["blocks.0.attn.qkv.weight"] == 0.05
    # SGD fine-tuning at paper: its weight decay, on the embeddings too
    ft = _decay_of(phase_config("paper", "finetune", **TINY))
    assert ft["pos_embed"] == ft["cls_token"] == 1e-4


def test_precision_is_checked():
    pytest.importorskip("torch")
    from ofdb_study.train import engine

    assert PRECISIONS == ("bf16", "fp16", "fp32")
    for bad in ("fp8", "half", ""):
        with pytest.raises(ParamError) as info:
            engine.check_config(phase_config("smoke", "pretrain", precision=bad))
        assert info.value.param == "precision"
    with pytest.raises(ParamError) as info:
        engine.check_config(phase_config("smoke", "pretrain", decay_embed_tokens="yes"))
    assert info.value.param == "decay_embed_tokens"
    for ok in PRECISIONS:
        engine.check_config(phase_config("smoke", "pretrain", precision=ok))


def test_autocast_and_scaler_follow_the_precision():
    torch = pytest.importorskip("torch")
    from ofdb_study.train import engine

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for p in PRECISIONS:  # the CPU runs fp32 whatever the profile says
        assert engine._autocast(cpu, p).fast_dtype is not None  # an autocast object ...
        with engine._autocast(cpu, p):
            assert not torch.is_autocast_enabled("cpu")  # ... that is off
    assert engine.AUTOCAST_DTYPES == {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
    fp16 = phase_config("paper", "pretrain", **TINY)
    assert engine.build_scaler(fp16, cpu) is None
    if torch.cuda.is_available():
        assert isinstance(engine.build_scaler(fp16, cuda), torch.amp.GradScaler)
    assert engine.build_scaler(fp16.replace(precision="bf16"), cuda) is None
    assert engine.build_scaler(fp16.replace(precision="fp32"), cuda) is None


def test_a_disabled_scaler_steps_exactly_like_no_scaler():
    torch = pytest.importorskip("torch")
    from ofdb_study.train import engine, models

    cfg = phase_config("smoke", "pretrain", mixup=0.8, cutmix=1.0)
    x = torch.randn(8, 3, cfg.img_size, cfg.img_size, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8) % 4
    weights = []
    for scaler in (None, torch.amp.GradScaler("cpu", enabled=False)):
        torch.manual_seed(0)
        model = models.create_model(cfg, 4)
        optimizer, scheduler, mixup, criterion = engine.build_optimization(model, cfg, resolve(cfg), 4)
        for step in range(2):
            loss = engine.train_step(
                step,
                x.clone(),  # Mixup mixes the batch in place
                y,
                net=model,
                optimizer=optimizer,
                scheduler=scheduler,
                mixup=mixup,
                criterion=criterion,
                cfg=cfg,
                num_classes=4,
                device=torch.device("cpu"),
                scaler=scaler,
            )
            assert torch.isfinite(loss)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


# ---- claims that know their profile ------------------------------------------------------------
def test_claims_cite_the_table_of_their_profile():
    for name in ("mini", "paper", "paper-short", "smoke"):
        cited = claims.for_profile(claims.CLAIMS, name)
        assert [(c.paper, c.paper_delta) for c in cited] == [(c.paper, c.paper_delta) for c in claims.CLAIMS]
    at21k = {c.key: c for c in claims.for_profile(claims.CLAIMS + claims.PROBE_CLAIMS, "paper-21k")}
    first = at21k["ofdb_beats_scratch"]
    t3 = paper.table3().set_index("pretrain")["vit_b"]
    assert "Table 3" in first.paper and "ImageNet-1k" in first.paper and "ViT-B" in first.paper
    assert "Table 2" not in first.paper and "CIFAR-100 column" not in first.paper
    assert f"{t3['2D-OFDB-21k']:.1f}" in first.paper and f"{t3['scratch']:.1f}" in first.paper
    assert first.paper_delta == pytest.approx(t3["2D-OFDB-21k"] - t3["scratch"])
    pattern = at21k["pattern_noninferior_to_fractaldb"]
    assert "FractalDB-21k" in pattern.paper and pattern.paper_delta == pytest.approx(
        t3["2D-OFDB-21k"] - t3["FractalDB-21k"]
    )
    assert "Table 3" in at21k["probe_ofdb_beats_random"].paper
    # Table 1 exists only on CIFAR-100: the claims say so at paper-21k
    assert "CIFAR-100 after OFDB-1k" in at21k["fluctuation_hurts"].paper
    assert all("Table 2" not in c.paper for c in at21k.values())


def test_claim_citations_are_read_from_the_tables():
    t2 = paper.table2().set_index("pretrain")
    first = claims.by_key("ofdb_beats_scratch")
    assert first.paper == (
        f"Table 2, CIFAR-100 column: 2D-OFDB-1k {t2.loc['2D-OFDB-1k', 'C100']:.1f} against scratch "
        f"{t2.loc['scratch', 'C100']:.1f}"
    )
    assert first.paper_delta == pytest.approx(t2.loc["2D-OFDB-1k", "C100"] - t2.loc["scratch", "C100"])
    flu = claims.by_key("fluctuation_hurts")
    t1 = paper.table1().set_index("augment")["ofdb2d"]
    assert flu.paper_delta == pytest.approx(t1["default"] - t1["fluctuation"])
    on_c10 = {c.key: c for c in claims.for_table(claims.CLAIMS, "table2", "C10")}
    assert "CIFAR-10 column" in on_c10["ofdb_beats_scratch"].paper
    with pytest.raises(ParamError):
        claims.evidence("ofdb_beats_scratch", "table2", "vit_b")
    with pytest.raises(ParamError):
        claims.evidence("no_such_claim")


def test_profile_changes_only_the_evidence():
    pd = pytest.importorskip("pandas")
    fields = ("key", "test", "a", "b", "margin", "primary", "text")
    for c, d in zip(claims.CLAIMS, claims.for_profile(claims.CLAIMS, "paper-21k")):
        assert tuple(getattr(c, f) for f in fields) == tuple(getattr(d, f) for f in fields)
    rows = [
        {"row": r, "seed": s, "top1_last": 50.0 + (3.0 if r == "ofdb" else 0.0) + 0.1 * s, "final_loss": 1.0}
        for r in ("ofdb", "scratch")
        for s in range(4)
    ]
    runs = pd.DataFrame(rows)
    plain = claims.evaluate(runs).set_index("key")
    at21k = claims.evaluate(runs, profile="paper-21k").set_index("key")
    assert "Table 2" in plain.loc["ofdb_beats_scratch", "paper"]
    assert "Table 3" in at21k.loc["ofdb_beats_scratch", "paper"]
    same = [c for c in plain.columns if c not in ("paper", "paper_delta")]
    pd.testing.assert_frame_equal(plain[same], at21k[same])
