"""Writing what a curator accepts into the corpus metadata, the speakers file beside each
transcript:

    [questions."<interview question text, verbatim>"]
    phrasings = ["another way to ask it", ...]

    [questions."<interview question text, verbatim>".answers."<speaker's name>"]
    phrasings = ["a question that speaker's answer answers", ...]

    [uncovered.<topic-name>]
    phrasings = ["how much do ML engineers earn", ...]

tomlkit edits the parsed file, so the editor's comments and layout stay as they were; the
result replaces the file whole (a temporary file, then os.replace), so a crash midway
leaves the old file and a reader never sees half of the new one.
"""

import copy
import fcntl
import os
import stat
import tempfile
import tomllib
from collections.abc import MutableMapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import tomlkit
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Comment, InlineTable, Table, Whitespace

from careerbot import SMALL_FILE_BYTES, CareerbotError, read_limited
from careerbot.metadata import MAX_PHRASING_CHARS, MAX_TOPIC_CHARS, TOPIC_NAME, phrasing_text, plain
from careerbot.transcript import Transcript, covered, read_speakers, speakers_file

Section = Literal["questions", "uncovered"]
# A topic name is a bare TOML key and reads well in /ask's "uncovered": lowercase words
# of letters and digits joined by single hyphens.


def valid_topic(name: str | None) -> bool:
    return name is not None and bool(TOPIC_NAME.fullmatch(name)) and len(name) <= MAX_TOPIC_CHARS


def topic_name(name: str) -> str:
    """The name, when it is a valid topic name; else a one-line error saying what is."""
    if not valid_topic(name):
        raise CareerbotError(
            f"{name[:MAX_TOPIC_CHARS]!r} is not a topic name: use lowercase letters, digits "
            f"and single hyphens, at most {MAX_TOPIC_CHARS} characters (e.g. ml-salaries)"
        )
    return name


def metadata_files(transcripts: list[Transcript], corpus_dir: Path) -> dict[str, Path]:
    """Each interview question (verbatim) -> the speakers file of the first transcript, in
    name order, that asks it: where its phrasings go."""
    found: dict[str, Path] = {}
    for transcript in transcripts:
        path = speakers_file(corpus_dir / Path(transcript.document).name)
        for asked in transcript.questions:
            found.setdefault(asked.text, path)
    return found


@dataclass
class Claims:
    """What the corpus's metadata files hold, as plain() compares texts: the ways to ask
    each interview question (its phrasings and its answers'), everything that asks a
    covered question, and the uncovered topics' phrasings. A curator has decided on a
    phrasing they hold, and the build refuses a text both covered and not."""

    asked: dict[str, set[str]]
    covered: set[str]
    uncovered: set[str]

    @classmethod
    def of(cls, transcripts: list[Transcript]) -> "Claims":
        asked: dict[str, set[str]] = {}
        for curation in (t.curation for t in transcripts):
            for question, texts in curation.phrasings.items():
                asked.setdefault(question, set()).update(map(plain, texts))
            for question, by_label in curation.answers.items():
                asked.setdefault(question, set()).update(map(plain, chain(*by_label.values())))
        topics = [t.curation.uncovered.values() for t in transcripts]
        return cls(asked, covered(transcripts), {plain(p) for ts in topics for p in chain(*ts)})

    def decided(self, question: str, phrasing: str) -> bool:
        """Whether the phrasing is there for the question, an answer to it or a topic."""
        text = plain(phrasing)
        return text in self.asked.get(question, set()) or text in self.uncovered

    def conflict(self, section: Section, phrasing: str) -> str | None:
        """Why the next build would refuse the phrasing added to the section, if it would."""
        if section == "uncovered" and plain(phrasing) in self.covered:
            return "it asks a covered question (it is an interview question or a phrasing)"
        if section == "questions" and plain(phrasing) in self.uncovered:
            return "an uncovered topic lists it"
        return None

    def add(self, section: Section, key: str, phrasing: str) -> None:
        """Note a phrasing written under [section."key"] (or an answer to question key)."""
        if section == "uncovered":
            self.uncovered.add(plain(phrasing))
        else:
            self.covered.add(plain(phrasing))
            self.asked.setdefault(key, set()).add(plain(phrasing))


BOM = "\ufeff"


def read_text(path: Path) -> str:
    """The metadata file's text ("" when the transcript has none yet: a speakers file is
    optional, and the first phrasing accepted makes it)."""
    if not path.exists() and not path.is_symlink():
        return ""
    try:
        return read_limited(path, SMALL_FILE_BYTES).decode("utf-8")
    except UnicodeDecodeError as error:
        raise CareerbotError(f"{path}: {error}") from None


def read(path: Path, text: str | None = None) -> tomlkit.TOMLDocument:
    """The metadata file (or `text`, read from it) as tomlkit reads it."""
    try:
        return tomlkit.parse((read_text(path) if text is None else text).removeprefix(BOM))
    except TOMLKitError as error:
        raise CareerbotError(f"{path}: {error}") from None


def key_path(section: Section, key: str, speaker: str | None = None) -> list[str]:
    """The keys of [section."key"], or of [questions."key".answers."speaker"]."""
    return [section, key] if speaker is None else [section, key, "answers", speaker]


def phrasings_of(path: Path, document: MutableMapping[str, Any], keys: list[str]) -> list[Any]:
    """The phrasings array of the table at `keys` (key_path), made when missing."""

    def where(depth: int) -> str:  # as the errors name it: questions.'Q'.'answers'
        return ".".join([keys[0], *map(repr, keys[1 : depth + 1])])

    table: MutableMapping[str, Any] = document
    inline = False  # inside a table written with dotted keys or inline, not a [header]
    ending: list[tuple[Any, Any]] | None = None  # what ends the new tables (cut_end)
    for depth, name in enumerate(keys):
        entry = table.get(name)
        if entry is None:
            last = depth == len(keys) - 1
            # A super table writes no header of its own ([questions]), only its tables'.
            # Within a table of dotted keys or an inline one, a [header] table would be
            # written at the top level (tomlkit places it by its own name): inline then.
            entry = tomlkit.inline_table() if inline else tomlkit.table(is_super_table=not last)
            if last:
                entry["phrasings"] = tomlkit.array()
            # A table split around another section reads as one proxy, and tomlkit (as
            # pinned) adds new tables to its first part: the new one follows that part.
            part = table._tables[0] if isinstance(table, OutOfOrderTableProxy) else table
            if ending is None and not inline and isinstance(part, Table) and part.value.body:
                ending = cut_end(last_within(part))  # before new tables go in after it
            if last and ending and isinstance(entry, Table):
                entry.value.body.extend(ending)
            table[name] = entry
        if not isinstance(entry, MutableMapping):
            raise CareerbotError(f"{path}: {where(depth)} must be a table")
        inline = inline or isinstance(entry, InlineTable) or dotted(table, name)
        table = entry
    if "phrasings" not in table:
        # Among the table's own lines, not after the next section's heading comment (which
        # cut_end takes off and gives back; tomlkit keeps the blank line before it).
        heading = cut_end(table) if isinstance(table, Table) and not inline else []
        table["phrasings"] = tomlkit.array()
        if isinstance(table, Table):
            table.value.body.extend(i for i in heading if not isinstance(i[1], Whitespace))
    phrasings = table["phrasings"]
    if not isinstance(phrasings, list) or not all(isinstance(p, str) for p in phrasings):
        raise CareerbotError(f"{path}: {where(len(keys))}.phrasings must be a list of text")
    return phrasings


def dotted(table: MutableMapping[str, Any], name: str) -> bool:
    """Whether the table holds `name` under a dotted key (answers.Ada.phrasings = ...)."""
    body = table.value.body if isinstance(table, Table) else getattr(table, "body", [])
    return any(key is not None and key.key == name and key.is_dotted() for key, _ in body)


def last_within(parent: Table) -> Table:
    """The table a parent's last lines belong to: tomlkit keeps the blank lines and
    comments after a table (often the heading of the next section) as the end of the last
    table within it ([questions."...".answers.Chirag]), or of the parent itself."""
    while parent.value.body and isinstance(parent.value.body[-1][1], Table):
        parent = parent.value.body[-1][1]
    return parent


def cut_end(previous: Table) -> list[tuple[Any, Any]]:
    """What should end a new table placed right after `previous` (last_within), as the
    editor would place it: the comments after the last blank line that ends `previous`
    (the next section's heading, cut from it) and, before them, that blank line."""
    body = previous.value.body
    end = len(body)
    while end and body[end - 1][0] is None and isinstance(body[end - 1][1], Whitespace | Comment):
        end -= 1
    blanks = [i for i in range(end, len(body)) if isinstance(body[i][1], Whitespace)]
    cut = blanks[-1] + 1 if blanks else end
    moved = body[cut:]
    del body[cut:]
    return [(None, Whitespace(body[i][1].as_string())) for i in blanks[-1:]] + moved


def answers_table(document: MutableMapping[str, Any], question: str) -> MutableMapping[str, Any]:
    """[questions."question".answers] of the document: phrasings by speaker label (empty
    when there is none, or it is not a table)."""
    questions = document.get("questions")
    entry = questions.get(question) if isinstance(questions, MutableMapping) else None
    answers = entry.get("answers") if isinstance(entry, MutableMapping) else None
    return answers if isinstance(answers, MutableMapping) else {}


def answer_label(path: Path, question: str, name: str) -> str:
    """The label under which the file already gives phrasings of the answer by the speaker
    called `name` to the question (it may use "Chirag" for "Chirag Mahapatra"); else
    the name itself, which a speakers file always accepts."""
    document = read(path)
    answers = answers_table(document, question)
    if not answers:
        return name
    known = read_speakers(path, document.unwrap()) or {}
    return next(
        (str(label) for label in answers if getattr(known.get(str(label)), "name", None) == name),
        name,
    )


def add_phrasing(
    path: Path, section: Section, key: str, phrasing: str, speaker: str | None = None
) -> bool:
    """Add the phrasing under [section."key"] of the file, or under the answers of the
    given speaker to interview question `key`; False when it is there already."""
    phrasing = phrasing.strip()
    if not phrasing_text(phrasing):  # what the next build would refuse
        raise CareerbotError(
            f"a phrasing must be 1 to {MAX_PHRASING_CHARS} characters on one line, without "
            "control characters"
        )
    if section == "uncovered":
        topic_name(key)
    # Text as a transcript's question or label is: printable on one line (tabs aside).
    names = [key] if speaker is None else [key, speaker]
    if not all(name.strip() and name.replace("\t", " ").isprintable() for name in names):
        raise CareerbotError(f"cannot add a phrasing under {key[:100]!r}: not a question's text")
    # One writer at a time: two reviews of one file must not lose each other's additions.
    # The lock is on the folder (the file itself is replaced, so it cannot hold one).
    folder = os.open(path.resolve().parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        raw = read_text(path)
        # Replaced through its folder, a file we may not write would change hands; one
        # made read-only is refused even to root, who may write anything.
        if path.exists() and not (path.stat().st_mode & stat.S_IWUSR and os.access(path, os.W_OK)):
            raise CareerbotError(f"{path}: the file is read-only; make it writable to add to it")
        # A last line without its line break would run into the next header written.
        document = read(path, raw if not raw or raw.endswith("\n") else raw + "\n")
        before, keys = document.unwrap(), key_path(section, key, speaker)
        try:
            phrasings = phrasings_of(path, document, keys)
            if plain(phrasing) in {plain(p) for p in phrasings}:
                return False
            phrasings.append(phrasing)
            text = tomlkit.dumps(document)
            if "\r\n" in raw and raw.count("\r\n") == raw.count("\n"):  # a CRLF file
                text = text.replace("\r\n", "\n").replace("\n", "\r\n")
            text = BOM + text if raw.startswith(BOM) else text
            # Whatever the file's layout, it must now say what it said, and the phrasing
            # where it belongs: nothing else moved, nothing lost.
            if tomllib.loads(text.removeprefix(BOM)) != with_phrasing(before, keys, phrasing):
                raise ValueError("it would be written somewhere else")
        except (ValueError, TOMLKitError) as error:  # e.g. a table inside an inline table
            raise CareerbotError(
                f"{path}: cannot add the phrasing under {section}.{key[:100]!r} ({error}); "
                'write that entry as a table of its own, [section."key"], and try again'
            ) from None
        if len(text.encode()) > SMALL_FILE_BYTES:  # the next read would refuse the file
            raise CareerbotError(
                f"{path}: the phrasing would take the file over {SMALL_FILE_BYTES:,} bytes, "
                "which careerbot reads; split the transcript and its speakers file"
            )
        replace(path, text)
    finally:
        os.close(folder)  # and with it the lock
    return True


def with_phrasing(data: dict[str, Any], keys: list[str], phrasing: str) -> dict[str, Any]:
    """The plain data of a metadata file with the phrasing added under the keys."""
    data = copy.deepcopy(data)
    table = data
    for name in keys:
        table = table.setdefault(name, {})
    table.setdefault("phrasings", []).append(phrasing)
    return data


def new_file_mode() -> int:
    """What an editor would make a new file: read and write for all, less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def replace(path: Path, text: str) -> None:
    """Write text to path atomically, keeping the file's permissions (and following a
    symbolic link to the file it names, rather than replacing the link)."""
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else new_file_mode()
    # Not *.speakers.toml, so a build running meanwhile never reads the temporary file.
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # newline="": the line endings tomlkit kept are written as they are.
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(name, mode)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
