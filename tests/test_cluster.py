"""The study's runs as jobs: ``study plan``, the local executor, and SLURM (a real one-node cluster).

The SLURM tests use ``slurm_cluster`` (tests/slurm_cluster.py): munged, slurmctld and slurmd
started on localhost for the session. A small plan (OFDB-4 pre-training, its fine-tuning and
scratch, at ``smoke``) runs in the default suite; the whole ``smoke`` study, a job killed with
scancel and resubmitted, a pre-empted job requeued, and a two-process DDP job are ``slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from slurm_cluster import slurm_cluster_fixture  # noqa: F401  (the session fixture `slurm_cluster`)

from ofdb_study.cli import build_parser, main
from ofdb_study.cli import cluster as cluster_cli
from ofdb_study.study import cluster, plan_report, units
from ofdb_study.study import plan as experiments

REPO = Path(__file__).resolve().parent.parent
#: One CPU and one process per job, short polls: the test cluster has this machine's 2 cores.
CPU_JOBS = dict(gpus_per_run=0, cpus_per_gpu=1, time_min=10, poll_s=0.3, settle_s=5)
SLURM_ARGS = ["--executor", "slurm", "--gpus-per-run", "0", "--cpus-per-gpu", "1", "--time", "10"]


def three_runs(root) -> list[experiments.RunSpec]:
    """OFDB-4 pre-training, its fine-tuning and scratch: three runs of the smoke study's plan."""
    pre = experiments.pretrain_spec("smoke", "ofdb", root=root)
    return [
        pre,
        experiments.finetune_spec("smoke", pre, root=root),
        experiments.finetune_spec("smoke", "scratch", root=root),
    ]


def weights(specs, root) -> dict[str, str]:
    return {str(s.path.relative_to(root)): s.summary()["weights_sha256"] for s in specs}


def _run_cli(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


# ----------------------------------------------------------------------------------------------
# The plan, without any executor.


def test_units_put_data_and_pretraining_before_what_needs_them(tmp_path):
    specs = experiments.plan("smoke", root=tmp_path)
    us = units.units_of(specs, tmp_path)
    assert sum(u.is_run for u in us) == len(specs) == 23
    assert [u.kind for u in us[:2]] == ["search", "ofdb3d"]
    seen = set()
    for u in us:
        assert all(n in seen for n in u.needs), u.label  # everything it needs comes earlier
        seen.add(u.key)
        if u.kind == "finetune" and u.spec.needs is not None:
            assert u.needs == (u.spec.needs,)
        if u.kind == "pretrain":
            expect = {"ofdb": "search", "fractaldb": "search", "1pfrac": None}.get(u.spec.cfg.data, "ofdb3d")
            assert [next(x.kind for x in us if x.key == n) for n in u.needs] == ([expect] if expect else [])
    search = us[0]
    assert search.categories == 4 and search.key == units.search_folder()
    # another root shares no run folder, no data tree and no job folder
    other = units.units_of(experiments.plan("smoke", root=tmp_path / "other"), tmp_path / "other")
    mine = {u.key for u in us[1:]} | {u.job_dir("slurm") for u in us}
    theirs = {u.key for u in other[1:]} | {u.job_dir("slurm") for u in other}
    assert not mine & theirs


def test_study_plan_loads_neither_torch_nor_submitit(tmp_path):
    code = (
        "import sys; from ofdb_study.cli import main; "
        f"main(['study', 'plan', '--profile', 'smoke', '--root', {str(tmp_path)!r}]); "
        "print(sorted(m for m in ('torch', 'pandas', 'submitit', 'papermill') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "23 runs: 0 done, 23 to run" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_plan_estimate_uses_the_measured_figures_where_nothing_ran(tmp_path):
    specs = experiments.plan("paper", root=tmp_path)
    lines = plan_report.estimate(specs, tmp_path)
    images = sum(s.images for s in specs)
    assert len(lines) == 1
    assert f"{images:,} training images" in lines[0]
    assert f"{images / 8448 / 3600:,.1f} h GPU time at 8,448 images/s" in lines[0]
    assert f"up to {images / 3300 / 3600:,.1f} h where the loader limits" in lines[0]
    compiled = experiments.pretrain_spec("paper", root=tmp_path, compile=True)
    assert "12,218 images/s" in plan_report.estimate([compiled], tmp_path)[0]
    base = experiments.plan("paper-21k", root=tmp_path)
    assert "no measured figure for vit_base_patch16_224 at 224 px" in plan_report.estimate(base, tmp_path)[0]


def test_progress_is_one_line_rewritten_on_a_terminal_and_lines_elsewhere():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        line = cluster.ProgressLine(stream)
        line("[study run] slurm: 1 waiting, 1 queued, 0 running, 0 done, 0 failed")
        line.log("[study run] submitted job 7: pretrain ofdb C4 s0")
        line("[study run] slurm: 0 waiting, 1 queued, 1 running, 0 done, 0 failed")
        line.close()
    assert tty.getvalue().count("\r\033[K") == 3 and tty.getvalue().endswith("0 failed\n")
    assert pipe.getvalue().splitlines() == [
        "[study run] slurm: 1 waiting, 1 queued, 0 running, 0 done, 0 failed",
        "[study run] submitted job 7: pretrain ofdb C4 s0",
        "[study run] slurm: 0 waiting, 1 queued, 1 running, 0 done, 0 failed",
    ]


def test_study_keeps_its_old_form_and_takes_plan_and_run():
    parser = build_parser()
    old = parser.parse_args(["study", "--profile", "smoke", "--book"])
    assert old.action is None and old.book and old.executor is None
    plan = parser.parse_args(["study", "plan", "--profile", "smoke", "--root", "r"])
    assert plan.action == "plan" and plan.run_root == "r"
    run = parser.parse_args(
        ["study", "run", "--profile", "smoke", "--executor", "slurm", "--slurm", "qos=high"]
    )
    assert run.action == "run" and run.slurm == ["qos=high"]
    # without plan or run the command is what it was: the notebooks (``notebooks`` is never called)
    assert cluster_cli.dispatch(old, notebooks=None) is None


def test_plan_and_run_give_the_fine_tunings_the_downstream_root(tmp_path):
    args = build_parser().parse_args(
        ["study", "plan", "--profile", "smoke", "--root", str(tmp_path), "--downstream-root", "/data/c100"]
    )
    specs, _ = cluster_cli._specs(args, tmp_path)
    tuned = [s for s in specs if s.phase == "finetune"]
    assert tuned and all(s.cfg.data_root == "/data/c100" for s in tuned)


@pytest.mark.parametrize(
    "args, message",
    [
        (["study", "--profile", "smoke", "--executor", "slurm"], "executor: only with 'study run'"),
        (["study", "run", "--profile", "smoke"], "study run needs --executor"),
        (["study", "run", "--profile", "smoke", *SLURM_ARGS, "--slurm", "dependency=afterok:1"], "slurm:"),
        (["study", "run", "--profile", "smoke", *SLURM_ARGS, "--slurm", "=x"], "expected KEY=VALUE"),
        (
            ["study", "run", "--profile", "smoke", "--executor", "slurm", "--gpus-per-run", "3"],
            "does not divide",
        ),
        (["study", "run", "--profile", "smoke", *SLURM_ARGS, "--max-parallel", "0"], "max-parallel"),
    ],
)
def test_study_run_refuses_bad_options_before_submitting(args, message, tmp_path, capsys):
    code, _, err = _run_cli([*args, "--root", str(tmp_path)], capsys)
    assert code == 2
    assert message in err
    assert not list(tmp_path.rglob("job.json"))


# ----------------------------------------------------------------------------------------------
# The local executor.


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory):
    """The three runs through the local executor, two jobs at a time on the CPU."""
    root = tmp_path_factory.mktemp("local") / "runs"
    specs = three_runs(root)
    seen = {}

    def on_submit(unit, job_id):  # what had finished when each unit was submitted
        seen[unit.label] = {s.label for s in specs if s.finished}

    report = cluster.execute(
        specs,
        root,
        "local",
        cluster.ClusterOptions(**{**CPU_JOBS, "max_parallel": 2}),
        log=lambda line: None,
        on_submit=on_submit,
    )
    return root, specs, report, seen


def test_local_executor_runs_the_plan_two_at_a_time(local_runs, tmp_path):
    root, specs, report, seen = local_runs
    assert report.ok and {u.key for u in report.done} >= {s.path for s in specs}
    pre, fine, scratch = specs
    assert seen[scratch.label] == set()  # started beside the pre-training
    assert pre.label in seen[fine.label]  # the fine-tuning waited for it
    for s in specs:
        record = json.loads((s.path / "local" / "job.json").read_text())
        assert (s.path / "local" / f"{record['job_id']}_0_log.out").is_file()
    # the same weights as training in this process
    ref_root = tmp_path / "runs"
    ref = three_runs(ref_root)
    experiments.run_plan(ref, log=lambda line: None)
    assert weights(ref, ref_root) == weights(specs, root)


def test_plan_lists_done_and_missing_after_a_partial_run(local_runs, capsys):
    root = local_runs[0]
    code, out, _ = _run_cli(["study", "plan", "--profile", "smoke", "--root", str(root)], capsys)
    assert code == 0
    assert "23 runs: 3 done, 20 to run" in out
    for s in local_runs[1]:
        line = next(ln for ln in out.splitlines() if str(s.path.relative_to(root)) in ln)
        assert " done " in line
    assert "measured: median of" in out and f"in {root}" in out
    fresh = experiments.plan("smoke", root=root)
    missing = [s for s in fresh if not s.finished]
    assert len(missing) == 20 and all(str(s.path.relative_to(root)) in out for s in missing)
    # finished runs need no data job: nothing left to run for these three
    assert [u.kind for u in units.units_of(local_runs[1], root)] == ["pretrain", "finetune", "finetune"]


# ----------------------------------------------------------------------------------------------
# SLURM.


def test_slurm_runs_the_plan_with_fine_tuning_held_by_dependencies(slurm_cluster, local_runs, tmp_path):
    root = tmp_path / "runs"
    specs = three_runs(root)
    pre, fine, scratch = specs
    finished_at_submit = {}

    def on_submit(unit, job_id):
        finished_at_submit[unit.label] = pre.finished

    report = cluster.execute(
        specs, root, "slurm", cluster.ClusterOptions(**CPU_JOBS), log=lambda line: None, on_submit=on_submit
    )
    assert report.ok, [f.line() for f in report.failed]
    pre_job, fine_job = report.jobs[pre.path], report.jobs[fine.path]
    # submitted before its pre-training finished, held by SLURM until it did
    assert finished_at_submit[fine.label] is False
    script = (fine.path / "slurm" / f"{fine_job}_submission.sh").read_text()
    assert f"#SBATCH --dependency=afterok:{pre_job}" in script
    assert slurm_cluster.job(fine_job)["StartTime"] >= slurm_cluster.job(pre_job)["EndTime"]
    for s in specs:
        job = report.jobs[s.path]
        assert slurm_cluster.job(job)["JobState"] == "COMPLETED"
        assert (s.path / "slurm" / f"{job}_0_log.out").is_file()
        assert json.loads((s.path / "slurm" / "job.json").read_text())["job_id"] == job
    # the same weights as the local executor's
    assert weights(specs, root) == weights(local_runs[1], local_runs[0])
    # the same command again submits nothing
    again = cluster.execute(specs, root, "slurm", cluster.ClusterOptions(**CPU_JOBS), log=lambda line: None)
    assert again.ok and not again.jobs and {u.key for u in again.finished_before} == {s.path for s in specs}


def test_a_failed_job_makes_study_run_exit_non_zero_naming_run_and_log(
    slurm_cluster,
    tmp_path,
    monkeypatch,
    capsys,
):
    root = tmp_path / "runs"
    bad_pre = experiments.pretrain_spec("smoke", str(tmp_path / "no-such-folder"), root=root)
    bad_fine = experiments.finetune_spec(
        "smoke", "scratch", root=root, dataset=f"imagefolder:{tmp_path / 'nothing'}"
    )
    after_bad = experiments.finetune_spec("smoke", bad_pre, root=root)
    monkeypatch.setattr(experiments, "plan", lambda *a, **k: [bad_pre, bad_fine, after_bad])
    code, out, err = _run_cli(
        ["study", "run", "--profile", "smoke", *SLURM_ARGS, "--root", str(root)], capsys
    )
    assert code == 1
    assert "3 job(s) failed or could not run" in err
    for s in (bad_pre, bad_fine):
        job = json.loads((s.path / "slurm" / "job.json").read_text())["job_id"]
        log = s.path / "slurm" / f"{job}_0_log.err"
        line = next(ln for ln in err.splitlines() if s.label in ln)
        assert f"job {job} failed: ParamError" in line and f"log: {log}" in line
        assert "ParamError" in log.read_text()
    assert f"{after_bad.label}: cancelled: {bad_pre.label} failed" in err
    assert not any(s.finished for s in (bad_pre, bad_fine, after_bad))


def test_a_unit_sbatch_refuses_is_named_with_the_reason(slurm_cluster, tmp_path, capsys):
    args = [
        "study",
        "run",
        "--profile",
        "smoke",
        *SLURM_ARGS,
        "--partition",
        "nosuch",
        "--root",
        str(tmp_path),
    ]
    code, _, err = _run_cli(args, capsys)
    assert code == 1
    refused = [ln for ln in err.splitlines() if "not submitted" in ln]
    assert refused and all("invalid partition" in ln.lower() for ln in refused)
    assert "finetune ofdb C4 s0: not run: pretrain ofdb C4 s0 failed" in err


def test_gpu_jobs_on_a_partition_without_gpus_are_refused_before_submitting(slurm_cluster, tmp_path, capsys):
    args = ["study", "run", "--profile", "smoke", "--executor", "slurm", "--gpus-per-run", "1"]
    code, _, err = _run_cli([*args, "--root", str(tmp_path / "runs")], capsys)
    assert code == 2
    assert "gpus-per-run: the default partition has no GPUs" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_no_reachable_controller_is_one_line(tmp_path, capsys, monkeypatch):
    import shutil as _shutil

    if _shutil.which("sinfo") is None or _shutil.which("sbatch") is None:
        pytest.skip("SLURM's client commands are not installed")
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=nowhere\nSlurmctldHost=localhost\nSlurmctldPort=1\nMessageTimeout=2\n"
        "AuthType=auth/munge\nNodeName=localhost CPUs=1 State=UNKNOWN\n"
        "PartitionName=p Nodes=localhost Default=YES State=UP\n"
    )
    monkeypatch.setenv("SLURM_CONF", str(conf))
    code, _, err = _run_cli(
        [*["study", "run", "--profile", "smoke"], *SLURM_ARGS, "--root", str(tmp_path / "r")], capsys
    )
    assert code == 2
    assert "executor: slurm: " in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def _watch(spec: experiments.RunSpec, step: int, action) -> threading.Thread:
    """Call ``action()`` once the run has checkpointed at ``step`` or later."""

    def loop():
        end = time.monotonic() + 300
        while time.monotonic() < end:
            ckpt, metrics = spec.path / "checkpoint.pt", spec.path / "metrics.jsonl"
            if ckpt.is_file() and metrics.is_file():
                # whole lines only: the job may be half-way through writing the last one
                lines = [ln for ln in metrics.read_text().split("\n")[:-1] if ln.strip()]
                if lines and json.loads(lines[-1])["step"] >= step:
                    action()
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _long_run(root) -> experiments.RunSpec:
    return experiments.pretrain_spec("smoke", "ofdb", root=root, steps=600, log_every=1, checkpoint_every=10)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    spec = _long_run(root)
    experiments.train_spec(spec)
    return spec.summary()["weights_sha256"]


@pytest.mark.slow
def test_a_cancelled_job_resubmitted_resumes_to_the_same_weights(slurm_cluster, uninterrupted, tmp_path):
    import torch

    root = tmp_path / "runs"
    spec = _long_run(root)
    killed = {}

    def kill(unit, job_id):
        def cancel():
            killed["step"] = torch.load(spec.path / "checkpoint.pt", weights_only=True)["step"]
            subprocess.run(["scancel", job_id], check=True)

        _watch(spec, 100, cancel)

    first = cluster.execute(
        [spec], root, "slurm", cluster.ClusterOptions(**CPU_JOBS), log=lambda line: None, on_submit=kill
    )
    assert not first.ok and "CANCELLED" in first.failed[0].reason and not spec.finished
    assert 0 < killed["step"] < 600
    state = plan_report.plan_lines([spec], root)[-1].state  # a half-written run is not finished
    assert state.startswith("started (step ") and state.endswith(" of 600)")
    second = cluster.execute([spec], root, "slurm", cluster.ClusterOptions(**CPU_JOBS), log=lambda line: None)
    assert second.ok and second.jobs[spec.path] != first.jobs[spec.path]
    assert spec.summary()["weights_sha256"] == uninterrupted


@pytest.mark.slow
def test_a_preempted_job_requeues_itself_and_resumes_to_the_same_weights(
    slurm_cluster, uninterrupted, tmp_path
):
    root = tmp_path / "runs"
    spec = _long_run(root)
    submitted = []

    def preempt(unit, job_id):
        submitted.append(job_id)

        def signal():
            slurm_cluster.run("scancel", "--signal=USR2", job_id)  # what SLURM sends before pre-emption
            end = time.monotonic() + 60
            while slurm_cluster.job(job_id)["JobState"] != "PENDING" and time.monotonic() < end:
                time.sleep(0.2)
            # a requeued job waits for a begin time about two minutes ahead: start it now
            slurm_cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")

        _watch(spec, 100, signal)

    # 30 minutes: a signal this early is a pre-emption to submitit (a late one: the time limit)
    options = cluster.ClusterOptions(**{**CPU_JOBS, "time_min": 30})
    report = cluster.execute([spec], root, "slurm", options, log=lambda line: None, on_submit=preempt)
    assert report.ok and submitted == [report.jobs[spec.path]]
    log = (spec.path / "slurm" / f"{submitted[0]}_0_log.out").read_text()
    assert "this job is preempted" in log and f"Requeued job {submitted[0]}" in log
    assert "resuming from the checkpoint at step" in log
    assert slurm_cluster.job(submitted[0])["Restarts"] == "1"
    assert spec.summary()["weights_sha256"] == uninterrupted


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_a_run_over_two_processes_is_one_ddp_job_keeping_the_global_batch(executor, request, tmp_path):
    if executor == "slurm":
        request.getfixturevalue("slurm_cluster")
    root = tmp_path / "runs"
    spec = experiments.pretrain_spec("smoke", "ofdb", root=root)
    options = cluster.ClusterOptions(**{**CPU_JOBS, "processes": 2})
    report = cluster.execute([spec], root, executor, options, log=lambda line: None)
    assert report.ok, [f.line() for f in report.failed]
    summary = spec.summary()
    assert summary["world_size"] == 2 and summary["global_batch"] == spec.cfg.batch_size
    job = report.jobs[spec.path]
    assert (spec.path / executor / f"{job}_1_log.out").is_file()  # the second process's log


@pytest.mark.slow
def test_the_smoke_study_end_to_end_on_slurm_matches_the_local_executor(slurm_cluster, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OFDB_STUDY_CACHE": str(tmp_path / "cache"),  # a fresh search cache: the search runs as a job
    }

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "ofdb_study", "study", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )

    slurm_root, local_root = tmp_path / "slurm-runs", tmp_path / "local-runs"
    done = cli("run", "--profile", "smoke", *SLURM_ARGS, "--root", str(slurm_root))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "every run of the plan has finished (25 jobs now" in done.stdout  # 23 runs, the search, a 3D tree
    local = cli(
        "run", "--profile", "smoke", "--executor", "local", "--max-parallel", "2", "--root", str(local_root)
    )
    assert local.returncode == 0, local.stderr[-3000:]
    specs = experiments.plan("smoke", root=slurm_root)
    assert weights(specs, slurm_root) == weights(experiments.plan("smoke", root=local_root), local_root)
    plan = cli("plan", "--profile", "smoke", "--root", str(slurm_root))
    assert "23 runs: 23 done, 0 to run" in plan.stdout and "nothing to run" in plan.stdout
    again = cli("run", "--profile", "smoke", *SLURM_ARGS, "--root", str(slurm_root))
    assert again.returncode == 0 and "submitted" not in again.stdout


@pytest.mark.slow
def test_running_again_follows_a_queued_job_instead_of_submitting_it_twice(slurm_cluster, tmp_path):
    root = tmp_path / "runs"
    spec = experiments.finetune_spec("smoke", "scratch", root=root)

    def stop(unit, job_id):
        raise KeyboardInterrupt  # the command dies right after submitting

    with pytest.raises(KeyboardInterrupt):
        cluster.execute(
            [spec], root, "slurm", cluster.ClusterOptions(**CPU_JOBS), log=lambda line: None, on_submit=stop
        )
    first = json.loads((spec.path / "slurm" / "job.json").read_text())["job_id"]
    lines = []
    report = cluster.execute(
        [spec], root, "slurm", cluster.ClusterOptions(**CPU_JOBS), log=lines.append, on_submit=stop
    )
    assert report.ok and report.jobs[spec.path] == first
    assert f"[study run] following job {first}: {spec.label}" in lines


def test_local_alive_without_proc_asks_the_process_table(monkeypatch):
    """Where there is no /proc (macOS), a local job is alive while its process exists."""
    import os
    import socket
    from pathlib import Path

    from ofdb_study.study.backends import ClusterOptions, LocalBackend

    backend = LocalBackend(ClusterOptions(gpus_per_run=0), gpus=[])
    real = Path.is_dir
    monkeypatch.setattr(Path, "is_dir", lambda self: False if str(self) == "/proc/self" else real(self))
    host = socket.gethostname()
    assert backend.alive({"host": host, "job_id": os.getpid()})
    assert not backend.alive({"host": host, "job_id": 2**22 + 12345})
    assert not backend.alive({"host": "elsewhere", "job_id": os.getpid()})


def test_plan_gives_the_hours_of_each_row(tmp_path):
    specs = experiments.plan("paper-short", root=tmp_path)
    lines = plan_report.row_hours(specs, tmp_path)
    rows = {ln.split(":", 1)[0] for ln in lines}
    assert rows == {s.row for s in specs}
    images = {r: sum(s.images for s in specs if s.row == r and s.phase == "pretrain") for r in rows}
    fdb = next(ln for ln in lines if ln.startswith("fractaldb:"))
    from ofdb_study.config import get_profile

    seeds = len(get_profile("paper-short").study.seeds)
    assert f"{images['fractaldb'] / 8448 / 3600:,.1f} h GPU" in fdb and f"finetune {seeds} x" in fdb
    assert "per row (missing runs, every seed):" in plan_report.plan_report(
        specs, tmp_path, profile="paper-short"
    )
