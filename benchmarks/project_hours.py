"""Projected pre-training hours from ``bench_train.py --json`` results (used by ``gpu_check.sh``).

    python benchmarks/project_hours.py tiny-eager.json [tiny-compiled.json] [--base base.json]

For every row of Table 1 (``config.ALL_ROWS``): 240,000 steps at batch 256 on one device at the
measured step rate. The batched pipeline's step was measured with one data kind; another kind's
step is taken as that step plus the difference of the two kinds' batched-alone times per image
(the pipeline and the model share the device's stream, so their times add). Rows without a kind
of their own are projected as the nearest measured one: ``ofdb3d`` and ``1p-frac`` as ``default``
(one stored image per sample, the same gather and augmentation; 1p-frac's 512 px images make its
crop read more pixels), ``ofdb3d+pattern`` as ``pattern`` (a view's lit pixels are fewer than
OFDB's 200,000 points, so this overestimates); ``scratch`` has no pre-training. With the loader, the measured kind's rate is used for every row (a
lower bound on the hours: the loader's per-image cost grows with pattern and fractaldb renders).
``--base``: the ViT-Base/16 run of the 21k recipe: 300,000 steps at batch 1,024 at its measured
rate (images/s do not depend much on the batch at this size).
"""

from __future__ import annotations

import argparse
import json

from ofdb_study.config import ALL_ROWS

TABLE1_STEPS, TABLE1_BATCH = 240_000, 256
BASE_STEPS, BASE_BATCH = 300_000, 1024
#: The batched-alone kind (``bench_train.py --kinds``) each row of the study is projected from.
ROW_KIND = {
    "fractaldb": "fractaldb",
    "ofdb": "default",
    "ofdb+fluctuation": "fluctuation",
    "ofdb+rotation": "rotation",
    "ofdb+pattern": "pattern",
    "ofdb+texture": "texture",
    "ofdb+both": "both",
    "ofdb3d": "default",
    "ofdb3d+pattern": "pattern",
    "1p-frac": "default",
    "scratch": None,
}
assert set(ROW_KIND) == set(ALL_ROWS), "project_hours.ROW_KIND must name every row of config.ALL_ROWS"


def _rates(doc: dict) -> tuple[dict, dict]:
    """(step rows by their leading words, batched-alone rates by kind) of one bench file."""
    steps, alone = {}, {}
    for r in doc.get("measurements", doc["rows"]):
        what = r["what"]
        if what.startswith("batched pipeline alone, "):
            alone[what.split(", ", 1)[1]] = r["images_per_s"]
        elif r["part"] == "step":
            steps[what.split(",")[0]] = r["images_per_s"]
            if what.startswith("ours + batched pipeline, "):
                steps["kind"] = what.split(", ", 1)[1]
    return steps, alone


def hours(images: int, rate: float) -> float:
    return images / rate / 3600


def table1(doc: dict, alone_kinds: dict) -> list[tuple[str, float | None, float | None]]:
    """(row, hours with the batched pipeline, hours with the loader) per Table-1 row."""
    steps, alone = _rates(doc)
    alone = {**alone_kinds, **alone}
    kind0 = steps["kind"]
    per_image = 1 / steps["ours + batched pipeline"]
    images = TABLE1_STEPS * TABLE1_BATCH
    out = []
    for row in ALL_ROWS:
        kind = ROW_KIND[row]
        if kind is None:
            out.append((row, 0.0, 0.0))
            continue
        t = per_image + (1 / alone[kind] - 1 / alone[kind0]) if kind in alone else None
        out.append(
            (row, None if t is None else images * t / 3600, hours(images, steps["ours + loader pipeline"]))
        )
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tiny", nargs="+", help="bench_train.py --json files of the ViT-Tiny recipe")
    p.add_argument("--base", help="bench_train.py --json file of the ViT-Base/16 21k recipe")
    args = p.parse_args(argv)
    docs = [json.load(open(f)) for f in args.tiny]
    alone_kinds = _rates(docs[0])[1]  # the eager run measured every kind
    print(f"device: {docs[0]['device']}")
    for doc in docs:
        steps, _ = _rates(doc)
        tag = "compiled" if doc["compile"] else "eager"
        bare = steps["bare timm step"]
        print(
            f"\nViT-Tiny/16, {tag}: bare step {bare:.0f} images/s; ours + batched {steps['ours + batched pipeline']:.0f}"
            f" ({steps['ours + batched pipeline'] / bare:.2f}x); ours + loader {steps['ours + loader pipeline']:.0f}"
            f" ({steps['ours + loader pipeline'] / bare:.2f}x)"
        )
        print(f"{'Table 1 row':20} {'hours, batched':>15} {'hours, loader':>14}   (240k steps at batch 256)")
        for row, hb, hl in table1(doc, alone_kinds):
            cell = "n/a" if hb is None else f"{hb:.2f}"
            print(f"{row:20} {cell:>15} {hl:14.2f}")
    if args.base:
        steps, _ = _rates(json.load(open(args.base)))
        images = BASE_STEPS * BASE_BATCH
        batched, loader = steps["ours + batched pipeline"], steps.get("ours + loader pipeline")
        print(
            f"\nViT-Base/16 (21k recipe): bare {steps['bare timm step']:.0f} images/s, ours + batched "
            f"{batched:.0f} ({batched / steps['bare timm step']:.2f}x)"
            + ("" if loader is None else f", ours + loader {loader:.0f}")
        )
        print(
            f"21k pre-training (300k steps at batch 1,024): {hours(images, batched):.1f} h batched"
            + ("" if loader is None else f", {hours(images, loader):.1f} h loader")
            + ", one device"
        )


if __name__ == "__main__":
    main()
