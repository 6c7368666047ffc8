"""``distill train`` under ``accelerate launch`` with 2 CPU processes (gloo): the run's files are written by the main
process only, and a run that lost a process resumes from its last checkpoint when launched again.

Who wrote what is seen through Python's audit hooks (tests/launched_train.py): files opened for writing and renames
done from Python. Writes made inside native code (safetensors, ``torch.save``) do not pass through them."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, write_recipe

HELPER = REPO / "tests" / "launched_train.py"
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
LAUNCH += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def run(home, recipe, *, processes: int, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}
    base |= {"DISTILL_HOME": str(home / "home"), "AUDIT_UNDER": str(home / "out"), "AUDIT_DIR": str(home / "audit")}
    command = [*LAUNCH] if processes == 2 else [sys.executable]
    command += [str(HELPER), "train", str(recipe), "--no-swap"]
    return subprocess.run(command, env=base | env, cwd=REPO, capture_output=True, text=True, timeout=300)


def written(home, rank: str) -> set[str]:
    return set((home / "audit" / f"{rank}.txt").read_text(encoding="utf-8").split())


def files(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def logged_steps(path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if "loss" in json.loads(line)]


def test_only_the_main_process_writes_the_run_files(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    recipe = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, epochs=2, save_every=1)
    alone = run(home, recipe, processes=1)
    assert alone.returncode == 0, alone.stderr[-3000:]
    shutil.move(home / "out", home / "out-alone")

    # Process 1 saves each checkpoint late: the main process must wait for its files before it moves the folder.
    result = run(home, recipe, processes=2, SLOW_RANK="1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert written(home, "1") == set()
    main = written(home, "0")
    assert {"config.yaml", "train_log.jsonl", "student/README.md", "student/metrics.json"} <= main
    assert any(p.startswith(".checkpoint.tmp/") for p in main)  # it checkpointed (and then removed the checkpoint)
    out, out_alone = home / "out", home / "out-alone"
    assert files(out) == files(out_alone) and not (out / "checkpoint").exists()
    assert (out / "config.yaml").read_bytes() == (out_alone / "config.yaml").read_bytes()
    # Each step logged once (two writers would each append it), as many steps as each process trained.
    assert logged_steps(out / "train_log.jsonl") == [1, 2] and logged_steps(out_alone / "train_log.jsonl") == [
        1,
        2,
        3,
        4,
    ]


@pytest.mark.slow
def test_a_run_that_lost_a_process_resumes_from_its_last_checkpoint(
    home, tiny_embedder, tiny_embedder_wide, tiny_squad
):
    recipe = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, epochs=4, save_every=2)
    killed = run(home, recipe, processes=2, DIE_RANK="1")  # process 1 is SIGKILLed after the step-2 checkpoint
    assert killed.returncode != 0
    checkpoint = home / "out" / "checkpoint"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 2
    assert not (home / "out" / "student" / "metrics.json").exists()

    resumed = run(home, recipe, processes=2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout and "at step 2/4" in resumed.stdout
    out = home / "out"
    assert logged_steps(out / "train_log.jsonl") == [1, 2, 3, 4]
    assert json.loads((out / "student" / "metrics.json").read_text())["train"]["steps"] == 4
    assert not checkpoint.exists()


@pytest.mark.slow
def test_the_multi_node_config_trains_over_two_machines_on_one_host(
    home, tiny_embedder, tiny_embedder_wide, tiny_squad
):
    """configs/accelerate/multi-node.yaml with num_machines 2, one process each, both "machines" on 127.0.0.1."""
    import socket

    recipe = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, epochs=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    base = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}
    base |= {"DISTILL_HOME": str(home / "home"), "AUDIT_UNDER": str(home / "out"), "AUDIT_DIR": str(home / "audit")}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "configs/accelerate/multi-node.yaml"]
    launch += ["--num_processes", "2", "--main_process_ip", "127.0.0.1", "--main_process_port", port]
    machines = [
        subprocess.Popen(
            [*launch, "--machine_rank", str(rank), str(HELPER), "train", str(recipe), "--no-swap"],
            env=base,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [m.communicate(timeout=300) for m in machines]
    assert [m.returncode for m in machines] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert written(home, "1") == set() and "config.yaml" in written(home, "0")
    assert json.loads((home / "out" / "student" / "metrics.json").read_text())["train"]["steps"] == 2
