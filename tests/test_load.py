"""The load script: bounded, loopback only, and a rebuild under load fails nothing."""

import json
import shutil
from pathlib import Path

import pytest

from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder
from careerbot.index import build_index
from tests.conftest import CORPUS, script
from tests.test_widget import Served


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.org", "http://[::2]:80"])
def test_only_loopback_is_a_target(url: str) -> None:
    with pytest.raises(SystemExit, match="only loopback addresses"):
        script("load").main(["--url", url, "--seconds", "1"])


@pytest.mark.model
def test_load_with_a_rebuild_fails_nothing_and_ends_on_the_new_version(
    tmp_path: Path, real_embedder: OnnxEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(CORPUS, tmp_path / "corpus")
    settings = Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        rate_limit_per_minute=0,
        reload_seconds=0.2,
    )
    build_index(settings, real_embedder)
    served = Served(create_app(settings, real_embedder))
    try:
        dirs = ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
        run = ["--url", served.url, "--clients", "4", "--seconds", "4", "--rebuilds", "1"]
        code = script("load").main([*run, *dirs])
    finally:
        served.stop()
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["errors"] == {}
    assert set(report["statuses"]) == {"ask 200", "health 200"}
    assert report["statuses"]["ask 200"] > 4
    assert report["ends_on_latest_version"] is True
    assert len(report["index_versions_seen"]) == 2
    assert report["ask_ms"]["p50"] > 0 and report["health_ms"]["p99"] > 0
