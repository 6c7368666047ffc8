"""``distill train`` as run by tests/training/test_train_multi_process.py in each launched process, with two test hooks:

- every file this process opens for writing, or renames into place, under ``AUDIT_UNDER`` is listed in
  ``AUDIT_DIR/<rank>.txt`` when it exits (Python's audit hooks: ``open`` and ``os.rename`` events);
- with ``DIE_RANK`` set, that process kills itself (SIGKILL, no clean-up) right after the first checkpoint is saved;
- with ``SLOW_RANK`` set, that process starts saving each checkpoint two seconds late (a loaded machine's worst case).

Usage: python tests/launched_train.py train RECIPE [distill train options]
"""

import atexit
import os
import signal
import sys
from pathlib import Path

RANK = os.environ.get("RANK", "alone")
UNDER = os.path.realpath(os.environ["AUDIT_UNDER"])
written: set[str] = set()


def audit(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        if not isinstance(path, str | bytes | os.PathLike):
            return
        writing = (mode is not None and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if not writing:
            return
    elif event == "os.rename":
        path = args[1]
    else:
        return
    real = os.path.realpath(os.fsdecode(path))
    if real.startswith(UNDER + os.sep):
        written.add(os.path.relpath(real, UNDER))


def report() -> None:
    folder = Path(os.environ["AUDIT_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{RANK}.txt").write_text("".join(p + "\n" for p in sorted(written)), encoding="utf-8")


def die_after_first_checkpoint() -> None:
    from distill.training import trainer

    original = trainer.Trainer._save_checkpoint

    def save_then_die(self, state):
        original(self, state)
        report()
        os.kill(os.getpid(), signal.SIGKILL)

    trainer.Trainer._save_checkpoint = save_then_die


def save_checkpoints_late() -> None:
    import time

    from accelerate import Accelerator

    original = Accelerator.save_state

    def late(self, *args, **kwargs):
        time.sleep(2)
        return original(self, *args, **kwargs)

    Accelerator.save_state = late


if __name__ == "__main__":
    sys.addaudithook(audit)
    atexit.register(report)
    if os.environ.get("DIE_RANK") == RANK:
        die_after_first_checkpoint()
    if os.environ.get("SLOW_RANK") == RANK:
        save_checkpoints_late()
    from distill.cli import main

    sys.exit(main(sys.argv[1:]))
