"""The careerbot command: build the index, ask a question."""

import argparse
import json
import logging
import os
import re
import signal
import sys
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NoReturn, TextIO

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from careerbot import CareerbotError, __version__
from careerbot.config import Settings, misspelt_settings
from careerbot.curation import Claims, Section, add_phrasing, answer_label, topic_name, valid_topic
from careerbot.embedding import Embedder, load_embedder
from careerbot.evaluate import Case, Report, evaluate, read_cases, read_chatter, with_chatter
from careerbot.index import build_index, corpus_sha256
from careerbot.report import (
    Pending,
    answer_facts,
    curated_report,
    existing_log,
    gone_warning,
    left_out_warning,
    parse_since,
    propose,
    read_log,
    render,
    skipped_in_review,
    undecided,
)
from careerbot.rules import EmptyQuestion, question_text, rule
from careerbot.search import Result, Searcher
from careerbot.store import skips, upsert, why
from careerbot.transcript import transcript_paths
from careerbot.version import (
    LoadedIndex,
    NoIndex,
    load_index,
    load_newest,
    version_folders,
)

# A question wrapped in more lines would be no question anyone posts (eval --chatter).
MAX_CHATTER_LINES = 20


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line as every other error is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"careerbot: error: {message} (see: {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--corpus-dir",
        type=Path,
        help="transcripts to index (default: $CAREERBOT_CORPUS_DIR, else corpus)",
    )
    common.add_argument(
        "--index-dir",
        type=Path,
        help="where the index lives (default: $CAREERBOT_INDEX_DIR, else index)",
    )
    main = Parser(
        prog="careerbot", description="Career answers in the words of real practitioners."
    )
    main.add_argument("--version", action="version", version=f"careerbot {__version__}")
    commands = main.add_subparsers(dest="command", required=True)
    commands.add_parser("build", parents=[common], help="index every transcript in the corpus")
    ask = commands.add_parser("ask", parents=[common], help="answer one question")
    ask.add_argument("question")
    ask.add_argument(
        "--top-k", type=int, help="how many answers, 1-10 (default: $CAREERBOT_TOP_K, else 3)"
    )
    ask.add_argument("--speaker", help="only answers by this speaker (id or name)")
    check = commands.add_parser("eval", parents=[common], help="measure answer quality")
    check.add_argument("files", nargs="+", type=Path, help="labelled questions (JSONL)")
    check.add_argument(
        "--chatter",
        type=Path,
        help="wrap each question in lines of this file (life around a question, as posted)",
    )
    check.add_argument(
        "--chatter-lines",
        type=int,
        default=2,
        help=f"lines of chatter per question, 1-{MAX_CHATTER_LINES} (default: 2)",
    )
    serve = commands.add_parser("serve", parents=[common], help="serve the HTTP API and widget")
    serve.add_argument(
        "--host", help="address to listen on (default: $CAREERBOT_HOST, else 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, help="port to listen on (default: $CAREERBOT_PORT, else 8000)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes serving the port (default: $CAREERBOT_WORKERS, else 1)",
    )
    report = commands.add_parser("report", parents=[common], help="what the question log says")
    report.add_argument("--since", default="7d", help="how far back: Nd or Nh (default: 7d)")
    report.add_argument("--json", action="store_true", help="as JSON, as GET /admin/report")
    review = commands.add_parser(
        "review",
        parents=[common],
        help="accept proposed phrasings into the corpus metadata",
        description="Shows each phrasing the question log proposes and asks what to do with "
        "it: y adds it to its interview question's phrasings in the metadata file, a to the "
        "phrasings of the answer found helpful, u to an uncovered topic you name; n skips it "
        "for good, q stops. The next build uses what was added.",
    )
    review.add_argument("--since", default="7d", help="how far back: Nd or Nh (default: 7d)")
    return main


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        name: value
        for name in ("corpus_dir", "index_dir", "top_k", "host", "port", "workers")
        if (value := getattr(args, name, None)) is not None
    }
    for line in misspelt_settings(os.environ):
        warn(line)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(setting_problem(e, overrides) for e in error.errors())
        raise CareerbotError(f"invalid settings: {problems}") from None


# pydantic's words for what a setting's value must be, in the words of the API (errors.py).
SETTING_RULES = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "bool_parsing": "must be true or false",
    "path_type": "must be a path",
}


def setting_problem(error: Any, options: Mapping[str, object]) -> str:
    """A setting's problem, naming it as it was given (--top-k, or CAREERBOT_TOP_K)."""
    field = str(error["loc"][0]) if error["loc"] else ""
    if not field:  # a rule between settings, which its message names
        return rule(error, SETTING_RULES)
    name = f"--{field.replace('_', '-')}" if field in options else f"CAREERBOT_{field.upper()}"
    if error["type"] == "literal_error":
        return f"{name}: must be {error['ctx']['expected']}"
    return f"{name}: {rule(error, SETTING_RULES)}"


def build(
    settings: Settings,
    embedder: Embedder,
    said: Sequence[str] = (),
    served: LoadedIndex | None = None,
) -> None:
    """Build the index, reusing what `served` (or else the version being served) holds,
    and saying its warnings but those that repeat a problem `said` already (when no
    version loaded, the build refuses to reuse the ones loading refused, for the same
    reason)."""
    say(f"Building the index from {settings.corpus_dir} ...", sys.stderr)
    summary = build_index(settings, embedder, progress=True, served=served)
    for problem in summary.warnings:
        if not any(known in problem for known in said):
            warn(problem)
    say(str(summary), sys.stderr)


def ensure_index(settings: Settings, embedder: Embedder) -> tuple[LoadedIndex, list[str]]:
    """Load the index, building it first when it is missing or older than the corpus, with
    the problems met on the way. A good index on disk is never given up: when CURRENT's
    version is damaged the newest version that verifies serves, and when a rebuild fails
    the index that loaded keeps serving."""
    try:
        newest = load_newest(settings.index_dir, embedder)
        index, problems = newest.index, newest.problems
    except NoIndex:
        index, problems = None, []
        say(f"No index at {settings.index_dir} yet.", sys.stderr)
    except CareerbotError as error:
        index, problems = None, [str(error)]
    for problem in problems:
        warn(problem)
    if index is not None and not corpus_changed(settings, index):
        return index, problems
    if index is not None:
        say(f"{settings.corpus_dir} changed since the index was built.", sys.stderr)
    try:
        # The version that loaded, which may be older than a damaged one CURRENT names.
        build(settings, embedder, said=problems, served=index)
        return load_index(settings.index_dir, embedder), []
    except CareerbotError as error:
        if index is None:
            raise
        problem = f"the rebuild failed ({error}); still serving index version {index.version}"
        warn(problem)
        return index, [*problems, problem]


def corpus_changed(settings: Settings, index: LoadedIndex) -> bool:
    """Whether the corpus differs from the one the index was built from; an index served
    without its corpus has not changed, one that cannot be read has (the rebuild says why)."""
    if not settings.corpus_dir.is_dir():
        return False
    try:
        digest = corpus_sha256(settings.corpus_dir, settings.max_transcript_bytes)
    except CareerbotError:
        return True
    return digest != index.manifest.corpus_sha256


# What a transcript, a file name or a log may hold that a terminal would act on: control
# characters (escape sequences, a bell, a carriage return) and text-direction overrides.
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal(text: str, one_line: bool = False) -> str:
    """Text as safe to print: what a terminal would act on shown as U+FFFD; a message
    meant to be one line kept on one line."""
    text = UNSAFE.sub("\ufffd", text)
    return text.replace("\n", "\ufffd") if one_line else text


def say(text: str = "", file: TextIO | None = None) -> None:
    """Print text made safe (terminal()), to standard output unless `file` is given."""
    print(terminal(text), file=file)


def warn(problem: str) -> None:
    print(f"careerbot: warning: {terminal(problem, one_line=True)}", file=sys.stderr)


def show(result: Result) -> None:
    """An answer as `careerbot ask` prints it; the transcript's text is shown safe."""
    if result.uncovered:
        say(f"The interviews do not talk about that ({result.uncovered}).")
    elif not result.answered:
        say("No answer in the interviews for that question.")
    if result.suggestions:
        say("The interview questions nearest to it:")
        for question in result.suggestions:
            say(f"   - {question}")
    for rank, hit in enumerate(result.answers, start=1):
        speaker = hit.answer["speaker"]
        role = f", {speaker['role']}" if speaker["role"] else ""
        source = hit.passage["source"]
        say(f"{rank}. {speaker['name']}{role}  (score {hit.score:.2f})")
        say(f"   Asked: {hit.answer['question']}")
        for number, paragraph in enumerate(hit.passage["text"].split("\n\n")):
            if number:
                say("   >")  # between paragraphs
            say(textwrap.indent(textwrap.fill(paragraph, 88), "   > "))
        first, last = source["lines"]
        lines = f"line {first}" if first == last else f"lines {first}-{last}"
        say(f"   Source: {source['document']}, {lines}")
        say()


def checked_question(question: str) -> str:
    """The question as /ask would take it, or the one-line error /ask would give."""
    try:
        return question_text(question)
    except ValueError as error:
        empty = isinstance(error, EmptyQuestion)
        example = '; e.g. careerbot ask "tips for ML interviews"' if empty else ""
        raise CareerbotError(f"the question {error}{example}") from None


def run(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    # A bad --since is refused before the model loads.
    since = parse_since(args.since) if args.command in ("report", "review") else None
    if since is not None and settings.question_log == "off":  # as the server: nothing read
        raise CareerbotError(
            "the question log is off (CAREERBOT_QUESTION_LOG=off): nothing is read or "
            "written; to report on a log kept before, set it to redacted or full"
        )
    if args.command == "serve":
        from careerbot.server import check_address

        check_address(settings)  # a port in use is said before anything loads
    # What makes the command fail whatever the model does is said before it loads (its
    # first load exports it: 20 s and 90 MB).
    if args.command == "build":
        transcript_paths(settings.corpus_dir)
    if args.command == "ask":  # the rule /ask keeps
        args.question = checked_question(args.question)
    chatter, sets = None, []
    if args.command == "eval":
        if not 1 <= args.chatter_lines <= MAX_CHATTER_LINES:
            raise CareerbotError(f"--chatter-lines must be 1 to {MAX_CHATTER_LINES}")
        chatter = read_chatter(args.chatter) if args.chatter else None
        sets = [(path, read_cases(path)) for path in args.files]
    # Without a version folder nothing loads, whatever CURRENT says.
    if since is not None and not version_folders(settings.index_dir):
        raise NoIndex(f"no index at {settings.index_dir} (run: careerbot build)")
    embedder = load_embedder(settings)
    if args.command == "build":
        build(settings, embedder)
    elif args.command == "ask":
        searcher = Searcher(ensure_index(settings, embedder)[0], embedder, settings.min_score)
        show(searcher.ask(args.question, settings.top_k, args.speaker))
    elif args.command == "serve":
        serve(settings, embedder)
    elif args.command == "eval":
        searcher = Searcher(ensure_index(settings, embedder)[0], embedder, settings.min_score)
        report_quality(searcher, sets, chatter, args.chatter_lines)
    elif since is not None:
        curate(args.command, settings, embedder, since, getattr(args, "json", False))


def report_quality(
    searcher: Searcher,
    sets: list[tuple[Path, list[Case]]],
    chatter: list[str] | None = None,
    lines: int = 2,
) -> None:
    """Each set's figures and misses (its file's path and its cases), then all together."""
    everything = []
    for path, cases in sets:
        report = evaluate(searcher, with_chatter(cases, chatter, lines) if chatter else cases)
        everything.extend(report.outcomes)
        say(f"{path}: {report}")
        for miss in report.misses():
            say(f"  {miss}")
    if len(sets) > 1:
        print(f"all: {Report(everything)}")


def curate(
    command: str, settings: Settings, embedder: Embedder, since: datetime, as_json: bool
) -> None:
    """`report` or `review`, on the question log and the answers of the index on disk."""
    newest = load_newest(settings.index_dir, embedder)  # never built here
    index = newest.index
    for problem in newest.problems:
        warn(problem)
    answers = answer_facts(index.answers)
    engine = existing_log(settings.database)
    corpus, max_bytes = settings.corpus_dir, settings.max_transcript_bytes
    try:
        if command == "review":
            logged = read_log(engine, since)
            if warning := left_out_warning(logged.left_out, "review"):
                warn(warning)
            proposed = propose(logged.picked, logged.judged, answers)
            skipped = skipped_in_review(engine)
            pending, gone, claims = undecided(proposed, skipped, answers, corpus, max_bytes)
            for question in gone:
                warn(gone_warning(question))
            review(pending, engine, claims)
            return
        made, warnings = curated_report(engine, embedder, since, answers, corpus, max_bytes)
    except sa.exc.SQLAlchemyError as error:  # down, locked past its timeout, or damaged
        raise CareerbotError(f"the question log cannot be read or written{why(error)}") from None
    finally:
        engine.dispose()
    for warning in warnings:
        warn(warning)
    if as_json:
        # JSON escapes C0 controls itself; the rest a terminal acts on, as \u escapes.
        text = json.dumps(made.to_json(), indent=2, ensure_ascii=False)
        print(UNSAFE.sub(lambda found: f"\\u{ord(found[0]):04x}", text))
    else:
        say(render(made))


def review(pending: Sequence[Pending], engine: Engine, claims: Claims) -> None:
    """Offer each proposed phrasing not decided on before (accepted into a metadata file,
    or skipped in an earlier review); write down what is accepted, remember what is not.
    A phrasing proposed by a helpful vote may go to the answer voted for, in the metadata
    file of that answer's transcript."""
    if not pending:
        print("Nothing to review.")
        return
    added = 0
    for number, item in enumerate(pending, start=1):
        if claims.decided(item.candidate.question, item.candidate.phrasing):  # just now
            continue
        candidate, path, where = item.candidate, item.path, item.helpful
        say(f"\n[{number}/{len(pending)}] {candidate.phrasing!r}")
        say(f"  proposed as a way to ask: {candidate.question!r}  ({path})")
        if where is not None:
            say(f"  found helpful in the answer by {where.answer.speaker}  ({where.path})")
        if candidate.uncovered:
            say(
                f"  careerbot took it for the uncovered topic {candidate.uncovered!r}: accepted,"
                " such questions would be answered; [u] files it under that topic instead"
            )
        # Offered as the topic to file it under, if the name is still a valid one.
        taken_for = candidate.uncovered if valid_topic(candidate.uncovered) else None
        decision = decide(candidate.question, where is not None, taken_for)
        if decision is None:
            break
        if decision == "skip":
            with engine.begin() as connection:
                row = {
                    "phrasing": candidate.phrasing,
                    "question": candidate.question,
                    "skipped_at": datetime.now(UTC),
                }
                connection.execute(upsert(engine, skips, ["phrasing", "question"]), row)
            continue
        place: tuple[Section, str] = (
            ("questions", candidate.question) if decision == "answer" else decision
        )
        section, key = place
        if problem := claims.conflict(section, candidate.phrasing):
            say(f"  not added: {problem}, and the next build would refuse it")
            continue
        if decision == "answer":
            assert where is not None  # [a] is offered only then
            target, question = where.path, candidate.question
            label = answer_label(target, question, where.answer.speaker)
            done = add_phrasing(target, "questions", question, candidate.phrasing, label)
        else:
            target = path
            done = add_phrasing(target, section, key, candidate.phrasing)
        if done:
            claims.add(section, key, candidate.phrasing)
            added += 1
            say(f"  added to {target}")
    if not added:
        print("\nNo phrasing added.")
        return
    say(
        f"\n{added} phrasing{'' if added == 1 else 's'} added; rebuild the index to use "
        f"{'it' if added == 1 else 'them'}."
    )


def decide(
    question: str, for_answer: bool = False, topic: str | None = None
) -> tuple[Section, str] | Literal["answer", "skip"] | None:
    """The curator's choice: where the phrasing goes (the interview question, the answer
    found helpful when `for_answer`, or an uncovered topic they name, `topic` when they
    name none), "skip", or None to stop (q, or the end of input)."""
    choices = "Accept [y], for this answer [a], skip [n], an uncovered topic [u], quit [q]? "
    if not for_answer:
        choices = "Accept [y], skip [n], an uncovered topic [u], quit [q]? "
    try:
        while True:
            answer = prompt(choices).strip().lower()
            if answer == "y":
                return "questions", question
            if answer == "a" and for_answer:
                return "answer"
            if answer in ("n", "q"):
                return "skip" if answer == "n" else None
            if answer == "u":
                if (named := ask_topic(topic)) is not None:
                    return "uncovered", named
                continue
            letters = ", ".join(c for c in CHOICES if for_answer or c != "a")
            print(f"  {answer[:20]!r} is not a choice; type one of {letters}")
    except EOFError:
        return None


def prompt(text: str) -> str:
    """A line of input after `text`; EOFError at the end of input. Read from a pipe or a
    file, the line is echoed, so each prompt and its answer end their line as on a
    terminal, and a last line cut short (no line break) counts as the end of input, not as
    an answer (a topic name cut in two is not written)."""
    if sys.stdin is None or sys.stdin.closed:
        raise EOFError
    try:
        if sys.stdin.isatty():
            return input(text)
        print(text, end="", flush=True)
        line = sys.stdin.readline()
        line.encode("utf-8")  # a UTF-8 locale reads bad bytes as lone surrogates
    except (UnicodeDecodeError, UnicodeEncodeError):
        print()
        raise CareerbotError("standard input is not UTF-8 text") from None
    if not line.endswith("\n"):
        print()
        if line.strip():
            warn(f"{line.strip()[:60]!r} ignored: the input ended without a line break")
        raise EOFError
    line = line.rstrip("\r\n")
    say(line)
    return line


CHOICES = ("y", "a", "n", "u", "q")


def ask_topic(default: str | None = None) -> str | None:
    """A valid topic name, asked for until one is given (an empty line: `default`); None
    to go back ("-", or an empty line without a default)."""
    empty = f"empty: {default}, -: back" if default else "empty or -: back"
    while True:
        typed = prompt(f"Topic name (lowercase letters, digits, hyphens; {empty}): ").strip()
        if typed.lower() in CHOICES:  # meant for the prompt before, not a topic
            print(f"  {typed!r} is a choice of the prompt before; '-' goes back to it")
            continue
        name = typed or default or "-"
        if name == "-":
            return None
        try:
            return topic_name(name)
        except CareerbotError as error:
            print(f"  {error}")


def serve(settings: Settings, embedder: Embedder) -> None:
    from careerbot import server
    from careerbot.api import create_app

    index, problems = ensure_index(settings, embedder)
    # careerbot's own log lines (index swaps), in uvicorn's style; other libraries' stay quiet.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     careerbot: %(message)s"))
    logger = logging.getLogger("careerbot")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    app = create_app(settings, embedder, warnings=problems, index=index)
    workers = f" with {settings.workers} workers" if settings.workers > 1 else ""
    print(f"careerbot: serving on http://{server.address(settings)}/{workers} (API docs at /docs)")
    server.run(app, settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run(args)
        sys.stdout.flush()  # here, not at exit, where a closed pipe could not be caught
    except BrokenPipeError:  # `careerbot report | head`: the reader has all it wanted
        # Output still buffered would fail again at exit: send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    # An OSError: the file system refused something; say what, not where.
    except (CareerbotError, OSError) as error:
        print(f"careerbot: error: {terminal(str(error), one_line=True)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
