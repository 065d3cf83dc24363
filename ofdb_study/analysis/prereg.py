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
import math
from pathlib import Path

from ..config import get_profile
from . import claims

FOLDER = Path(__file__).resolve().parent / "preregistration"
#: The registrations of earlier designs, each with the verdicts its build gave (``archive``).
ARCHIVE = FOLDER / "archive"


#: The code that makes and judges the numbers, covered by the design digest (``code_digest``):
#: every module of these wings of the package, and the pinned versions.
CODE_WINGS = ("analysis", "study", "train", "fractals")
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


def code_files() -> list[Path]:
    """The files ``code_digest`` reads: the Python modules of ``CODE_WINGS`` and ``requirements.txt``."""
    package = Path(__file__).resolve().parents[1]
    files = sorted(f for wing in CODE_WINGS for f in (package / wing).rglob("*.py"))
    return files + ([REQUIREMENTS] if REQUIREMENTS.is_file() else [])


def code_digest(files: list[Path] | None = None, root: Path | None = None) -> str:
    """sha256 over the code that trains, reads and judges (``code_files``), each file by its path
    relative to ``root`` (the package's parent) and its bytes: a change to any of them is another
    design."""
    root = Path(__file__).resolve().parents[2] if root is None else Path(root)
    h = hashlib.sha256()
    for f in code_files() if files is None else files:
        h.update(Path(f).relative_to(root).as_posix().encode() + b"\0" + Path(f).read_bytes() + b"\0")
    return h.hexdigest()


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
    if prof.study.endpoint == "readout":
        return _readout_design(profile)
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


def _readout_design(profile: str) -> dict:
    """``design`` of a readout study: the configs of every pre-training row, the plan, the readout
    claims, the gate and the rules, the readouts, and the digest of the code (``code_digest``)."""
    from ..config import phase_config
    from ..study import readouts
    from ..train.pretrain_data import HELD_OUT_CROP
    from . import readout

    prof = get_profile(profile)
    plan = {k: v for k, v in dataclasses.asdict(prof.study).items() if k not in ("seeds", "workers")}
    return {
        "profile": profile,
        "pretrain": prof.pretrain.digest(),
        "rows": {
            r: phase_config(profile, "pretrain", **prof.study.settings_of(r)).digest()
            for r in prof.study.rows
        },
        "finetune": prof.finetune.digest(),
        "plan": plan,
        "claims": [
            {"key": c.key, "test": c.test, "rows": list(c.rows), "margin": c.margin, "primary": c.primary}
            for c in claims.READOUT_CLAIMS
        ],
        "rules": {
            "alpha": claims.ALPHA,
            "holm_family": "both directions of every tested primary claim",
            "min_pairs_fraction": claims.MIN_PAIRS_FRACTION,
            "ofdb_bar": claims.OFDB_BAR,
            "varied_bar_chance_multiple": claims.FRACTALDB_CHANCE_MULTIPLE,
            "held_out_crop": list(HELD_OUT_CROP),
            "gate_margin": readout.GATE_MARGIN,
            "gate_level": readout.GATE_LEVEL,
            "gated_arms": list(readout.GATED_ARMS),
            "free_alternatives": list(readout.free_alternatives()),
        },
        "endpoint": prof.study.primary_readout,
        "readouts": {
            "features": list(readouts.FEATURES),
            "readers": list(readouts.READERS),
            "pixel_baselines": list(readouts.PIXEL_BASELINES),
            "pca_components": readouts.PCA_COMPONENTS,
        },
        "code": code_digest(),
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


def status(profile: str, seeds: list[int], specs: list | None = None) -> tuple[str, str]:
    """("confirmatory" | "exploratory", why) for a study of ``profile`` run with ``seeds``.

    With ``specs`` (the plan's runs), a run that started before the registration (its manifest's
    ``started``, or none recorded) makes the build exploratory: such a run could have chosen the
    design. Each run's identity (that its folder holds the run its name says) is checked by the
    readers (``train.runinfo.verify_run``) before this is asked.
    """
    reg = load(profile)
    if reg is None:
        return "exploratory", f"the {profile} profile has no pre-registration"
    if reg["design_digest"] != design_digest(profile):
        return (
            "exploratory",
            "the design that ran differs from the pre-registered one (digest: configs, claims, rules or code)",
        )
    if sorted(int(s) for s in seeds) != sorted(reg["seeds"]):
        return "exploratory", f"seeds {sorted(seeds)} are not the pre-registered {reg['seeds']}"
    early = runs_before(specs or [], reg["registered"])
    if early:
        return "exploratory", f"{len(early)} run(s) started before the registration ({early[0]})"
    return (
        "confirmatory",
        f"design {reg['design_digest'][:12]} and seeds as pre-registered on {reg['registered']}",
    )


def runs_before(specs: list, registered: str) -> list[str]:
    """Labels of the finished runs among ``specs`` that started before ``registered`` (an ISO UTC
    time; a date alone counts from its midnight), or whose manifest records no start."""
    import datetime

    def when(text: str) -> datetime.datetime:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)

    limit = when(registered)
    out = []
    for s in specs:
        manifest = Path(s.path) / "manifest.json"
        if not manifest.is_file():
            continue
        started = json.loads(manifest.read_text()).get("started")
        if started is None or when(started) < limit:
            out.append(s.label)
    return out


def registered_design(profile: str) -> dict | None:
    """The pre-registration in force for ``profile`` now, as a pilot record keeps it: its
    ``design_digest`` and ``registered`` date when the profile's current design is the registered
    one, else None. A pilot record that carries it was measured after that design was fixed, so it
    did not choose it."""
    reg = load(profile)
    if reg is None or reg["design_digest"] != design_digest(profile):
        return None
    return {"design_digest": reg["design_digest"], "registered": reg["registered"]}


def history(profile: str = "mini") -> list[dict]:
    """Every earlier confirmatory design of ``profile``'s study, oldest first, from the registration
    records in ``ARCHIVE`` (``<profile>-design-<N>.json``, written by ``archive``): design, seeds, what
    was changed after its results were seen, where its verdicts come from, and each claim's verdict."""
    docs = [json.loads(f.read_text()) for f in ARCHIVE.glob(f"{profile}-design-*.json")]
    return sorted(docs, key=lambda d: int(d["design"]))


def history_table(profile: str = "mini"):
    """``history`` as the book shows it: one row per design, one column per claim it decided."""
    import pandas as pd

    rows = []
    for d in history(profile):
        row = {
            "design": f"{d['design']}: {d['summary']}",
            "registered": d.get("registered") or "not pre-registered",
            "seeds": _ranges(d["seeds"]),
            "changed after its results": d["changed_after"],
            "verdicts from": d["source"],
        }
        row.update({k: v for k, v in d["verdicts"].items()})
        rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def _ranges(seeds: list[int]) -> str:
    """``[42, 43, 44, 50]`` -> ``"42-44, 50"``."""
    seeds, out = sorted(int(s) for s in seeds), []
    for s in seeds:
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def archive(
    profile: str, *, design: int, summary: str, verdicts: dict, changed_after: str, source: str
) -> Path:
    """Move ``profile``'s registration in force into ``ARCHIVE`` as design ``design``, with the
    verdicts its confirmatory build gave (claim key -> verdict with its bounds), what was changed
    after they were seen, and the build they come from; the next design registers on fresh seeds."""
    from ..files import atomic_write_text

    reg = load(profile)
    if reg is None:
        raise ValueError(f"{profile} has no registration in force to archive")
    doc = {
        "design": design,
        "summary": summary,
        "registered": reg.get("registered"),
        "design_digest": reg["design_digest"],
        "seeds": reg["seeds"],
        "changed_after": changed_after,
        "source": source,
        "verdicts": verdicts,
        "registration": reg,
    }
    path = ARCHIVE / f"{profile}-design-{design}.json"
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    path_of(profile).unlink()
    return path


def describe(profile: str) -> str:
    """The registration in force for ``profile``, in Markdown: when, seeds, digest (against this
    build's), rules, the pilot's means and sds per claim, and the power statement."""
    reg = load(profile)
    if reg is None:
        return f"The `{profile}` profile has no pre-registration: its results are exploratory."
    current = design_digest(profile)
    same = current == reg["design_digest"]
    lines = [
        f"- registered: {reg['registered']}, seeds {_ranges(reg['seeds'])}",
        f"- design digest: `{reg['design_digest'][:16]}` (this build's: `{current[:16]}`, "
        + ("the same)" if same else "**different**: exploratory)"),
        f"- endpoint: `{reg['endpoint']}`",
        *[f"- {k}: {v}" for k, v in reg["rules"].items()],
    ]
    pilot = reg.get("pilot")
    if pilot:
        lines.append(
            f"- the pilot (seeds {_ranges(pilot['seeds'])}, `{pilot['record']}`), per claim: "
            + "; ".join(f"{k} mean {v['mean']:+.2f}, sd {v['sd']:.2f}" for k, v in pilot["claims"].items())
        )
    lines.append(f"- power: {reg['power']['statement']}")
    lines += [
        f"- claim {c['key']} ({'primary' if c['primary'] else 'secondary'}, {c['test']}): {c['text']}"
        for c in reg["claims"]
    ]
    return "\n".join(lines)


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


def readout_power(pilot_claims: dict, n: int, profile: str) -> dict:
    """The prospective power of a readout design, claim by claim, from the pilot's paired means and
    sds (``benchmarks/readout_pilot.py``): the effect the first Holm step detects with 80 % power at
    ``n`` pairs, and whether the pilot's mean reaches it (a claim whose mean does not is expected to
    be read by its bound only)."""
    primary = [c for c in claims.READOUT_CLAIMS if c.primary and c.key in pilot_claims]
    hypotheses = 2 * len(primary)
    per = {}
    for c in primary:
        p = pilot_claims[c.key]
        sd = p["sd"]
        effect = claims.planned_effect(sd, n, hypotheses) if sd else math.nan
        shifted = p["mean"] + (c.margin if c.test == "non-inferiority" else 0.0)
        per[c.key] = {
            "pilot_mean": p["mean"],
            "pilot_sd": sd,
            "detectable": round(effect, 2),
            "expected": "decidable" if abs(shifted) >= effect else "read by its bound only",
        }
    worst = max(per.values(), key=lambda v: v["pilot_sd"] or 0) if per else None
    statement = (
        f"{n} pairs, {hypotheses} one-sided hypotheses in one Holm family at {claims.ALPHA:g}: "
        + "; ".join(
            f"{k}: pilot mean {v['pilot_mean']:+.2f}, sd {v['pilot_sd']:.2f}, detectable {v['detectable']:.2f} points ({v['expected']})"
            for k, v in per.items()
        )
    )
    return {
        "pairs": n,
        "hypotheses": hypotheses,
        "claims": per,
        "statement": statement,
        "largest_sd": None if worst is None else worst["pilot_sd"],
    }


def write_readout(profile: str, seeds: list[int], pilot_path: Path, registered: str, note: str = "") -> Path:
    """Write ``preregistration/<profile>.json`` for a readout design: its digest (configs, claims,
    rules and code), the seeds, the pilot's means and sds on the primary readout, the power claim by
    claim, the gate. Refuses to replace a registration in force (``archive`` it first) and seeds an
    earlier design used."""
    from ..files import atomic_write_text

    if load(profile) is not None:
        raise ValueError(f"{path_of(profile)} is in force: archive it with its verdicts first")
    used = {int(s) for d in history(profile) for s in d["seeds"]}
    if used & set(seeds):
        raise ValueError(f"seeds {sorted(used & set(seeds))} decided an earlier design: use fresh seeds")
    d = design(profile)
    prof = get_profile(profile)
    pilot = json.loads(Path(pilot_path).read_text())
    readout_name = prof.study.primary_readout
    pilot_claims = pilot["readouts"][readout_name]["claims"]
    doc = {
        "profile": profile,
        "registered": registered,
        "seeds": sorted(int(s) for s in seeds),
        "design_digest": design_digest(profile),
        "code_digest": d["code"],
        "endpoint": readout_name,
        "claims": [
            {
                "key": c.key,
                "primary": c.primary,
                "test": c.test,
                "rows": list(c.rows),
                "margin": c.margin,
                "text": c.text,
            }
            for c in claims.READOUT_CLAIMS
        ],
        "rules": {
            "gate": f"before any claim is read, on `{readout_name}`: each of {', '.join(d['rules']['gated_arms'])} beats the best free alternative (the highest mean over seeds of {', '.join(d['rules']['free_alternatives'])}) by more than {d['rules']['gate_margin']:g} points at the one-sided {1 - d['rules']['gate_level']:.0%} lower bound of the seed-paired difference; if not, the build makes no claims",
            "level": f"one Holm family over both directions of the primary claims, family-wise {claims.ALPHA:g}; the secondary claim one-sided {claims.ALPHA:g}, unadjusted",
            "bounds": "one-sided, at the level Holm gave each hypothesis; an inconclusive claim is reported by what its bounds exclude",
            "learning gate": f"per seed: one-image rows reach {claims.OFDB_BAR:g} % on held-out crops of {d['rules']['held_out_crop'][0]:.0%}-{d['rules']['held_out_crop'][1]:.0%}; rows with varied instances {claims.FRACTALDB_CHANCE_MULTIPLE:g} x chance on held-out instances; a seed whose pre-training missed its bar is dropped from that row's claims",
            "not interpretable": f"a claim with fewer than {claims.MIN_PAIRS_FRACTION:.0%} of its pairs usable is not tested",
            "failed runs": "a run that did not finish is missing from its pairs; nothing else is dropped",
            "subsets": f"{prof.study.readout_draws} draws of {prof.study.readout_per_class} labelled images per class per seed, outside the control pool; every arm of a seed on the same draws",
            "confirmatory": "only with this digest (configs, claims, rules, readouts, the code of analysis, study, train and fractals, the pins), these seeds, and runs started after this registration",
            "a further design": "a later design on these claims is read together with this one in a combined analysis pre-registered before its runs, not as a fresh start",
        },
        "pilot": {
            "record": str(Path(pilot_path).name),
            "seeds": pilot["seeds"],
            "claims": pilot_claims,
            "gate": pilot["readouts"][readout_name]["gate"],
        },
        "power": readout_power(pilot_claims, len(seeds), profile),
        "note": note,
    }
    path = path_of(profile)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return path
