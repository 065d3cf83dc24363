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


#: A GPU profile's pre-training shrunk to seconds on the CPU: smoke's model and sizes on its recipe.
GPU_TWIN = dict(
    img_size=32,
    depth=1,
    embed_dim=32,
    num_heads=2,
    batch_size=8,
    steps=2,
    warmup_steps=1,
    categories=4,
    render_size=32,
    render_points=1_500,
    eval_per_category=2,
    eval_batch_size=16,
    log_every=1,
    checkpoint_every=1,
    num_workers=0,
)
