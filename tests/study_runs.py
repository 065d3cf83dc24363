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


def results_archive(members: dict[str, bytes], out, runs: list[str] | None = None):
    """A ``results pack`` archive of ``members`` (archive path -> bytes) whose PACK.json lists each
    with its right sha256 and size, whatever the members hold; ``runs`` defaults to the run
    folders the members name (``runs/<phase>/<name>/<file>``)."""
    import gzip
    import hashlib
    import io
    import json
    import tarfile
    from pathlib import Path

    from ofdb_study.study import pack

    if runs is None:
        runs = sorted(
            {"/".join(n.split("/")[1:3]) for n in members if n.startswith("runs/") and n.count("/") == 3}
        )
    manifest = {
        "format": pack.FORMAT,
        "format_version": pack.FORMAT_VERSION,
        "profile": "smoke",
        "runs": runs,
        "files": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in members.items()},
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in {"PACK.json": json.dumps(manifest).encode(), **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    Path(out).write_bytes(gzip.compress(buf.getvalue()))
    return Path(out)
