import json
import os
import re
import runpy
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from careerbot import CareerbotError, cli, version
from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder
from careerbot.version import current_version
from tests.conftest import DATA, ROOT, FakeEmbedder, served_version


@pytest.fixture
def use_fake(monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder) -> FakeEmbedder:
    monkeypatch.setattr(cli, "load_embedder", lambda settings: fake_embedder)
    monkeypatch.setenv("CAREERBOT_MIN_SCORE", "0")  # fake vectors are not calibrated
    return fake_embedder


@pytest.fixture
def use_real(monkeypatch: pytest.MonkeyPatch, real_embedder: OnnxEmbedder) -> None:
    monkeypatch.setattr(cli, "load_embedder", lambda settings: real_embedder)


def dirs(settings: Settings) -> list[str]:
    return ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]


def test_build_prints_a_summary_of_what_it_indexed(
    settings: Settings, use_fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["build", *dirs(settings)]) == 0
    err = capsys.readouterr().err
    assert "documents: 1, speakers: 2, answers: 9, passages: " in err
    assert (served_version(settings.index_dir) / "manifest.json").exists()


def test_build_warns_of_what_a_transcript_leaves_out(
    settings: Settings, use_fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    (speakers,) = settings.corpus_dir.glob("*.speakers.toml")
    speakers.write_text(speakers.read_text() + '\n[speakers.Ghost]\nname = "Gus Ghost"\n')
    assert cli.main(["build", *dirs(settings)]) == 0
    err = capsys.readouterr().err
    assert "careerbot: warning: corpus/ml-engineer-career-qa.txt: " in err
    assert "lists 'Gus Ghost', who answers no question" in err
    assert "answers: 9" in err


def test_build_refuses_a_transcript_over_the_size_setting(
    settings: Settings,
    use_fake: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAREERBOT_MAX_TRANSCRIPT_MB", "0.005")
    assert cli.main(["build", *dirs(settings)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "over the limit of 5,242 bytes for one transcript" in err[-1]
    assert current_version(settings.index_dir) is None


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: os.mkfifo(path / "waiting.txt"), "waiting.txt: not a regular file"),
        (lambda path: (path / "folder.txt").mkdir(), "folder.txt: not a regular file"),
        (
            lambda path: (
                (path / "ml-engineer-career-qa.speakers.toml").unlink()
                or (path / "ml-engineer-career-qa.speakers.toml").symlink_to("/dev/zero")
            ),
            "not a regular file",
        ),
    ],
)
def test_a_corpus_entry_that_is_not_a_file_is_one_line_not_a_hang(
    settings: Settings,
    use_fake: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None],
    message: str,
) -> None:
    make(settings.corpus_dir)
    for command in (["build"], ["ask", "hiring"]):
        assert cli.main([*command, *dirs(settings)]) == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_build_script_is_the_same_command(
    settings: Settings, use_fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["build_index.py", *dirs(settings)])
    with pytest.raises(SystemExit) as exit:
        runpy.run_path(str(ROOT / "scripts" / "build_index.py"), run_name="__main__")
    assert exit.value.code == 0
    assert (
        json.loads((served_version(settings.index_dir) / "manifest.json").read_text())["answers"]
        == 9
    )


def test_settings_come_from_the_environment(
    settings: Settings, use_fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREERBOT_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("CAREERBOT_INDEX_DIR", str(settings.index_dir / "from-env"))
    assert cli.main(["build"]) == 0
    assert (served_version(settings.index_dir / "from-env") / "manifest.json").exists()


def test_ask_builds_a_missing_index_then_answers(
    settings: Settings, use_fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ask", "core values interviews", "--top-k", "2", *dirs(settings)]) == 0
    out, err = capsys.readouterr()
    assert "No index at" in err
    assert out.startswith("1. ")
    assert "2. " in out and "3. " not in out
    assert "Source: corpus/ml-engineer-career-qa.txt, line" in out


def test_ask_rebuilds_when_the_corpus_changed(
    settings: Settings, use_fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["build", *dirs(settings)])
    shutil.copytree(DATA / "other", settings.corpus_dir, dirs_exist_ok=True)
    capsys.readouterr()
    assert cli.main(["ask", "portfolio", "--speaker", "Maria Okafor", *dirs(settings)]) == 0
    out, err = capsys.readouterr()
    assert "changed since the index was built" in err
    assert "documents: 2, speakers: 4" in err
    assert out.startswith("1. Maria Okafor, Product designer at Lumen Health")


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", "hi", "--speaker", "Mallory"], "unknown speaker 'Mallory'; known speakers: "),
        (["ask", "hi", "--top-k", "11"], "invalid settings: --top-k: must be at most 10"),
        (["ask", " \n "], "the question must not be empty; e.g. careerbot ask"),
        (["ask", "\u200b\u200d "], "the question must not be empty; e.g. careerbot ask"),
        # what /ask refuses, the command refuses too
        (["ask", "x" * 1001], "the question must be at most 1000 characters, not 1001"),
        (["ask", "tips\x00for interviews"], "the question must not contain control characters"),
        (["eval", "x.jsonl", "--chatter-lines", "0"], "--chatter-lines must be 1 to 20"),
        (["eval", "x.jsonl", "--chatter-lines", "21"], "--chatter-lines must be 1 to 20"),
        (["eval", "x.jsonl", "--chatter", "/nonexistent/chatter.txt"], "cannot read"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    settings: Settings,
    use_fake: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert cli.main([*args, *dirs(settings)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"careerbot: error: {message}")


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("MIN_SCORE", "high", "CAREERBOT_MIN_SCORE: must be a number"),
        ("RATE_LIMIT_PER_MINUTE", "1.5", "CAREERBOT_RATE_LIMIT_PER_MINUTE: must be a whole number"),
        ("WORKERS", "-1", "CAREERBOT_WORKERS: must be at least 1"),
        ("QUESTION_LOG", "maybe", "CAREERBOT_QUESTION_LOG: must be 'full', 'redacted' or 'off'"),
        ("ADMIN_TOKEN", "short", "CAREERBOT_ADMIN_TOKEN: must be at least 16 visible ASCII"),
        ("CORS_ORIGINS", "example.org", "CAREERBOT_CORS_ORIGINS: 'example.org' is not an origin"),
        ("CORS_ORIGINS", "https://a.example/", "'https://a.example/' is not an origin like"),
        ("CORS_ORIGINS", "https://a.example:0", "a port from 1 to 65535"),
        ("MIN_SCORE", "nan", "CAREERBOT_MIN_SCORE: must be a number"),
        ("MAX_TRANSCRIPT_MB", "0", "CAREERBOT_MAX_TRANSCRIPT_MB: must be more than 0"),
        ("DATABASE_URL", "mysql://x", "CAREERBOT_DATABASE_URL: must be sqlite:///PATH or"),
        ("DATABASE_URL", "/var/log.sqlite", "or postgresql+psycopg://..."),
        ("DATABASE_URL", "sqlite:///", "CAREERBOT_DATABASE_URL: must be sqlite:///PATH"),
        ("DATABASE_URL", "sqlite:///:memory:", "CAREERBOT_DATABASE_URL: must be sqlite:///PATH"),
        ("DATABASE_URL", "sqlite:///log.db ", "CAREERBOT_DATABASE_URL: must be sqlite:///PATH"),
    ],
)
def test_a_bad_setting_is_named_as_it_was_given_with_its_rule(
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(f"CAREERBOT_{variable}", value)
    assert cli.main(["ask", "hi", *dirs(settings)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert err[0].startswith("careerbot: error: invalid settings: CAREERBOT_")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["ask", "hi", "--top-k", "x"],
            "argument --top-k: invalid int value: 'x' (see: careerbot ask",
        ),
        (["serve", "--port", "abc"], "argument --port: invalid int value: 'abc'"),
        (["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
    ],
)
def test_a_usage_error_is_one_line_too(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(args)
    assert exit.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"careerbot: error: {message}")


def test_cors_origins_are_written_as_browsers_send_them() -> None:
    given = "HTTPS://WWW.Example.org:443, http://example.org:80, http://[0:0:0:0:0:0:0:1]:8000"
    assert Settings(cors_origins=given).cors_origin_list == [
        "https://www.example.org",
        "http://example.org",
        "http://[::1]:8000",
    ]
    for bad in ("http://[1]", "http://[:::::]", "http://-a-", "https://a.example:65536"):
        with pytest.raises(ValueError, match="is not an origin like"):
            Settings(cors_origins=bad)


def test_ask_with_no_answer_offers_the_nearest_interview_questions(
    settings: Settings,
    use_fake: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAREERBOT_MIN_SCORE", "1")  # nothing clears it
    assert cli.main(["ask", "core values interviews", *dirs(settings)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        "No answer in the interviews for that question.",
        "The interview questions nearest to it:",
    ]
    assert len(out) == 5 and all(line.startswith("   - ") for line in out[2:])
    assert "   - What does the hiring process look like for a machine learning engineer?" in out


@pytest.mark.model
def test_ask_puts_the_right_speaker_first(
    settings: Settings, use_real: None, capsys: pytest.CaptureFixture[str]
) -> None:
    question = "How many core values interviews does Airbnb do?"
    assert cli.main(["ask", question, *dirs(settings)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. Chirag Mahapatra, Machine learning engineer at Airbnb")
    first = " ".join(out.split("2. ")[0].replace("   > ", " ").split())  # unwrapped
    assert "two core-values interviews" in first


@pytest.mark.model
def test_a_second_transcript_is_indexed_and_attributed(
    settings: Settings, use_real: None, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(DATA / "other", settings.corpus_dir, dirs_exist_ok=True)
    cases = {
        "should designers learn to code?": "Maria Okafor, Product designer at Lumen Health",
        "what do design managers want from juniors": "Tom Reyes, Design manager at Northwind",
        "How many core values interviews does Airbnb do?": "Chirag Mahapatra",
    }
    for question, first in cases.items():
        assert cli.main(["ask", question, *dirs(settings)]) == 0
        assert capsys.readouterr().out.startswith(f"1. {first}")


@pytest.mark.model
def test_a_damaged_index_is_refused_by_the_command_without_a_traceback(
    settings: Settings, use_fake: FakeEmbedder, encoder_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    cli.main(["build", *dirs(settings)])
    target = served_version(settings.index_dir) / "faiss.index"
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF
    target.write_bytes(bytes(data))
    shutil.rmtree(settings.corpus_dir)  # nothing to rebuild it from
    shutil.copytree(encoder_dir, settings.encoder_dir)  # the session's export of the model
    careerbot = Path(sys.executable).with_name("careerbot")
    done = subprocess.run(
        [str(careerbot), "ask", "hiring", *dirs(settings)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("careerbot:")] == [
        f"careerbot: warning: {target} does not match its checksum in the manifest; "
        "rebuild it with: careerbot build",
        f"careerbot: error: corpus directory {settings.corpus_dir} does not exist",
    ]


def test_a_damaged_version_is_named_once_when_ask_rebuilds_it(
    settings: Settings, use_fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["build", *dirs(settings)])
    (served_version(settings.index_dir) / "passages.jsonl").write_bytes(b"garbage")
    capsys.readouterr()
    assert cli.main(["ask", "hiring", *dirs(settings)]) == 0
    said = capsys.readouterr().err
    assert said.count("does not match its checksum") == 1, said
    assert "Indexed documents: 1" in said and "(0 reused, " in said


def test_a_missing_version_is_named_once_when_ask_rebuilds(
    settings: Settings, use_fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["build", *dirs(settings)])
    missing = served_version(settings.index_dir)
    shutil.rmtree(missing)
    capsys.readouterr()
    assert cli.main(["ask", "hiring", *dirs(settings)]) == 0
    said = capsys.readouterr().err
    warned = [line for line in said.splitlines() if line.startswith("careerbot: warning:")]
    assert [line for line in warned if missing.name in line] == [
        f"careerbot: warning: {settings.index_dir}/CURRENT names {missing}, which is missing"
    ]
    assert "Indexed documents: 1" in said and "(0 reused, " in said


@pytest.mark.parametrize(
    "command, fallback",
    [
        (["ask", "hiring"], "serving {older}, the newest version that verifies"),
        (["build"], "; reusing {older}, the newest that verifies"),
    ],
)
def test_a_rebuild_reuses_the_newest_version_that_verifies_when_the_current_one_is_damaged(
    settings: Settings,
    use_fake: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    fallback: str,
) -> None:
    cli.main(["build", *dirs(settings)])
    older = served_version(settings.index_dir).name
    shutil.copytree(DATA / "other", settings.corpus_dir, dirs_exist_ok=True)
    cli.main(["build", *dirs(settings)])
    (served_version(settings.index_dir) / "passages.jsonl").write_bytes(b"garbage")
    shutil.copytree(DATA / "second", settings.corpus_dir, dirs_exist_ok=True)  # changed again
    capsys.readouterr()
    assert cli.main([*command, *dirs(settings)]) == 0
    said = capsys.readouterr().err
    assert fallback.format(older=older) in said
    assert said.count("does not match its checksum") == 1, said
    # The passages of the transcripts the older version holds are reused: not none.
    reused = re.search(r"passages: \d+ \((\d+) reused, ", said)
    assert reused and int(reused[1]) > 0, said


def test_a_version_that_a_build_makes_current_while_the_refused_one_is_read_serves(
    settings: Settings,
    use_fake: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CURRENT is read once: a build that makes its new version current meanwhile does not
    make the newest good version look refused."""
    cli.main(["build", *dirs(settings)])
    shutil.copytree(DATA / "other", settings.corpus_dir, dirs_exist_ok=True)
    cli.main(["build", *dirs(settings)])
    made = served_version(settings.index_dir)
    # A damaged version newer than both, which CURRENT names.
    damaged = made.with_name("29991231T000000000000Z-" + made.name.split("-")[1])
    shutil.copytree(made, damaged)
    (damaged / "passages.jsonl").write_bytes(b"garbage")
    pointer = settings.index_dir / "CURRENT"
    pointer.write_text(damaged.name + "\n")
    real = version.load_version

    def swapping(folder: Path, embedder: FakeEmbedder) -> version.LoadedIndex:
        try:
            return real(folder, embedder)
        except CareerbotError:
            pointer.write_text(made.name + "\n")  # the build's swap
            raise

    monkeypatch.setattr(version, "load_version", swapping)
    capsys.readouterr()
    assert cli.main(["ask", "hiring", *dirs(settings)]) == 0
    said = capsys.readouterr().err
    assert said.count("does not match its checksum") == 1, said
    assert f"serving {made.name}, the newest version that verifies" in said
    assert "changed since" not in said  # the version served is of this corpus


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.model
def test_serve_builds_the_index_and_answers_over_http(settings: Settings) -> None:
    port = free_port()
    careerbot = Path(sys.executable).with_name("careerbot")
    server = subprocess.Popen(
        [str(careerbot), "serve", "--port", str(port), *dirs(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        assert httpx.post(f"{url}/ask", json={"question": ""}).status_code == 422
        body = httpx.post(
            f"{url}/ask", json={"question": "How many core values interviews does Airbnb do?"}
        ).json()
        assert body["answers"][0]["speaker"]["name"] == "Chirag Mahapatra"
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert (served_version(settings.index_dir) / "manifest.json").exists()
    assert f"careerbot: serving on http://127.0.0.1:{port}/" in output


def test_eval_wraps_the_questions_in_chatter_when_asked(
    tmp_path: Path, settings: Settings, use_fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "set.jsonl"
    expect = [{"question": "What are some tips for the interview process?", "speaker": "x"}]
    cases.write_text(json.dumps({"question": "titanic resume", "expect": expect}) + "\n")
    chatter = tmp_path / "chatter.txt"
    chatter.write_text("Greetings from Lisbon.\n")
    assert cli.main(["eval", str(cases), "--chatter", str(chatter), *dirs(settings)]) == 0
    out = capsys.readouterr().out
    assert "in-domain 1" in out and "Greetings from Lisbon." in out  # the wrapped miss
    assert cli.main(["eval", str(cases), *dirs(settings)]) == 0
    assert "Lisbon" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "printing",
    [
        # Far more than a pipe holds: a write fails while the command runs.
        "[print('line ' * 20) for _ in range(100_000)]",
        # One line the reader takes, then one left in the buffer after the reader is gone.
        "[print('line ' * 20, flush=True), time.sleep(1), print('more')]",
    ],
)
def test_output_cut_short_by_its_reader_is_no_error(printing: str) -> None:
    # `careerbot report | head -1`: the reader closes the pipe before the end.
    script = (
        "import sys, time\nfrom careerbot import cli\n"
        f"cli.run = lambda args: {printing}\n"
        "sys.exit(cli.main(['build']))\n"
    )
    shell = f"{sys.executable} -c {shlex.quote(script)} | head -1; echo rc=${{PIPESTATUS[0]}}"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, timeout=60, env=buffered
    )
    assert done.stdout.splitlines() == ["line " * 20, "rc=141"]
    assert done.stderr == ""


def test_what_a_terminal_would_act_on_is_never_printed(
    tmp_path: Path, use_fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "qa.txt").write_text(
        "How do I start in\x1b]0;PWNED\x07 data work?\n\n"
        "Ada: I began \x1b[2Jwith a small project\u202e, and a\x00 lot of reading.\n"
    )
    index = ["--corpus-dir", str(corpus), "--index-dir", str(tmp_path / "index")]
    assert cli.main(["ask", "how do I start in data work", *index]) == 0
    out = capsys.readouterr().out
    assert "with a small project" in out and "\ufffd[2J" in out
    assert not any(c in out for c in "\x1b\x07\x00\u202e")
    assert cli.terminal("a\tb\nc\rd\x9b") == "a\tb\nc\ufffdd\ufffd"
    assert cli.terminal("a\nb", one_line=True) == "a\ufffdb"


def test_the_cli_loads_no_web_framework_until_it_serves() -> None:
    # build, ask, eval, report and review start faster without FastAPI (0.15 s of imports).
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, careerbot.cli; print('fastapi' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


def test_what_fails_whatever_the_model_does_is_said_before_it_loads(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its first load exports the model (20 s, 90 MB): not for a report on an index that
    is not there, nor a build of an empty corpus."""

    def no_model(settings: Settings) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(cli, "load_embedder", no_model)
    nowhere = tmp_path / "nowhere"
    for command in ("report", "review"):
        assert cli.main([command, "--index-dir", str(nowhere)]) == 2
        assert capsys.readouterr().err == (
            f"careerbot: error: no index at {nowhere} (run: careerbot build)\n"
        )
    assert not nowhere.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["build", "--corpus-dir", str(empty), "--index-dir", str(nowhere)]) == 2
    assert capsys.readouterr().err == f"careerbot: error: no transcripts (*.txt) in {empty}\n"
    (empty / "a.txt").mkdir()  # a folder by a transcript's name
    assert cli.main(["build", "--corpus-dir", str(empty), "--index-dir", str(nowhere)]) == 2
    assert capsys.readouterr().err == f"careerbot: error: {empty / 'a.txt'}: not a regular file\n"
    assert not nowhere.exists()
    # A pointer, even a readable one, with no version folder to load: nothing to report on.
    pointing = tmp_path / "pointing"
    pointing.mkdir()
    (pointing / "CURRENT").write_text("20990101T000000000000Z-" + "a" * 24)
    assert cli.main(["report", "--index-dir", str(pointing)]) == 2
    assert "no index at" in capsys.readouterr().err
    # eval's files and an empty question are read before the model too.
    blank = tmp_path / "blank.jsonl"
    blank.write_text(" \n")
    assert cli.main(["eval", str(blank), "--index-dir", str(nowhere)]) == 2
    assert "blank.jsonl holds no labelled questions" in capsys.readouterr().err
    assert cli.main(["ask", " ", "--index-dir", str(nowhere)]) == 2
    assert "the question must not be empty" in capsys.readouterr().err
    assert cli.main(["ask", "y" * 1200, "--index-dir", str(nowhere)]) == 2
    assert "at most 1000 characters" in capsys.readouterr().err
    assert not nowhere.exists()
    assert [p.name for p in pointing.iterdir()] == ["CURRENT"]


def test_a_variable_that_is_nearly_a_setting_is_warned_of(
    settings: Settings,
    use_fake: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CAREERBOT_TOPK", "1")
    monkeypatch.setenv("CAREERBOT_NOT_MINE_AT_ALL", "x")  # nothing like a setting: let be
    assert cli.main(["ask", "portfolio", *dirs(settings)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "careerbot: warning: CAREERBOT_TOPK is not a setting (CAREERBOT_TOP_K?); it is ignored"
    )
    assert not any("NOT_MINE" in line for line in err)
    for n in range(20):  # many: five named, then how many more
        monkeypatch.setenv(f"CAREERBOT_PORT{n}", "1")
    assert cli.main(["ask", "portfolio", *dirs(settings)]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 6
    assert warned[-1] == "careerbot: warning: and 16 more such variables, ignored too"
