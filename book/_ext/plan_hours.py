"""The hours of the GPU profiles' study plans, computed while the book builds: ``{plan-hours}``.

For each profile the directive plans the whole study (``study.plan_report.profile_hours``: the
profile's plan in an empty run root, so no run on the building machine changes the page) and
renders what ``python -m ofdb_study study plan --profile NAME`` projects for it from the measured
figures (``study.plan_report.MEASURED``): the hours on one GPU, on several under ``torchrun``, and
as jobs on a cluster, then the figures with their card, precision and source, and what each
column assumes. Nothing on the table is typed by hand; a profile whose model has no measured
figure says so.

Options: ``:profiles:`` (names separated by spaces; default ``paper paper-short paper-21k``) and
``:gpus:`` (the GPUs of the torchrun and cluster columns; default 8). ``ofdb_study`` is imported
from the checkout the book is built from (``bench_tables`` puts it on ``sys.path``).
"""

from __future__ import annotations

import re

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from sphinx.application import Sphinx

#: The profiles the table lists unless ``:profiles:`` says otherwise.
PROFILES = ("paper", "paper-short", "paper-21k")
#: The GPUs of the torchrun and cluster columns unless ``:gpus:`` says otherwise.
GPUS = 8
#: A cell whose figure was not measured.
UNMEASURED = "not measured"


def columns(gpus: int = GPUS) -> list[str]:
    """The table's header."""
    return [
        "profile",
        "runs",
        "training images",
        "1 GPU",
        "1 GPU, loader-fed runs at the loader's rate",
        f"{gpus} GPUs, torchrun",
        "cluster: critical path",
        f"cluster: {gpus} GPUs",
    ]


def row(name: str, hours) -> list[str]:
    """The cells of one profile from its ``plan_report.PlanHours``."""
    from ofdb_study.study.plan_report import duration

    images = sum(r.spec.images for r in hours.runs)
    times = (hours.one_gpu, hours.one_gpu_loader, hours.torchrun, hours.critical_path, hours.cluster)
    return [name, str(len(hours.runs)), f"{images:,}"] + [
        UNMEASURED if t is None else duration(t) for t in times
    ]


def plans(profiles=PROFILES, gpus: int = GPUS) -> dict:
    """``{profile: plan_report.PlanHours}`` of each profile's whole plan."""
    from ofdb_study.study.plan_report import profile_hours

    return {name: profile_hours(name, gpus) for name in profiles}


#: What a sentence shows as code: command-line options, the study's commands and its module.
_CODE = re.compile(r"(--[a-z][a-z0-9-]*|study plan|study run|study\.plan_report)")


def _paragraph(text: str) -> nodes.paragraph:
    """``text`` as a paragraph, its options and commands as code (so ``--x`` keeps both dashes)."""
    para = nodes.paragraph()
    for k, part in enumerate(_CODE.split(text)):
        if part:
            para += nodes.literal(text=part) if k % 2 else nodes.Text(part)
    return para


def _table(head: list[str], body: list[list[str]]) -> nodes.table:
    table = nodes.table(classes=["plan-hours"])
    group = nodes.tgroup(cols=len(head))
    table += group
    for _ in head:
        group += nodes.colspec(colwidth=1)
    for part, cells in ((nodes.thead(), [head]), (nodes.tbody(), body)):
        group += part
        for cells_of_row in cells:
            tr = nodes.row()
            for text in cells_of_row:
                entry = nodes.entry()
                entry += nodes.paragraph(text=text)
                tr += entry
            part += tr
    return table


def _figures(hours: dict) -> nodes.bullet_list:
    """One item per measured figure (rate, card, precision, source, the profiles it serves) and one
    per profile whose model has none."""
    used: dict[tuple, list[str]] = {}
    for name, h in hours.items():
        for t in h.sources:
            used.setdefault((t.images_per_s, t.card, t.precision, t.source, t.bound, t.bound_source), [])
            used[t.images_per_s, t.card, t.precision, t.source, t.bound, t.bound_source].append(name)
    items = nodes.bullet_list()
    for (rate, card, precision, source, bound, bound_source), names in used.items():
        where = f" on one {card}" if card else ""
        at = f" with {precision} autocast" if precision else ""
        text = f"{rate:,.0f} images/s{where}{at} ({', '.join(names)}): {source}."
        if bound:
            text += f" Where the loader limits: {bound:,.0f} images/s, {bound_source}."
        precisions = sorted({r.spec.cfg.precision for n in names for r in hours[n].runs})
        if precision and precisions != [precision]:
            text += (
                f" The runs of these profiles set precision {', '.join(precisions)}; their step "
                "rate at that precision is not measured here."
            )
        item = nodes.list_item()
        item += _paragraph(text)
        items += item
    for name, h in hours.items():
        if h.unmeasured:
            item = nodes.list_item()
            item += _paragraph(
                f"{name}: no measured figure for {', '.join(h.unmeasured)}, so its hours are "
                "still to be measured; study plan projects them from the finished runs of that "
                "model under its run root once there are some."
            )
            items += item
    return items


def render(profiles=PROFILES, gpus: int = GPUS) -> list[nodes.Node]:
    """The nodes of the directive: a sentence, the table, the figures, the assumptions."""
    hours = plans(profiles, gpus)
    intro = _paragraph(
        "Projected while this book was built by study.plan_report (what study plan prints for a "
        "run root where nothing has run), for every run of each profile's plan, every seed: "
        "training steps only, without set-up, evaluation, queueing or the data jobs (the search, "
        "the 3D-OFDB trees), at these measured figures:"
    )
    assumptions = _paragraph(
        "1 GPU: the runs one after another at the measured step rate; the next column gives "
        "the runs that the loader feeds (every fine-tuning, and a pre-training whose pipeline "
        "is the loader) the loader's measured rate instead. "
        f"{gpus} GPUs, torchrun: each run's steps split across {gpus} GPUs of one machine at the "
        "same global batch, assuming linear scaling (each GPU keeps the measured images/s at "
        f"1/{gpus} of the batch and the gradient all-reduce costs nothing), so it is a lower "
        "bound, at the step rate only (the loader's workers are shared by the machine's GPUs). "
        "Cluster: each run one job on one GPU (study run, SLURM), a fine-tuning starting when "
        "its pre-training has finished; the critical path (the longest pre-training plus its "
        "fine-tuning) is the wall time with as many GPUs as runs at once, and the last column "
        f"spreads the runs over {gpus} GPUs, each free GPU taking the next run of the plan "
        "that can start."
    )
    body = [row(name, h) for name, h in hours.items()]
    return [intro, _figures(hours), _table(columns(gpus), body), assumptions]


class PlanHoursDirective(Directive):
    """``{plan-hours}``: the table of the GPU profiles' projected hours (see the module docstring)."""

    required_arguments = 0
    optional_arguments = 0
    has_content = False
    option_spec = {"profiles": directives.unchanged, "gpus": directives.positive_int}

    def run(self):
        import ofdb_study.config.profiles as profile_module
        from ofdb_study.config import PROFILES as KNOWN
        from ofdb_study.study import plan_report

        names = tuple(self.options.get("profiles", " ".join(PROFILES)).split())
        unknown = [n for n in names if n not in KNOWN]
        if unknown or not names:
            raise self.error(f"plan-hours: unknown profile {unknown[0] if unknown else '(none)'!r}")
        env = getattr(self.state.document.settings, "env", None)
        if env is not None:  # re-read the page when the figures or the profiles change
            for module in (plan_report, profile_module):
                env.note_dependency(module.__file__)
        return render(names, self.options.get("gpus", GPUS))


def setup(app: Sphinx) -> dict:
    app.add_directive("plan-hours", PlanHoursDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
