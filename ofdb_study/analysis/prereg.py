"""The pre-registration of a profile's study, and the history of its earlier designs.

A pre-registration (``preregistration/<profile>.json``, committed before the confirmatory runs)
fixes the claims, tests, margins, rules for failed runs and learning gates, the seeds, the
prospective power statement, and the digest of the design it was written for
(``design_digest``). The study labels its results *confirmatory* only when the design it ran has
that digest and those seeds (``status``); any other design is *exploratory*, whatever its
verdicts. A design changed after its results were seen gets a new pre-registration with fresh
seeds; the earlier design's verdicts stay in ``preregistration/history.json``, which the book
shows beside the current ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from ..config import get_profile
from . import claims

FOLDER = Path(__file__).resolve().parent / "preregistration"
HISTORY = FOLDER / "history.json"


def design(profile: str) -> dict:
    """Everything that decides what a profile's study measures and how it is judged, as data.

    The resolved configs of both phases (their digests), the study plan without its seeds, the
    claims (rows, tests, margins, primary or not), the rules (level, failed-run rule, learning gates,
    the share of pairs a claim needs), the held-out task of the one-image rows and the baselines.
    """
    from ..study.baselines import PROBE_ROWS, RAW_PIXEL_METHODS
    from ..train.pretrain_data import HELD_OUT_CROP

    prof = get_profile(profile)
    plan = {k: v for k, v in dataclasses.asdict(prof.study).items() if k not in ("seeds", "workers")}
    return {
        "profile": profile,
        "pretrain": prof.pretrain.digest(),
        "finetune": prof.finetune.digest(),
        "plan": plan,
        "claims": [
            {"key": c.key, "test": c.test, "a": c.a, "b": c.b, "margin": c.margin, "primary": c.primary}
            for c in claims.CLAIMS
        ],
        "rules": {
            "alpha": claims.ALPHA,
            "holm_family": "both directions of every tested primary claim",
            "failed_loss_mads": claims.FAILED_LOSS_MADS,
            "failed_loss_min": claims.FAILED_LOSS_MIN,
            "min_pairs_fraction": claims.MIN_PAIRS_FRACTION,
            "ofdb_bar": claims.OFDB_BAR,
            "varied_bar_chance_multiple": claims.FRACTALDB_CHANCE_MULTIPLE,
            "held_out_crop": list(HELD_OUT_CROP),
        },
        "endpoint": "top1_last",
        "secondary_endpoint": "probe_top1",
        "baselines": list(RAW_PIXEL_METHODS),
        "probe_rows": list(PROBE_ROWS),
    }


def design_digest(profile: str) -> str:
    """sha256 of ``design(profile)`` as canonical JSON."""
    text = json.dumps(design(profile), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def path_of(profile: str) -> Path:
    return FOLDER / f"{profile}.json"


def load(profile: str) -> dict | None:
    """The profile's pre-registration, or None when it has none."""
    path = path_of(profile)
    return json.loads(path.read_text()) if path.is_file() else None


def status(profile: str, seeds: list[int]) -> tuple[str, str]:
    """("confirmatory" | "exploratory", why) for a study of ``profile`` run with ``seeds``."""
    reg = load(profile)
    if reg is None:
        return "exploratory", f"the {profile} profile has no pre-registration"
    if reg["design_digest"] != design_digest(profile):
        return "exploratory", "the design that ran differs from the pre-registered one (digest)"
    if sorted(int(s) for s in seeds) != sorted(reg["seeds"]):
        return "exploratory", f"seeds {sorted(seeds)} are not the pre-registered {reg['seeds']}"
    return (
        "confirmatory",
        f"design {reg['design_digest'][:12]} and seeds as pre-registered on {reg['registered']}",
    )


def registered_design(profile: str) -> dict | None:
    """The pre-registration in force for ``profile`` now, as a pilot record keeps it: its
    ``design_digest`` and ``registered`` date when the profile's current design is the registered
    one, else None. A pilot record that carries it was measured after that design was fixed, so it
    did not choose it."""
    reg = load(profile)
    if reg is None or reg["design_digest"] != design_digest(profile):
        return None
    return {"design_digest": reg["design_digest"], "registered": reg["registered"]}


def history() -> list[dict]:
    """Every earlier confirmatory design of the studies: seeds, what changed after it, its verdicts."""
    return json.loads(HISTORY.read_text())["designs"] if HISTORY.is_file() else []


def in_plan(profile: str, of: tuple = claims.CLAIMS) -> list:
    """The claims of ``of`` a profile's plan can test: every one whose rows it runs (the trend,
    which names no rows, always)."""
    rows = {None, *get_profile(profile).study.rows}
    return [c for c in of if {c.a, c.b} <= rows]


def tested_primaries(profile: str | None = None) -> list:
    """The primary claims a profile's plan can test (``in_plan``); every primary claim when
    ``profile`` is None."""
    return [c for c in (claims.CLAIMS if profile is None else in_plan(profile)) if c.primary]


def power_statement(sd: float, n: int, sd_source: str, profile: str | None = None) -> dict:
    """The prospective power of a design: the effect its hardest Holm step detects with 80 % power.

    Args:
        sd: the planned spread of the per-seed paired differences (points), from a pilot.
        n: the pre-registered number of pairs.
        sd_source: where ``sd`` comes from.
        profile: the profile whose plan fixes the Holm family (two hypotheses per primary claim
            it can test, ``tested_primaries``); None counts every primary claim.
    """
    primary = len(tested_primaries(profile))
    effect = claims.planned_effect(sd, n, 2 * primary)
    unit = claims.planned_effect(1.0, n, 2 * primary)
    return {
        "sd": round(sd, 3),
        "pairs": n,
        "hypotheses": 2 * primary,
        "effect_in_sd": round(unit, 3),
        "effect_points": round(effect, 2),
        "sd_source": sd_source,
        "statement": (
            f"with {n} pairs, a true difference of {unit:.2f} paired standard deviations "
            f"({effect:.2f} points at the planned sd of {sd:.2f} points, {sd_source}) is detected with "
            f"{claims.POWER:.0%} power at the first Holm step ({claims.ALPHA:g} / {2 * primary}); "
            "smaller effects are likely to stay inconclusive"
        ),
    }


def write(profile: str, seeds: list[int], power: dict, registered: str, note: str = "") -> Path:
    """Write ``preregistration/<profile>.json`` for the profile's current design (refuses to
    replace an existing one whose digest differs: a new design gets fresh seeds and a new file,
    after the old one's verdicts went into the history)."""
    from ..files import atomic_write_text

    digest = design_digest(profile)
    path = path_of(profile)
    old = load(profile)
    if old is not None and old["design_digest"] != digest and set(old["seeds"]) & set(seeds):
        raise ValueError(f"{path} registers another design on overlapping seeds: use fresh seeds")
    d = design(profile)
    doc = {
        "profile": profile,
        "registered": registered,
        "seeds": sorted(int(s) for s in seeds),
        "design_digest": digest,
        "endpoint": d["endpoint"],
        "secondary_endpoint": d["secondary_endpoint"],
        "baselines": d["baselines"],
        "claims": [
            {
                "key": c.key,
                "primary": c.primary,
                "test": c.test,
                "a": c.a,
                "b": c.b,
                "margin": c.margin,
                "text": c.text,
            }
            for c in in_plan(profile, claims.CLAIMS + claims.PROBE_CLAIMS)
        ],
        "rules": {
            "level": f"one Holm family over both directions of the tested primary claims, family-wise {claims.ALPHA:g}; secondary claims one-sided {claims.ALPHA:g} each, unadjusted",
            "bounds": "one-sided, at the level Holm gave each hypothesis",
            "learning gate": f"per seed: one-image rows reach {claims.OFDB_BAR:g} % on held-out crops of {d['rules']['held_out_crop'][0]:.0%}-{d['rules']['held_out_crop'][1]:.0%} of the image (halfway from chance to 100 % at 2 or 3 categories); rows with varied instances {claims.FRACTALDB_CHANCE_MULTIPLE:g} x chance on held-out instances",
            "failed runs": f"a fine-tuning whose final training loss is above its row's median by more than {claims.FAILED_LOSS_MADS:g} scaled MADs and {claims.FAILED_LOSS_MIN:g} nats has failed; its pair is dropped",
            "not interpretable": f"a claim with fewer than {claims.MIN_PAIRS_FRACTION:.0%} of its pairs usable is not tested and not counted",
            "training subset": "drawn from each seed, shared by the arms of the seed",
        },
        "power": power,
        "note": note,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return path
