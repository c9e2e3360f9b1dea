"""Answer quality with the real model on the labelled sets in eval/: it must not regress.

The floors sit a little under the figures measured when they were set (docs/quality.md,
"Answer quality"), some of them above the figures without the classifier of answers,
which they guard; raise them when quality improves.
"""

import shutil
from pathlib import Path

import pytest

from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder
from careerbot.evaluate import Report, evaluate, read_cases, read_chatter, with_chatter
from careerbot.index import build_index
from careerbot.search import Searcher
from careerbot.version import load_index
from tests.conftest import DATA, ROOT, script

# The floors of each file in eval/ measured alone on the default corpus, by its name.
BY_FILE = {
    "heldout": {
        "top1": 0.93,
        "evidence1": 0.90,
        "offtopic_rejected": 0.95,
        "false_rejection": 0.05,
    },
    "heldout-2": {
        "top1": 0.93,
        "evidence1": 0.83,
        "offtopic_rejected": 0.95,
        "false_rejection": 0.05,
    },
    # Career questions the interviews do not cover, and long questions as people post them.
    "uncovered-tune": {"offtopic_rejected": 0.90},
    "uncovered-heldout": {"offtopic_rejected": 0.95},
    "longform-tune": {"top1": 0.95, "false_rejection": 0.10},
    "longform-tune-b": {"top1": 0.92, "evidence1": 0.78, "false_rejection": 0.10},
    "longform-heldout": {"top1": 0.90, "false_rejection": 0.10},
    "longform-heldout-2": {"top1": 0.75, "evidence1": 0.55, "false_rejection": 0.15},
    "longform-tune-c": {"top1": 0.90, "evidence1": 0.88, "false_rejection": 0.08},
    "longform-uncovered-tune": {"offtopic_rejected": 0.95},
    "longform-uncovered-tune-b": {"offtopic_rejected": 0.95},
    "longform-uncovered-heldout": {"offtopic_rejected": 0.95},
    # Long questions that ask without a question mark ("Looking for advice on ...").
    "longform-statement-tune": {"top1": 0.85, "evidence1": 0.70, "false_rejection": 0.10},
    "longform-statement-heldout": {"top1": 0.92, "evidence1": 0.70, "false_rejection": 0.10},
    "longform-statement-uncovered": {"offtopic_rejected": 0.95},
    # Written blind after the classifier of answers, on 2026-11-27.
    "longform-heldout-3": {"top1": 0.94, "evidence1": 0.90, "false_rejection": 0.05},
    "longform-uncovered-heldout-2": {"offtopic_rejected": 0.90},
    # Posts as people write them online, life around the question and all (2026-11-27).
    "longform-posts-tune": {"top1": 0.90, "evidence1": 0.78, "false_rejection": 0.05},
    "longform-posts-heldout": {"top1": 0.77, "evidence1": 0.70, "false_rejection": 0.10},
    "longform-posts-uncovered-tune": {"offtopic_rejected": 0.95},
    "longform-posts-uncovered-heldout": {"offtopic_rejected": 0.90},
    # More posts, written blind on 2026-11-29 by three more authors (uncovered ones as near
    # the interviews' subjects as they could make them) and measured once as they were.
    "longform-posts-uncovered-tune-b": {"offtopic_rejected": 0.87},
    # Posts the interviews answer, told amid what they do not (a visa, a layoff, pay).
    "longform-posts-tune-b": {"top1": 0.87, "evidence1": 0.78, "false_rejection": 0.07},
    "longform-posts-heldout-2": {"top1": 0.90, "evidence1": 0.83, "false_rejection": 0.05},
    "longform-posts-uncovered-heldout-2": {"offtopic_rejected": 0.80},
    "longform-posts-heldout-3": {"top1": 0.90, "evidence1": 0.75, "false_rejection": 0.05},
    "longform-posts-uncovered-heldout-3": {"offtopic_rejected": 0.85},
    # Posts written blind later on 2026-11-29, the unanswered ones on career topics of
    # the author's choosing (a noncompete, parental leave, ...), measured once as they were.
    "longform-posts-heldout-4": {"top1": 0.90, "evidence1": 0.85, "false_rejection": 0.05},
    "longform-posts-uncovered-heldout-4": {"offtopic_rejected": 0.90},
    # Posts written blind at the end of 2026-11-29, after the classifier of answers began
    # judging uncovered topics, and measured once as they were.
    "longform-posts-heldout-5": {"top1": 0.95, "evidence1": 0.90, "false_rejection": 0.05},
    "longform-posts-uncovered-heldout-5": {"offtopic_rejected": 0.85},
    # Posts of 800 to 2000 characters in paragraphs, about half over the model's window
    # and most over the 1000 characters /ask takes (read whole here, as `careerbot eval`
    # reads them), with posts the interviews do not answer (written blind on 2026-11-27).
    "longform-walls-tune": {
        "top1": 0.93,
        "evidence1": 0.80,
        "offtopic_rejected": 0.90,
        "false_rejection": 0.05,
    },
    "longform-walls-heldout": {
        "top1": 0.90,
        "evidence1": 0.83,
        "offtopic_rejected": 0.85,
        "false_rejection": 0.04,
    },
}

# The floors of the other measures: files taken together, wrapped in chatter, or on
# other corpora.
FLOORS = {
    "tune": {"top1": 0.97, "evidence1": 0.90, "offtopic_rejected": 0.95, "false_rejection": 0.05},
    # The long held-out sets, each question wrapped in two lines of eval/chatter-heldout.txt.
    "chatter-heldout": {"top1": 0.86, "false_rejection": 0.05},
    "chatter-uncovered": {"offtopic_rejected": 0.93},
    "second": {"top1": 0.90, "evidence1": 0.90, "offtopic_rejected": 0.75, "false_rejection": 0.05},
    # Long questions on the second transcript, beside the default one and alone: alone,
    # its small vocabulary leaves more of a long question's words unknown (coverage).
    "longform-second": {"top1": 0.85, "evidence1": 0.75, "false_rejection": 0.10},
    "longform-second-alone": {"top1": 0.75, "evidence1": 0.60, "false_rejection": 0.25},
    # Transcripts with no curation: the second alone, and the default without its tables.
    "second-alone": {"top1": 0.90, "offtopic_rejected": 0.75, "false_rejection": 0.10},
    "bare-tune": {"top1": 0.87, "offtopic_rejected": 0.85, "false_rejection": 0.05},
    "bare-heldout": {"top1": 0.75, "offtopic_rejected": 0.80, "false_rejection": 0.08},
    "bare-longform": {"top1": 0.72, "false_rejection": 0.15},
}

LONG_HELDOUT = [
    f"longform-{name}.jsonl"
    for name in ("heldout", "heldout-2", "heldout-3", "statement-heldout", "posts-heldout")
]
LONG_UNCOVERED = [
    f"longform-{name}.jsonl"
    for name in (
        "uncovered-heldout",
        "uncovered-heldout-2",
        "statement-uncovered",
        "posts-uncovered-heldout",
    )
]


def test_every_labelled_set_has_floors() -> None:
    """A set added to eval/ is measured here: alone (BY_FILE), or as the tests below
    take it (tune-b with tune, the second transcript's beside it and alone)."""
    together = {"tune", "tune-b", "second", "longform-second"}
    names = {path.stem for path in (ROOT / "eval").glob("*.jsonl")}
    assert names - together == set(BY_FILE)


def built(settings: Settings, embedder: OnnxEmbedder) -> Searcher:
    build_index(settings, embedder)
    return Searcher(load_index(settings.index_dir, embedder), embedder, settings.min_score)


def measure(searcher: Searcher, *files: str) -> Report:
    cases = [case for name in files for case in read_cases(ROOT / "eval" / name)]
    return evaluate(searcher, cases)


def check(report: Report, floors: dict[str, float]) -> None:
    figures = report.figures()
    for name, floor in floors.items():
        if name == "false_rejection":
            assert figures[name] <= floor, f"{name} {figures[name]:.3f}\n{report.misses()}"
        else:
            assert figures[name] >= floor, f"{name} {figures[name]:.3f}\n{report.misses()}"


def check_second(searcher: Searcher, floors: str = "") -> None:
    """The second transcript's questions, short and long, against their floors (those
    whose names end in `floors`)."""
    for name in ("second", "longform-second"):
        check(measure(searcher, f"{name}.jsonl"), FLOORS[name + floors])


@pytest.mark.model
def test_quality_on_the_tuning_and_held_out_sets(
    tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    assert settings.min_score > 0  # the shipped threshold, not the tests' zero
    searcher = built(settings, real_embedder)
    check(measure(searcher, "tune.jsonl", "tune-b.jsonl"), FLOORS["tune"])
    for name, floors in BY_FILE.items():
        check(measure(searcher, f"{name}.jsonl"), floors)
    chatter = read_chatter(ROOT / "eval" / "chatter-heldout.txt")
    for floors, names in (("chatter-heldout", LONG_HELDOUT), ("chatter-uncovered", LONG_UNCOVERED)):
        cases = [case for name in names for case in read_cases(ROOT / "eval" / name)]
        check(evaluate(searcher, with_chatter(cases, chatter, 2)), FLOORS[floors])


@pytest.mark.model
def test_quality_with_a_second_transcript_in_the_corpus(
    tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    shutil.copytree(DATA / "second", corpus, dirs_exist_ok=True)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    check_second(built(settings, real_embedder))


@pytest.mark.model
def test_quality_on_transcripts_without_curation(
    tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    """What a transcript dropped in without phrasings gets: the plain weights."""
    second = tmp_path / "second"
    shutil.copytree(DATA / "second", second)
    alone = Settings(corpus_dir=second, index_dir=tmp_path / "second-index")
    check_second(built(alone, real_embedder), "-alone")
    # The copy the tuner chose the plain weights on (scripts/tune.py).
    bare = script("tune").without_curation(ROOT / "corpus", tmp_path / "bare")
    searcher = built(Settings(corpus_dir=bare, index_dir=tmp_path / "bare-index"), real_embedder)
    assert not searcher.index.manifest.phrasings and searcher.index.manifest.plain
    check(measure(searcher, "tune.jsonl", "tune-b.jsonl"), FLOORS["bare-tune"])
    check(measure(searcher, "heldout.jsonl", "heldout-2.jsonl"), FLOORS["bare-heldout"])
    long = ("longform-tune.jsonl", "longform-tune-b.jsonl", "longform-tune-c.jsonl")
    check(measure(searcher, *long), FLOORS["bare-longform"])


@pytest.mark.model
def test_a_question_naming_the_company_about_an_uncovered_topic_says_which(
    tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    from fastapi.testclient import TestClient

    from careerbot.api import create_app

    settings = Settings(index_dir=tmp_path / "index")
    build_index(settings, real_embedder)
    with TestClient(create_app(settings, real_embedder)) as client:
        paid = client.post("/ask", json={"question": "how much do ML engineers at Airbnb earn?"})
        hired = client.post("/ask", json={"question": "how does Airbnb hire ML engineers?"})
    assert (paid.json()["answered"], paid.json()["uncovered"]) == (False, "pay")
    assert hired.json()["answered"] is True and hired.json()["uncovered"] is None
