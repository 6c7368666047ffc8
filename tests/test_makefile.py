"""The README's `make demo`, read as make would run it (`make -n`): each step uses what the one before it wrote."""

import re
import shutil
import subprocess

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def test_make_demo_serves_and_exports_the_student_it_trained():
    # `distill train` saves the student in OUTPUT/student (beside OUTPUT/pipelines); swapping or exporting OUTPUT
    # itself fails on a fresh machine with "has neither config.json nor modules.json".
    out = subprocess.run(["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    trained = re.search(r"distill train \S+ .*\boutput=(\S+)", out).group(1)
    assert f"--model {trained}/student " in out
    assert f"distill export {trained}/student " in out
    assert not re.search(rf"(--model|distill export) {re.escape(trained)}\s", out)
