"""Train a slice of the study's plan, then read it as the notebooks do (``analysis.runs``)."""

from ofdb_study.analysis import runs
from ofdb_study.study import plan


def _trained(specs):
    plan.run_plan(specs, log=lambda line: None)
    return runs.downstream(specs)


def augmentation(profile, seeds, root="runs", rows=None, **finetune):
    """Train, then read, the instances-vs-augmentation rows."""
    return _trained(plan.augmentation_specs(profile, seeds, root, rows, **finetune))


def scaling(profile, categories, seeds, root="runs", **finetune):
    """Train, then read, the category-scaling sweep."""
    return _trained(plan.scaling_specs(profile, seeds, root, categories, **finetune))


def onepfrac(profile, deltas, seeds, root="runs", **finetune):
    """Train, then read, the 1p-frac perturbation sweep."""
    return _trained(plan.onepfrac_specs(profile, deltas, seeds, root, **finetune))
