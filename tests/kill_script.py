"""A helper module (not a test): the script that kills a training run mid-step."""

#: Runs the CLI in a fresh process that SIGKILLs itself inside optimizer step KILL_AT (1-based):
#: after the backward pass, before the weights change. The hook lives here, not in the library.
KILL_SCRIPT = """
import os, signal, sys
from ofdb_study import cli
from ofdb_study.train import engine

KILL_AT = int(sys.argv[1])
real = engine.build_optimization


def dying(*args, **kwargs):
    optimizer, scheduler, mixup, criterion = real(*args, **kwargs)
    step, calls = optimizer.step, []

    def step_or_die(*a, **k):
        calls.append(1)
        if len(calls) == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(*a, **k)

    optimizer.step = step_or_die
    return optimizer, scheduler, mixup, criterion


engine.build_optimization = dying
sys.exit(cli.main(sys.argv[2:]))
"""
