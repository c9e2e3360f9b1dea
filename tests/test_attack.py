"""The attack script of issue 12: loopback only, and every case holds in a quick run."""

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from careerbot.embedding import OnnxEmbedder
from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "attack.py"


def attack_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("attack", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0", "example.org", "::2"])
def test_the_attack_only_serves_on_loopback(host: str) -> None:
    with pytest.raises(SystemExit, match="only loopback addresses"):
        attack_script().main(["--host", host])


@pytest.mark.model
def test_every_attack_case_holds_in_a_quick_run(
    tmp_path: Path, encoder_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    """Slow: about a minute. Starts several servers and builds; 2d stalls for 3 s only."""
    # real_embedder has put the model's ONNX export in encoder_dir: the script copies it
    # instead of exporting again. Its work folder stays in tmp_path, with the servers' logs.
    command = [
        sys.executable, str(SCRIPT), "--quick", "--stall-seconds", "3", "--max-seconds", "170",
        "--encoders", str(encoder_dir), "--work", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    report = done.stdout + done.stderr[-2000:]
    cases = [line for line in done.stdout.splitlines() if line.startswith(("held ", "BROKEN "))]
    assert len(cases) == len(attack_script().CASES), report
    assert [line for line in cases if not line.startswith("held   ")] == [], report
    assert done.returncode == 0, report
    assert done.stdout.splitlines()[-1].startswith(f"{len(cases)} of {len(cases)} held"), report
