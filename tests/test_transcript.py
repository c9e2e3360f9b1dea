import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from careerbot import CareerbotError
from careerbot.metadata import Interview
from careerbot.transcript import MAX_TRANSCRIPT_BYTES, parse_corpus, parse_transcript
from tests.conftest import CORPUS, DATA

GOLDEN = Path(__file__).resolve().parent / "golden" / "ml-engineer-career-qa.json"
DEFAULT = CORPUS / "ml-engineer-career-qa.txt"


def as_golden(path: Path) -> dict[str, object]:
    transcript = parse_transcript(path, f"corpus/{path.name}")
    return json.loads(json.dumps(asdict(transcript)))


def test_default_transcript_matches_golden_file() -> None:
    """Regenerate after a reviewed parser change with CAREERBOT_UPDATE_GOLDEN=1."""
    parsed = as_golden(DEFAULT)
    assert parsed.pop("warnings") == []
    parsed.pop("curation")  # a curator's to edit; checked below
    parsed.pop("interview")  # likewise
    for turn in parsed["turns"]:  # type: ignore[attr-defined]
        turn.pop("phrasings")  # likewise
    if os.environ.get("CAREERBOT_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(parsed, indent=2, ensure_ascii=False) + "\n")
    assert parsed == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_default_transcript_has_seven_questions_and_nine_attributed_answers() -> None:
    transcript = parse_transcript(DEFAULT)
    assert len(transcript.questions) == 7
    assert all(q.text.endswith("?") for q in transcript.questions)
    who = [(turn.question.number, turn.speaker.name) for turn in transcript.turns]
    assert who == [
        (1, "Chirag Mahapatra"),
        (1, "Shubhankar Jain"),
        (2, "Chirag Mahapatra"),
        (3, "Chirag Mahapatra"),
        (4, "Chirag Mahapatra"),
        (5, "Shubhankar Jain"),
        (6, "Chirag Mahapatra"),
        (6, "Shubhankar Jain"),
        (7, "Chirag Mahapatra"),
    ]
    chirag = transcript.speakers[0]
    assert (chirag.id, chirag.title) == ("chirag-mahapatra", "Machine learning engineer at Airbnb")


def test_a_multi_sentence_paragraph_ending_in_a_question_mark_stays_in_the_answer() -> None:
    transcript = parse_transcript(DEFAULT)
    first = transcript.turns[0]
    assert first.paragraphs[-1].text.startswith("At least at Airbnb, the data scientist role")
    assert first.paragraphs[-1].text.endswith("counting them in the right way?")


def test_intro_editors_note_and_advert_are_in_no_answer() -> None:
    transcript = parse_transcript(DEFAULT)
    text = " ".join(p.text for turn in transcript.turns for p in turn.paragraphs)
    for outside in ("We recently sat down", "highlights", "lightly edited", "Springboard"):
        assert outside not in text
    assert transcript.turns[-1].paragraphs[-1].text.endswith("around explainability.")


def test_without_an_end_marker_the_editors_closing_lines_are_left_out(tmp_path: Path) -> None:
    unmarked = tmp_path / "unmarked.txt"
    unmarked.write_text(DEFAULT.read_text(encoding="utf-8").replace("---\n\n", ""))
    transcript = parse_transcript(unmarked)
    assert len(transcript.turns) == 9
    last = transcript.turns[-1].paragraphs[-1]
    assert last.text.endswith("around explainability.")
    text = " ".join(p.text for turn in transcript.turns for p in turn.paragraphs)
    assert "lightly edited" not in text and "Springboard" not in text


def test_a_closing_paragraph_in_the_first_person_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "end.txt"
    path.write_text("Why?\n\nAda: Because.\n\nAnd we would do it again.\n\nSubscribe today.\n")
    paragraphs = parse_transcript(path).turns[0].paragraphs
    assert [p.text for p in paragraphs] == ["Because.", "And we would do it again."]


def test_without_an_end_marker_at_most_three_closing_paragraphs_are_left_out(
    tmp_path: Path,
) -> None:
    path = tmp_path / "long.txt"
    later = "".join(f"The work goes on, part {n}.\n\n" for n in range(1, 11))
    path.write_text(f"Intro.\n\nWhy?\n\nAda: I think so.\n\n{later}")
    transcript = parse_transcript(path)
    paragraphs = transcript.turns[0].paragraphs
    assert [p.text for p in paragraphs][-2:] == [
        "The work goes on, part 6.",
        "The work goes on, part 7.",
    ]
    assert len(paragraphs) == 8
    assert transcript.warnings == (
        f"{path}: lines 21-25, at the end with no 'I' or 'we', are taken as a closing note "
        "and left out; put a line '---' after the last answer to say where the interview ends",
    )


def test_a_parse_that_leaves_out_most_of_the_text_warns_naming_the_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "early.txt"
    note = "An editor's note that goes on at length about this interview."
    path.write_text(f"{note}\n\n{note}\n\nWhy?\n\nAda: I do.\n\n---\n\n{note}\n{note}\n")
    (warning,) = parse_transcript(path, "corpus/early.txt").warnings
    assert warning.startswith("corpus/early.txt: 9")
    assert "% of the text is in no question or answer (lines 1-3, 11-12 left out)" in warning
    assert "a line '---'" in warning


def test_a_speaker_listed_but_never_answering_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "two.txt"
    path.write_text("Why?\n\nChirag: Because I can.\n")
    (tmp_path / "two.speakers.toml").write_text(
        '[speakers.Chirag]\nname = "Chirag Mahapatra"\n\n[speakers.Ada]\nname = "Ada Lovelace"\n'
    )
    assert parse_transcript(path, "corpus/two.txt").warnings == (
        "corpus/two.txt: two.speakers.toml lists 'Ada Lovelace', who answers no question",
    )


def test_answers_keep_the_source_line_numbers() -> None:
    transcript = parse_transcript(DEFAULT)
    lines = DEFAULT.read_text(encoding="utf-8").splitlines()
    for turn in transcript.turns:
        assert lines[turn.question.line - 1] == turn.question.text
        for paragraph in turn.paragraphs:
            assert lines[paragraph.first_line - 1].strip().endswith(paragraph.text)


def test_another_transcript_with_other_speakers_parses_the_same_way() -> None:
    transcript = parse_transcript(DATA / "other" / "design-careers-qa.txt")
    assert [q.text for q in transcript.questions] == [
        "How do you build a design portfolio with no professional experience?",
        "What do design managers look for in a junior designer?",
        "Is it worth learning to code as a designer?",
    ]
    who = [(turn.question.number, turn.speaker.name) for turn in transcript.turns]
    assert who == [(1, "Maria Okafor"), (1, "Tom Reyes"), (2, "Tom Reyes"), (3, "Maria Okafor")]
    maria = transcript.turns[0]
    # Hard-wrapped lines join into one paragraph; the next paragraph stays with Maria.
    assert maria.paragraphs[0].text.startswith(
        "Start with problems you actually have. I redesigned"
    )
    assert (maria.paragraphs[0].first_line, maria.paragraphs[0].last_line) == (7, 9)
    assert maria.paragraphs[1].text.startswith("Hiring managers want to see")
    assert "newsletter" not in str(transcript.turns[-1].paragraphs)
    assert transcript.speakers[0].title == "Product designer at Lumen Health"


def test_without_a_speakers_file_names_stand_as_written(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_text("Intro.\n\nWhat is it like?\n\nAda Lovelace: Busy.\n\nGrace: Fun.\n")
    transcript = parse_transcript(path)
    assert [(s.id, s.name, s.title) for s in transcript.speakers] == [
        ("ada-lovelace", "Ada Lovelace", ""),
        ("grace", "Grace", ""),
    ]


def test_a_question_may_have_a_short_lead_in_and_a_label_a_note(tmp_path: Path) -> None:
    path = tmp_path / "lead.txt"
    path.write_text(
        "Intro.\n\nLet's talk about hiring. What does the process look like?\n\n"
        "Ada Lovelace (Analytical Engines): Long.\n"
    )
    transcript = parse_transcript(path)
    assert transcript.questions[0].text.startswith("Let's talk about hiring.")
    turn = transcript.turns[0]
    assert (turn.speaker.name, turn.paragraphs[0].text) == ("Ada Lovelace", "Long.")


def test_speakers_may_be_labelled_by_full_name(tmp_path: Path) -> None:
    path = tmp_path / "full.txt"
    path.write_text("Is it hard?\n\nChirag Mahapatra: Yes.\n")
    (tmp_path / "full.speakers.toml").write_text('[speakers.Chirag]\nname = "Chirag Mahapatra"\n')
    assert parse_transcript(path).turns[0].speaker.id == "chirag-mahapatra"


MALFORMED = {
    "no questions": (
        b"Just an intro.\n\nAnd nothing else.\n",
        r"bad\.txt:1: no interview question",
    ),
    "answer before any question": (
        b"Intro.\n\nChirag: I answer first.\n\nWhy?\n\nChirag: Because.\n",
        r"bad\.txt:3: answer by 'Chirag' before any interview question",
    ),
    "unknown speaker label": (
        b"Intro.\n\nWhy?\n\nChirag: Because.\n\nHow?\n\nMallory: Like so.\n",
        r"bad\.txt:9: unknown speaker 'Mallory'; bad\.speakers\.toml lists Chirag Mahapatra",
    ),
    "undecodable bytes": (
        b"Intro.\n\nWhy?\n\nChirag: caf\xe9 au lait.\n",
        r"bad\.txt:5: not UTF-8 text \(byte 0xe9\)",
    ),
    "empty answer": (b"Why?\n\nChirag:\n\nHow?\n\nChirag: So.\n", r"bad\.txt:1: .* empty answer"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_transcript_fails_naming_file_and_line(tmp_path: Path, case: str) -> None:
    content, message = MALFORMED[case]
    (tmp_path / "bad.txt").write_bytes(content)
    (tmp_path / "bad.speakers.toml").write_text('[speakers.Chirag]\nname = "Chirag Mahapatra"\n')
    with pytest.raises(CareerbotError, match=message):
        parse_corpus(tmp_path)


def test_broken_speakers_file_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Why?\n\nChirag: So.\n")
    (tmp_path / "a.speakers.toml").write_text("[speakers.Chirag\nname = 1\n")
    with pytest.raises(CareerbotError, match=r"a\.speakers\.toml: .*line 1"):
        parse_corpus(tmp_path)


def test_a_transcript_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    # Not UTF-8: had the file been read, the error would say so.
    (tmp_path / "big.txt").write_bytes(b"\xff" * 2000)
    with pytest.raises(CareerbotError, match=r"big\.txt: 2,000 bytes, over the limit of 1,000 "):
        parse_corpus(tmp_path, max_bytes=1000)


def test_the_default_size_limit_is_ten_mebibytes(tmp_path: Path) -> None:
    assert MAX_TRANSCRIPT_BYTES == 10 * 1024 * 1024
    with (tmp_path / "big.txt").open("wb") as sparse:
        sparse.truncate(MAX_TRANSCRIPT_BYTES + 1)
    with pytest.raises(CareerbotError, match=r"big\.txt: 10,485,761 bytes, over the limit"):
        parse_corpus(tmp_path)


def test_a_folder_named_like_a_transcript_is_refused(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(CareerbotError, match=r"folder\.txt: not a regular file"):
        parse_corpus(tmp_path)


def test_empty_corpus_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CareerbotError, match="no transcripts"):
        parse_corpus(tmp_path)


def test_questions_and_answers_after_the_end_marker_are_warned_of(tmp_path: Path) -> None:
    path = tmp_path / "early.txt"
    long = "I do, and I have for years, since my first job on a small data team. " * 3
    path.write_text(f"Why?\n\nAda: {long}\n\n---\n\nHow?\n\nAda: I learn.\n\nEdited.\n")
    transcript = parse_transcript(path, "corpus/early.txt")
    assert len(transcript.turns) == 1
    assert transcript.warnings == (
        "corpus/early.txt:5: the line '---' ends the interview, yet questions and answers "
        "follow it (lines 7-11 left out); move it after the last answer",
    )


def test_an_editors_note_after_the_end_marker_is_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    long = "I do, and I have for years, since my first job on a small data team. " * 3
    path.write_text(f"Why?\n\nAda: {long}\n\n---\n\nNote: edited for length. Subscribe?\n")
    assert parse_transcript(path).warnings == ()


def test_line_numbers_count_newlines_only(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_text("Intro\u2028with a separator\x0c and a form feed.\r\n\r\nWhy?\n\nAda: I do.\n")
    (turn,) = parse_transcript(path).turns
    assert (turn.question.line, turn.paragraphs[0].first_line) == (3, 5)


def test_the_metadata_file_gives_phrasings_and_uncovered_topics() -> None:
    transcript = parse_transcript(DEFAULT)
    questions = {question.text for question in transcript.questions}
    phrasings = transcript.curation.phrasings
    assert phrasings and set(phrasings) <= questions
    assert all(texts and all(t.strip() == t for t in texts) for texts in phrasings.values())
    assert "pay" in transcript.curation.uncovered
    # Every answer of the default transcript has phrasings of its own.
    assert all(turn.phrasings for turn in transcript.turns)


BAD_METADATA = {
    "a question not in the transcript": (
        '[questions."What is love?"]\nphrasings = ["baby don\'t hurt me"]',
        "[questions] 'What is love?' is not a question in corpus/qa.txt",
    ),
    "phrasings not a list": (
        '[questions."Why?"]\nphrasings = "because"',
        "[questions] 'Why?': expected phrasings = a list of one or more texts",
    ),
    "an empty phrasing": ('[uncovered.pay]\nphrasings = [" "]', "[uncovered] 'pay': expected"),
    "an unknown key": ('[uncovered.pay]\nphrasing = ["x"]', "[uncovered] 'pay': expected"),
    "a control character": (
        '[uncovered.pay]\nphrasings = ["a\\u0007b"]',
        "without control characters",
    ),
    "nested too deeply": ("x = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    "an answer to a question not in the transcript": (
        '[questions."What is love?".answers.Ada]\nphrasings = ["x"]',
        "'What is love?' answers.Ada: not a question in corpus/qa.txt",
    ),
    "an answer by nobody the file lists": (
        '[questions."Why?".answers.Bob]\nphrasings = ["x"]',
        "answers.Bob: no speaker is called 'Bob'; the file lists Ada",
    ),
    "an empty answers table": (
        '[questions."Why?".answers]',
        "[questions] 'Why?' answers: expected [...answers.<speaker>] tables",
    ),
    "an unknown key beside phrasings": (
        '[questions."Why?"]\nphrasings = ["x"]\nanswer = 1',
        "without control characters, and optionally answers.<speaker> tables",
    ),
    "an answer's phrasings not a list": (
        '[questions."Why?".answers.Ada]\nphrasings = "because"',
        "[questions] 'Why?' answers 'Ada': expected phrasings = a list",
    ),
    "answers not a table": (
        '[questions."Why?"]\nanswers = ["x"]',
        "[questions] 'Why?' answers must be tables",
    ),
    "a topic name with spaces": (
        '[uncovered."work life"]\nphrasings = ["x"]',
        "a topic's name is lowercase words joined by hyphens",
    ),
    "a topic name too long to log": (
        f'[uncovered.{"pay-" * 20}x]\nphrasings = ["x"]',
        "a topic's name is lowercase words joined by hyphens, at most 60 characters",
    ),
}


@pytest.mark.parametrize("case", BAD_METADATA)
def test_bad_curation_in_the_metadata_file_is_one_clear_error(tmp_path: Path, case: str) -> None:
    table, message = BAD_METADATA[case]
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text(f'[speakers.Ada]\nname = "Ada"\n\n{table}\n')
    with pytest.raises(CareerbotError) as error:
        parse_transcript(tmp_path / "qa.txt", "corpus/qa.txt")
    assert message in str(error.value)


def test_the_metadata_file_gives_phrasings_of_particular_answers(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n\nBob: I don't.\n\nHow?\n\nAda: So.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        '[speakers.Ada]\nname = "Ada Lovelace"\n\n[speakers.Bob]\nname = "Bob"\n\n'
        '[questions."Why?"]\nphrasings = ["what for"]\n\n'
        '[questions."Why?".answers.Ada]\nphrasings = [" do you? ", "do you?"]\n\n'
        '[questions."How?".answers."Ada Lovelace"]\nphrasings = ["in what way"]\n'
    )
    transcript = parse_transcript(tmp_path / "qa.txt")
    phrased = {(t.question.text, t.speaker.name): t.phrasings for t in transcript.turns}
    assert phrased == {
        ("Why?", "Ada Lovelace"): ("do you?",),
        ("Why?", "Bob"): (),
        ("How?", "Ada Lovelace"): ("in what way",),
    }
    assert transcript.curation.phrasings == {"Why?": ("what for",)}


def test_an_answers_phrasings_name_a_speaker_who_answers_that_question(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n\nHow?\n\nBob: So.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        '[speakers.Ada]\nname = "Ada Lovelace"\n\n[speakers.Bob]\nname = "Bob"\n\n'
        '[questions."How?".answers.Ada]\nphrasings = ["in what way"]\n'
    )
    with pytest.raises(CareerbotError) as error:
        parse_transcript(tmp_path / "qa.txt")
    assert str(error.value) == (
        "qa.speakers.toml: [questions] 'How?' answers.Ada: 'Ada Lovelace' gives no answer "
        "to that question"
    )


def test_the_metadata_file_gives_the_default_interview_a_title_only() -> None:
    interview = parse_transcript(DEFAULT).interview
    assert interview.title == (
        "Machine learning engineer careers: Q&A with Airbnb and SurveyMonkey engineers"
    )
    assert (interview.date, interview.url) == (None, None)


@pytest.mark.parametrize("date", ["2019-01-15", '"2019-01-15"'])
def test_the_interview_title_date_and_url_are_read_and_trimmed(tmp_path: Path, date: str) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        '[interview]\ntitle = " Ada on why "\n'
        f'date = {date}\nurl = "https://example.org/ada?q=1#top"\n\n'
        '[speakers.Ada]\nname = "Ada"\n'
    )
    interview = parse_transcript(tmp_path / "qa.txt").interview
    assert interview == Interview("Ada on why", "2019-01-15", "https://example.org/ada?q=1#top")


def test_without_an_interview_table_its_fields_are_none(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text('[speakers.Ada]\nname = "Ada"\n')
    assert parse_transcript(tmp_path / "qa.txt").interview == Interview()
    (tmp_path / "qa.speakers.toml").unlink()
    assert parse_transcript(tmp_path / "qa.txt").interview == Interview()


BAD_INTERVIEW = {
    "a date in another order": (
        'date = "15/01/2019"',
        "qa.speakers.toml: [interview] date: expected a date as YYYY-MM-DD, such as "
        "2019-01-15, not '15/01/2019'",
    ),
    "a day that does not exist": ('date = "2019-02-30"', "[interview] date: expected a date"),
    "a date in compact form": ('date = "20190115"', "[interview] date: expected a date"),
    "a date with a time": (
        "date = 2019-01-15T10:00:00",
        "[interview] date: expected a date as YYYY-MM-DD, such as 2019-01-15, "
        "not 2019-01-15 10:00:00 (datetime)",
    ),
    "a javascript: url": (
        'url = "javascript:alert(1)"',
        "qa.speakers.toml: [interview] url: expected an absolute http or https address of "
        "at most 2000 characters, such as https://example.org/interview, not "
        "'javascript:alert(1)'",
    ),
    "a data: url": ('url = "data:text/html,<b>hi</b>"', "[interview] url: expected an absolute"),
    "a relative url": ('url = "/interviews/ada"', "[interview] url: expected an absolute"),
    "a url without a host": ('url = "https:///ada"', "[interview] url: expected an absolute"),
    "a url with a space": ('url = "https://example.org/a b"', "[interview] url: expected"),
    "a url with a port that is not a number": ('url = "https://a.example:abc/"', "url: expected"),
    "a url with a port out of range": ('url = "https://a.example:99999/"', "url: expected"),
    # Browsers read \ as /, Python does not: the two would see different hosts.
    "a url with a backslash": ('url = "https://a.example\\\\@b.example/"', "url: expected"),
    "a url over the limit": (
        f'url = "https://example.org/{"a" * 2000}"',
        "[interview] url: expected an absolute http or https address of at most 2000",
    ),
    "an empty title": (
        'title = "  "',
        "qa.speakers.toml: [interview] title: expected a text of 1 to 200 characters, "
        "without control characters, not '  '",
    ),
    "a title over the limit": (f'title = "{"a" * 201}"', "[interview] title: expected a text"),
    "a title with a control character": ('title = "a\\u0007b"', "[interview] title: expected"),
    "a title that is a number": ("title = 7", "[interview] title: expected a text of 1 to 200 "),
    "a date that is a number": ("date = 2019", "[interview] date: expected a date as YYYY-MM-DD"),
    "a url that is a list": ('url = ["https://example.org"]', "[interview] url: expected an"),
    "an unknown field": (
        'link = "https://example.org"',
        "qa.speakers.toml: [interview] 'link': unknown field; expected title, date, url",
    ),
}


@pytest.mark.parametrize("case", BAD_INTERVIEW)
def test_a_bad_interview_field_is_one_clear_error(tmp_path: Path, case: str) -> None:
    line, message = BAD_INTERVIEW[case]
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        f'[interview]\n{line}\n\n[speakers.Ada]\nname = "Ada"\n'
    )
    with pytest.raises(CareerbotError) as error:
        parse_corpus(tmp_path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_an_interview_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text('interview = "Ada"\n[speakers.Ada]\nname = "A"\n')
    with pytest.raises(CareerbotError, match=r"qa\.speakers\.toml: \[interview\] must be a table"):
        parse_corpus(tmp_path)


@pytest.mark.parametrize("name", ['""', '"   "'])
def test_a_speaker_with_an_empty_name_is_one_clear_error(tmp_path: Path, name: str) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text(f"[speakers.Ada]\nname = {name}\n")
    with pytest.raises(CareerbotError, match=r"qa\.speakers\.toml: speaker 'Ada' needs a name"):
        parse_corpus(tmp_path)


@pytest.mark.parametrize("field", ["name", "role", "organization"])
def test_a_speaker_field_with_a_direction_override_is_refused(tmp_path: Path, field: str) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    entry = {"name": "Ada", "role": "Engineer", "organization": "Acme"}
    entry[field] += "\u202e"
    lines = "".join(f'{key} = "{value}"\n' for key, value in entry.items())
    (tmp_path / "qa.speakers.toml").write_text(f"[speakers.Ada]\n{lines}")
    with pytest.raises(CareerbotError, match=r"may not hold control or text-direction"):
        parse_corpus(tmp_path)


BAD_SPEAKERS_FILE = {
    "a misspelt speaker field": (
        '[speakers.Ada]\nname = "Ada"\nrol = "Engineer"\n',
        "qa.speakers.toml: speaker 'Ada' 'rol': unknown field; expected name, role, organization",
    ),
    "a misspelt table": (
        '[speakers.Ada]\nname = "Ada"\n\n[questionz."Why?"]\nphrasings = ["how come"]\n',
        "qa.speakers.toml: [questionz]: unknown table; expected [speakers], [interview], "
        "[questions], [uncovered]",
    ),
    "a speakers table with no speaker": ("speakers = {}\n", "expected [speakers.LABEL] tables"),
}


@pytest.mark.parametrize("case", BAD_SPEAKERS_FILE)
def test_a_key_the_speakers_file_does_not_know_is_one_clear_error(
    tmp_path: Path, case: str
) -> None:
    content, message = BAD_SPEAKERS_FILE[case]
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text(content)
    with pytest.raises(CareerbotError) as error:
        parse_corpus(tmp_path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_metadata_file_without_speakers_leaves_the_labels_as_written(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda Lovelace: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        '[interview]\ntitle = "On engines"\n\n'
        '[questions."Why?".answers."Ada Lovelace"]\nphrasings = ["what drives you"]\n'
    )
    parsed = parse_transcript(tmp_path / "qa.txt")
    assert parsed.interview.title == "On engines"
    assert [(s.id, s.name, s.role) for s in parsed.speakers] == [
        ("ada-lovelace", "Ada Lovelace", "")
    ]
    assert [t.phrasings for t in parsed.turns] == [("what drives you",)]


def test_a_label_may_open_with_a_capital_of_any_script(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text(
        "Why?\n\nAda: I do.\n\nÉmile Zola (Médan): I write.\n\nŁukasz: So do I.\n"
    )
    parsed = parse_transcript(tmp_path / "qa.txt")
    assert [(t.speaker.id, t.speaker.name) for t in parsed.turns] == [
        ("ada", "Ada"),
        ("émile-zola", "Émile Zola"),
        ("łukasz", "Łukasz"),
    ]
    # A lower-case opening is still no label: "émile: ..." goes on the answer before it.
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n\némile: I write.\n")
    assert len(parse_transcript(tmp_path / "qa.txt").turns) == 1


SPEAKERS_ALIKE = {
    "names in another script": (
        "Why?\n\nAda: I do.\n\nBob: So do I.\n",
        '[speakers.Ada]\nname = "李雷"\n\n[speakers.Bob]\nname = "王芳"\n',
        None,
    ),
    "names with vowel signs": (
        "Why?\n\nSita: I do.\n\nSuta: So do I.\n",
        '[speakers.Sita]\nname = "सीता"\n\n[speakers.Suta]\nname = "सुता"\n',
        None,
    ),
    "names alike but for a hyphen": (
        "Why?\n\nAda: I do.\n\nBob: So do I.\n",
        '[speakers.Ada]\nname = "Ana-Maria Pop"\n\n[speakers.Bob]\nname = "Ana Maria Pop"\n',
        "speakers 'Ana-Maria Pop' and 'Ana Maria Pop' would share the id 'ana-maria-pop'",
    ),
    "labels alike but for a hyphen": (
        "Why?\n\nAna-Maria: I do.\n\nAna Maria: So do I.\n",
        None,
        "qa.txt:5: 'Ana Maria' and 'Ana-Maria' would be one speaker (id 'ana-maria')",
    ),
    "a name of punctuation only": (
        "Why?\n\nAda: I do.\n",
        '[speakers.Ada]\nname = "???"\n',
        "speaker 'Ada': a name needs a letter or digit",
    ),
}


@pytest.mark.parametrize("case", SPEAKERS_ALIKE)
def test_two_speakers_never_share_an_id(tmp_path: Path, case: str) -> None:
    transcript, speakers, message = SPEAKERS_ALIKE[case]
    (tmp_path / "qa.txt").write_text(transcript)
    if speakers is not None:
        (tmp_path / "qa.speakers.toml").write_text(speakers)
    if message is None:
        parsed = parse_transcript(tmp_path / "qa.txt")
        assert [s.id for s in parsed.speakers] == [s.name for s in parsed.speakers]
        assert len(parsed.speakers) == 2
        return
    with pytest.raises(CareerbotError) as error:
        parse_transcript(tmp_path / "qa.txt")
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("end", [b"\r", b"\r\n", b"\n"])
def test_lines_ended_by_cr_alone_are_lines(tmp_path: Path, end: bytes) -> None:
    # Also when a tool has appended one line end of another kind.
    (tmp_path / "qa.txt").write_bytes(b"Intro.\r\rWhy?\r\rAda: I do.\rStill me." + end)
    parsed = parse_transcript(tmp_path / "qa.txt")
    assert [(q.text, q.line) for q in parsed.questions] == [("Why?", 3)]
    assert [p.text for p in parsed.turns[0].paragraphs] == ["I do. Still me."]


def test_a_corpus_given_as_dot_is_named_by_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "talks"
    corpus.mkdir()
    (corpus / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    monkeypatch.chdir(corpus)
    assert [t.document for t in parse_corpus(Path("."))] == ["talks/qa.txt"]
    assert [t.document for t in parse_corpus(Path("../talks/"))] == ["talks/qa.txt"]
    monkeypatch.chdir(tmp_path)
    assert [t.document for t in parse_corpus(Path("talks/../talks"))] == ["talks/qa.txt"]


def test_one_person_under_two_labels_is_one_speaker(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nChirag: I do.\n\nHow?\n\nCM: Like so.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        '[speakers.Chirag]\nname = "Chirag Mahapatra"\n\n[speakers.CM]\nname = "Chirag Mahapatra"\n'
    )
    parsed = parse_transcript(tmp_path / "qa.txt")
    assert [s.id for s in parsed.speakers] == ["chirag-mahapatra"]
    assert [t.speaker.name for t in parsed.turns] == ["Chirag Mahapatra"] * 2


def test_a_label_the_file_gives_beats_another_speakers_first_name(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nCM: I do.\n\nChirag: So do I.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        '[speakers.CM]\nname = "Chirag Mahapatra"\n\n[speakers.Chirag]\nname = "Chirag Shah"\n'
    )
    parsed = parse_transcript(tmp_path / "qa.txt")
    assert [t.speaker.name for t in parsed.turns] == ["Chirag Mahapatra", "Chirag Shah"]


def test_one_name_under_two_labels_with_two_roles_is_refused(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nChirag: I do.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        '[speakers.Chirag]\nname = "Chirag M"\nrole = "Engineer"\n\n'
        '[speakers.CM]\nname = "Chirag M"\nrole = "Manager"\n'
    )
    with pytest.raises(CareerbotError, match="speaker 'CM' is 'Chirag M' as another label is"):
        parse_transcript(tmp_path / "qa.txt")


def test_a_name_typed_two_ways_is_one_name(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nJose: I do.\n\nJM: So do I.\n")
    (tmp_path / "qa.speakers.toml").write_text(
        '[speakers.Jose]\nname = "Jose\\u0301 M"\n\n[speakers.JM]\nname = "Jos\\u00e9 M "\n'
    )
    parsed = parse_transcript(tmp_path / "qa.txt")
    assert [s.name for s in parsed.speakers] == ["Jos\u00e9 M"]


def test_a_byte_that_is_not_utf8_is_placed_on_its_line_whatever_ends_the_lines(
    tmp_path: Path,
) -> None:
    for end in (b"\n", b"\r\n", b"\r"):
        (tmp_path / "qa.txt").write_bytes(end.join([b"Why?", b"", b"Ada: I \xff do."]) + end)
        with pytest.raises(CareerbotError, match=r"qa\.txt:3: not UTF-8 text \(byte 0xff\)"):
            parse_transcript(tmp_path / "qa.txt")
