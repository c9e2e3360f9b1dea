"""Replicas behind nginx (scripts/cluster.py, run small): nothing fails and nothing is
logged twice or lost across a version publish and a replica stopped under load."""

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from careerbot.embedding import OnnxEmbedder
from tests.conftest import ROOT

NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
POSTGRES = glob.glob("/usr/lib/postgresql/*/bin/initdb")


@pytest.mark.model
@pytest.mark.skipif(not NGINX or not POSTGRES, reason="needs Debian's nginx and postgresql")
def test_replicas_behind_nginx_answer_everything_across_a_publish_and_a_stopped_replica(
    real_embedder: OnnxEmbedder, encoder_dir: Path
) -> None:
    # real_embedder has exported the model into encoder_dir: the script's builds reuse it.
    script = [sys.executable, str(ROOT / "scripts" / "cluster.py"), "--encoders", str(encoder_dir)]
    run = subprocess.run(
        [*script, "--replicas", "2", "--clients", "4", "--seconds", "10"],
        capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr  # 2: the set-up failed
    report = json.loads(run.stdout)
    assert run.returncode == 0, report["checks"]
    assert report["failures"] == {}
    assert report["answered"] == report["requests"] > 100
    assert report["log"]["records"] == report["answered"]
    assert report["log"]["answers_with_one_record"] == report["answered"]
    assert report["stopped"]["signal"] == "SIGTERM"
    # Both versions answered, and the replica left serves the new one.
    assert set(report["answers_by_version"]) == {
        report["published"]["from"],
        report["published"]["version"],
    }
    assert report["versions_served_at_end"] == {"2": report["published"]["version"]}
    assert report["clients_seen_by_replicas"] == [f"127.0.0.{n}" for n in range(2, 6)]
