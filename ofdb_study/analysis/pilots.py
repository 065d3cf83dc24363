"""The fine-tuning length pilots: their records merged by setting, and where scratch plateaus.

``benchmarks/finetune_pilot.py`` writes one record per call (the lengths it ran, on pilot seeds kept
apart from the study's). Several calls that ran the same fine-tuning, for example a first call at
short lengths and a later one at longer lengths, are one curve: ``merge_finetune`` groups the
records by the settings they ran with that differ from the profile's current recipe
(``settings_changed``: the profile's settings when the record was made, in its
``profile_settings``, with the record's overrides on top) and concatenates their runs. ``plateau`` reads one arm's curve: its
mean endpoint and training loss at each length and what the last doubling of the length still
bought.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

#: A doubling of the fine-tuning length that raises the arm's mean endpoint by less than this many
#: top-1 points (and lowers its training loss by less than ``PLATEAU_LOSS``) is on the plateau.
PLATEAU_POINTS = 0.5
PLATEAU_LOSS = 0.05


#: Settings a pilot sets for each of its runs (its lengths, seeds, rows, evaluation cadence): not
#: compared with the profile.
PER_RUN = frozenset(
    {
        "phase",
        "steps",
        "warmup_steps",
        "seed",
        "eval_every",
        "init",
        "data",
        "categories",
        "augment",
        "params",
    }
)


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def profile_settings(prof) -> dict:
    """A pilot record's ``profile_settings``: the profile's settings of both phases as they are
    when the pilot runs (their ``result_dict``), which ``record_changed`` later compares with the
    profile as it is then."""
    return {"pretrain": prof.pretrain.result_dict(), "finetune": prof.finetune.result_dict()}


def settings_changed(settings: dict | None, overrides: dict | None, recipe) -> dict:
    """The settings a pilot ran with that differ from ``recipe`` (a resolved ``TrainConfig``).

    Args:
        settings: the profile's settings of the phase when the pilot was made (its
            ``result_dict``, recorded as ``profile_settings``); None for a record without them,
            whose overrides alone are compared.
        overrides: the settings the pilot's command changed from them.
        recipe: the profile's current config of the phase.

    A setting missing from a ``result_dict`` is at its ``TrainConfig`` default; the per-run
    settings (``PER_RUN``) and the ones that change no result (where the data are, threads,
    cadences: ``schema.NOT_READ_BY``) are left out.
    """
    if settings is None:
        current = {k: _plain(getattr(recipe, k, None)) for k in (overrides or {})}
        return {k: v for k, v in sorted((overrides or {}).items()) if current[k] != _plain(v)}
    from ..config import TrainConfig
    from ..config.schema import NOT_READ_BY

    default = TrainConfig()
    unread = NOT_READ_BY.get(recipe.phase, frozenset())
    ran = {**settings, **(overrides or {})}
    now = recipe.result_dict()
    out = {}
    for key in sorted(set(ran) | set(now)):
        if key in PER_RUN or key in unread:
            continue
        before = _plain(ran.get(key, getattr(default, key, None)))
        if before != _plain(now.get(key, getattr(default, key, None))):
            out[key] = before
    return out


def record_changed(doc: dict, phase: str, recipe) -> dict:
    """``settings_changed`` of a pilot record (``benchmarks/pilot.py``: its ``overrides`` are
    pre-training settings; ``benchmarks/finetune_pilot.py``: ``overrides`` fine-tuning and
    ``pretrain_overrides`` pre-training)."""
    settings = (doc.get("profile_settings") or {}).get(phase)
    if "finetune" in doc and isinstance(doc["finetune"], list):
        overrides = doc.get("overrides") if phase == "finetune" else doc.get("pretrain_overrides")
    else:
        overrides = doc.get("overrides") if phase == "pretrain" else {}
    return settings_changed(settings, overrides, recipe)


def merge_finetune(paths: list[Path], finetune_recipe, pretrain_recipe=None) -> list[dict]:
    """The fine-tuning pilot records in ``paths``, one merged record per distinct setting.

    Args:
        paths: ``finetune-PROFILE*.json`` records of ``benchmarks/finetune_pilot.py``.
        finetune_recipe: the profile's resolved fine-tuning recipe.
        pretrain_recipe: the profile's resolved pre-training recipe (for ``pretrain_overrides``).

    Returns:
        One dict per setting, in the order first met: ``files``, ``commands``, ``machines``,
        ``measured`` (the dates), ``registered_designs`` (each file's ``registered_design``: the
        pre-registration in force when it ran, or None), ``changed`` (the fine-tuning settings
        changed from the recipe),
        ``pretrain_changed``, ``wall_seconds`` (summed) and ``finetune`` (every run; where two
        records ran the same arm, seed and length, the later file's run).
    """
    groups: dict[tuple, dict] = {}
    for path in sorted(Path(p) for p in paths):
        doc = json.loads(Path(path).read_text())
        changed = record_changed(doc, "finetune", finetune_recipe)
        pre_changed = record_changed(doc, "pretrain", pretrain_recipe) if pretrain_recipe else {}
        key = (json.dumps(changed, sort_keys=True), json.dumps(pre_changed, sort_keys=True))
        g = groups.setdefault(
            key,
            {
                "files": [],
                "commands": [],
                "machines": [],
                "measured": [],
                "registered_designs": [],
                "changed": changed,
                "pretrain_changed": pre_changed,
                "wall_seconds": 0.0,
                "runs": {},
            },
        )
        g["files"].append(Path(path).name)
        g["commands"].append(doc["command"])
        g["machines"].append(doc["machine"])
        g["measured"].append(doc["measured"])
        g["registered_designs"].append(doc.get("registered_design"))
        g["wall_seconds"] += float(doc.get("wall_seconds", 0.0))
        for run in doc["finetune"]:
            g["runs"][(run["arm"], run["seed"], run["steps"])] = run
    merged = []
    for g in groups.values():
        runs = g.pop("runs")
        g["finetune"] = [runs[k] for k in sorted(runs)]
        merged.append(g)
    return merged


def measured_after(doc: dict, registered: dict | None) -> list[bool]:
    """For each file of a merged record (``merge_finetune``), whether it was measured under the
    registration ``registered`` (``prereg.registered_design`` of the profile now), that is after
    the current design was fixed, so that it did not choose it."""
    return [
        bool(registered and r and r["design_digest"] == registered["design_digest"])
        for r in doc["registered_designs"]
    ]


def plateau(doc: dict, arm: str = "scratch", at: int | None = None) -> dict:
    """Whether ``arm``'s endpoint has stopped rising in a (merged) fine-tuning pilot record.

    Args:
        doc: a (merged) record with a ``finetune`` list of runs.
        arm: the arm whose curve is read.
        at: the length to judge (the study's); it is compared with the next longer length run. None
            judges the next-to-last length against the last.

    Returns:
        ``curve`` (a DataFrame: steps, mean top-1 and training loss over the pilot seeds, seeds),
        ``last_gain`` (top-1 points the step from ``from_steps`` to ``to_steps`` bought, mean over the
        seeds that ran both lengths), ``gain_sd`` (their standard deviation), ``pairs`` (how many
        seeds), ``last_loss_drop``, ``from_steps``, ``to_steps`` and ``reached`` (True when the gain
        is below ``PLATEAU_POINTS`` and the loss drop below ``PLATEAU_LOSS``), or ``reached`` None
        when no longer length than ``at`` (or fewer than two lengths) was run.
    """
    runs = pd.DataFrame(doc["finetune"])
    runs = runs[runs["arm"] == arm]
    curve = (
        runs.groupby("steps")
        .agg(top1=("top1", "mean"), final_loss=("final_loss", "mean"), seeds=("seed", "nunique"))
        .reset_index()
        .sort_values("steps")
    )
    out = {
        "curve": curve,
        "last_gain": None,
        "gain_sd": None,
        "pairs": 0,
        "last_loss_drop": None,
        "from_steps": at,
        "to_steps": None,
    }
    lengths = [int(n) for n in curve["steps"]]
    if at is None:
        if len(lengths) < 2:
            return {**out, "reached": None}
        a, b = lengths[-2], lengths[-1]
    else:
        longer = [n for n in lengths if n > at]
        if at not in lengths or not longer:
            return {**out, "reached": None}
        a, b = at, longer[0]
    both = set(runs[runs["steps"] == a]["seed"]) & set(runs[runs["steps"] == b]["seed"])
    pick = runs[runs["seed"].isin(both)].set_index(["seed", "steps"])
    gains = pick.xs(b, level="steps")["top1"] - pick.xs(a, level="steps")["top1"]
    gain = float(gains.mean())
    drop = float((pick.xs(a, level="steps")["final_loss"] - pick.xs(b, level="steps")["final_loss"]).mean())
    return {
        **out,
        "last_gain": round(gain, 2),
        "gain_sd": round(float(gains.std(ddof=1)), 2) if len(gains) > 1 else None,
        "pairs": len(gains),
        "last_loss_drop": round(drop, 4),
        "from_steps": int(a),
        "to_steps": int(b),
        "reached": bool(gain < PLATEAU_POINTS and drop < PLATEAU_LOSS),
    }


def loss_floor(classes: int, smoothing: float) -> float:
    """The lowest training loss label smoothing allows: the entropy of the smoothed target
    (``1 - smoothing + smoothing / classes`` on the label, ``smoothing / classes`` on each other
    class), reached by a model that predicts the target exactly (0.50 nats at 10 classes and 0.1)."""
    import math

    if smoothing <= 0:
        return 0.0
    other = smoothing / classes
    on = 1.0 - smoothing + other
    return -(on * math.log(on) + (classes - 1) * other * math.log(other))


def lead(doc: dict, a: str = "ofdb", b: str = "scratch") -> pd.Series:
    """Mean paired difference ``a - b`` in endpoint top-1 points at each fine-tuning length of a
    (merged) pilot record, over the seeds that ran both arms at that length (index: steps)."""
    runs = pd.DataFrame(doc["finetune"])
    table = runs.pivot_table(index=["steps", "seed"], columns="arm", values="top1")
    if a not in table.columns or b not in table.columns:
        return pd.Series(dtype=float)
    return (table[a] - table[b]).dropna().groupby(level="steps").mean().round(2)
