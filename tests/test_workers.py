"""careerbot serve --workers: forked workers on one port, each swapping versions itself."""

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from careerbot import cli
from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder
from careerbot.index import build_index
from tests.test_reliability import wait_for


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_workers(settings: Settings, port: int, **env: str) -> subprocess.Popen[str]:
    """`careerbot serve --workers 2` on loopback, once both workers answer."""
    environment = {**os.environ, "CAREERBOT_RATE_LIMIT_PER_MINUTE": "0", **env}
    command = [sys.executable, "-m", "careerbot", "serve", "--port", str(port), "--workers", "2"]
    command += ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    server = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), 60)
        wait_for(lambda: len(children(server.pid)) == 2)
    except BaseException:
        server.kill()
        server.communicate()
        raise
    return server


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.model
def test_two_workers_serve_one_port_and_each_swaps_to_a_new_version(
    settings: Settings, encoder_dir: Path, real_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"min_score": 0.3})
    shutil.copytree(encoder_dir, settings.index_dir / "encoders")
    build_index(settings, real_embedder)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "CAREERBOT_RELOAD_SECONDS": "0.2",
        "CAREERBOT_RATE_LIMIT_PER_MINUTE": "0",
        "CAREERBOT_QUESTION_LOG": "off",
    }
    command = [sys.executable, "-m", "careerbot", "serve", "--port", str(port), "--workers", "2"]
    command += ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 60)
        wait_for(lambda: len(children(server.pid)) == 2)
        workers = children(server.pid)
        # A new connection each time, so both workers take some of them.
        for _ in range(20):
            reply = httpx.post(f"{url}/ask", json={"question": "core values interviews"})
            assert reply.status_code == 200 and reply.json()["answered"]
        (settings.corpus_dir / "ml-engineer-career-qa.speakers.toml").unlink()
        second = build_index(settings, real_embedder).index_dir.name

        def all_swapped() -> bool:
            versions = {httpx.get(f"{url}/health").json()["index_version"] for _ in range(20)}
            return versions == {second}

        wait_for(all_swapped, 30)
        assert sorted(children(server.pid)) == sorted(workers)  # swapped, not restarted
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "Booting worker" in err and "Shutting down: Master" in err
    assert re.search(r"Listening at: http://127\.0\.0\.1:\d+ \(\d+\)", err)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_several_workers_with_the_torch_encoder_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="CAREERBOT_ENCODER=torch serves one worker"):
        Settings(workers=2, encoder="torch")
    monkeypatch.setenv("CAREERBOT_ENCODER", "torch")
    assert cli.main(["serve", "--workers", "2"]) == 2
    assert capsys.readouterr().err == (
        "careerbot: error: invalid settings: CAREERBOT_ENCODER=torch serves one worker "
        "(--workers or CAREERBOT_WORKERS over 1 need onnx or onnx-int8: torch's threads do "
        "not survive a fork)\n"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_before_anything_loads(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    from careerbot import cli

    monkeypatch.setattr(cli, "load_embedder", lambda settings: pytest.fail("loaded the model"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code = cli.main(
            ["serve", "--workers", workers, "--port", port, "--index-dir", str(tmp_path)]
        )
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"careerbot: error: cannot listen on 127.0.0.1 port {port} (Address already in use)"
    ]


@pytest.mark.model
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGQUIT])
def test_sigint_or_sigquit_to_the_master_stops_the_workers_at_once_with_their_logs(
    settings: Settings,
    encoder_dir: Path,
    real_embedder: OnnxEmbedder,
    stop: signal.Signals,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # gunicorn's quick shutdown sends the workers SIGQUIT; they used to ignore it, answer
    # on for graceful_timeout (30 s) and be killed, their queued question logs lost.
    shutil.copytree(encoder_dir, settings.index_dir / "encoders")
    build_index(settings, real_embedder)
    port = free_port()
    server = serve_workers(settings, port)
    workers = children(server.pid)
    try:
        ids = []
        for number in range(10):
            reply = httpx.post(f"http://127.0.0.1:{port}/ask", json={"question": f"cv {number}"})
            ids.append(reply.json()["id"])
        started = time.monotonic()
        server.send_signal(stop)
        _, err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert time.monotonic() - started < 10, err
    assert server.returncode == 0, err
    assert "SIGKILL" not in err and "Traceback" not in err, err
    assert "POST /ask" not in err + capfd.readouterr().out  # no access log unless asked
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    with sqlite3.connect(settings.index_dir / "questions.sqlite") as log:
        logged = {row[0] for row in log.execute("SELECT id FROM asks")}
    assert set(ids) <= logged


@pytest.mark.model
def test_a_replacement_worker_serves_the_version_built_while_it_was_down(
    settings: Settings, encoder_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    # Workers are forked from the main process, which holds the version it loaded at
    # start; a replacement used to serve that one (its folder since removed, /health
    # "ok") until its first look at CURRENT, a reload interval later.
    settings = settings.model_copy(update={"min_score": 0.3})
    shutil.copytree(encoder_dir, settings.index_dir / "encoders")
    first = build_index(settings, real_embedder).index_dir.name
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Workers look at CURRENT only every 60 s: a replacement must not wait for that.
    server = serve_workers(settings, port, CAREERBOT_RELOAD_SECONDS="60")
    try:
        (settings.corpus_dir / "ml-engineer-career-qa.speakers.toml").unlink()
        second = build_index(settings, real_embedder).index_dir.name
        assert second != first
        old = children(server.pid)
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: len(set(children(server.pid)) - set(old)) == 2, 30)
        wait_for(lambda: healthy(url), 30)
        # A new connection each time, so both replacements answer some of them.
        replies = [httpx.get(f"{url}/health").json() for _ in range(20)]
        assert {(r["index_version"], r["status"]) for r in replies} == {(second, "ok")}
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err


@pytest.mark.model
def test_workers_write_an_access_log_only_when_asked(
    settings: Settings,
    encoder_dir: Path,
    real_embedder: OnnxEmbedder,
    capfd: pytest.CaptureFixture[str],
) -> None:
    shutil.copytree(encoder_dir, settings.index_dir / "encoders")
    build_index(settings, real_embedder)
    port = free_port()
    server = serve_workers(settings, port, CAREERBOT_ACCESS_LOG="true")
    try:
        httpx.post(f"http://127.0.0.1:{port}/ask", json={"question": "cv tips"})
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    finally:
        server.kill()
    # On stdout, as a single uvicorn process writes it.
    assert '"POST /ask HTTP/1.1" 200' in capfd.readouterr().out, err
