from pathlib import Path

import pytest

from careerbot import CareerbotError
from careerbot.lexical import Lexicon, Synonyms, word_model, words

SYNONYMS = Synonyms({"ML": ["machine learning"], "CV": ["computer vision", "resume"]})
DOCUMENTS = [
    "How do machine learning engineers work? They build back-end services for models.",
    "What makes a resume stand out? Projects in computer vision that are not the Titanic.",
    "How is the hiring process? Two core-values interviews and one on algorithms.",
]


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon(*word_model(DOCUMENTS, SYNONYMS), SYNONYMS)


def test_words_drop_stopwords_and_chat_filler_and_join_hyphenated_compounds() -> None:
    assert words("Hey, what does he think about back-end ML?") == ["back", "end", "ml", "backend"]


def test_synonyms_expand_for_meaning_and_replace_for_word_matching() -> None:
    assert SYNONYMS.expand("is ML hard") == "is ML (machine learning) hard"
    assert SYNONYMS.replace("my cv") == "my computer vision resume"
    assert SYNONYMS.expand("html is not ml-free") == "html is not ml (machine learning)-free"


def test_an_abbreviations_plural_in_capitals_stands_for_the_plural_long_forms() -> None:
    synonyms = Synonyms(
        {"MLE": ["machine learning engineer"], "IT": ["information technology"], "DEVS": ["devs"]}
    )
    assert synonyms.expand("MLEs at Airbnb") == "MLEs (machine learning engineers) at Airbnb"
    assert synonyms.replace("two APIs, MLEs") == "two APIs, machine learning engineers"
    # Only so written: a word that happens to end so is no plural.
    assert synonyms.replace("its mles MLEss") == "its mles MLEss"
    assert synonyms.replace("ITs") == "information technologys"
    # A plural the table lists itself is taken as listed, not made from its singular.
    assert Synonyms({"DEV": ["developer"], "DEVS": ["devs"]}).replace("DEVs") == "devs"
    assert "mles" in synonyms and "mle" in synonyms and "mlesx" not in synonyms


def test_synonyms_file_is_read_from_the_corpus(tmp_path: Path) -> None:
    (tmp_path / "synonyms.toml").write_text('[synonyms]\nSWE = ["software engineer"]\n')
    assert Synonyms.read(tmp_path).table == {"swe": ["software engineer"]}
    assert Synonyms.read(tmp_path / "missing").table == {}


BAD_SYNONYMS = {
    "not a table": ("synonyms = 5", r"synonyms\.toml: synonyms must be a table"),
    "text, not a table": ('synonyms = "x"', r"synonyms\.toml: synonyms must be a table"),
    "text, not a list": (
        '[synonyms]\nSWE = "software engineer"',
        r"synonyms\.toml: synonym 'SWE' must be a list of one or more long forms",
    ),
    "empty list": ("[synonyms]\nSWE = []", r"synonyms\.toml: synonym 'SWE' must be a list"),
    "empty long form": ('[synonyms]\nSWE = [""]', r"synonyms\.toml: synonym 'SWE' must be a list"),
    "a number in the list": ("[synonyms]\nSWE = [1]", r"synonyms\.toml: synonym 'SWE' must be"),
    "empty key": (
        '[synonyms]\n"" = ["x"]',
        r"synonyms\.toml: synonym '' must start and end with a word character .*\\b",
    ),
    "key ending in a symbol": ('[synonyms]\n"C++" = ["c plus plus"]', r"synonym 'C\+\+' must"),
    "a key whose capital is two letters": ('[synonyms]\n"ß" = ["x"]', r"synonym 'ß' holds a"),
    "a key whose capital has another small letter": ('[synonyms]\n"ı" = ["x"]', r"'ı' holds a"),
    "a key whose small letter is two letters": ('[synonyms]\n"A\u0130" = ["x"]', r"holds a"),
    "a key whose small letter's capital is two letters": (
        '[synonyms]\n"\u1e9eT" = ["x"]',
        "holds a",
    ),
    "a misspelt table": ('[synonym]\nML = ["machine learning"]', r"\[synonym\]: unknown table"),
    "key twice, case aside": (
        '[synonyms]\nML = ["machine learning"]\nml = ["markup language"]',
        r"synonym 'ml' is listed twice",
    ),
}


@pytest.mark.parametrize("case", BAD_SYNONYMS)
def test_a_broken_synonyms_file_is_refused_naming_the_file_and_key(
    tmp_path: Path, case: str
) -> None:
    content, message = BAD_SYNONYMS[case]
    (tmp_path / "synonyms.toml").write_text(content + "\n")
    with pytest.raises(CareerbotError, match=message):
        Synonyms.read(tmp_path)


def test_a_synonyms_table_from_elsewhere_is_checked_the_same_way() -> None:
    assert Synonyms.checked({"ML": ["machine learning"]}, "manifest").table == {
        "ml": ["machine learning"]
    }
    for bad in ({"": ["x"]}, {"ML": "machine learning"}, ["ML"], {"ML": [None]}):
        with pytest.raises(CareerbotError, match=r"^manifest: synonym"):
            Synonyms.checked(bad, "manifest")


def test_an_abbreviation_matched_in_a_case_that_does_not_map_back_stays_as_written() -> None:
    # "K" (the Kelvin sign) matches "k" in any case; its own lower case is "k" too. Were a
    # match ever not found on lookup, the text keeps it rather than failing.
    synonyms = Synonyms({"KB": ["knowledge base"]})
    assert synonyms.expand("a \u212aB question") == "a \u212aB (knowledge base) question"
    assert synonyms.forms("XYZs") is None
    assert Synonyms({"k8s": ["kubernetes"]}).expand("k8\u017f on a laptop") == (
        "k8\u017f (kubernetes) on a laptop"
    )


def test_misspelt_words_are_repaired_to_corpus_words_real_words_are_kept(
    lexicon: Lexicon,
) -> None:
    assert lexicon.repair("machien lerning intervews") == "machine learning interviews"
    # "teaching" is a real word: it is not bent into a corpus word that looks like it.
    assert lexicon.repair("teaching pizza") == "teaching pizza"


def test_repair_is_a_slip_of_the_keyboard_not_a_word_that_contains_a_corpus_word(
    lexicon: Lexicon,
) -> None:
    # One edit, two letters swapped included; two edits in a long word.
    assert lexicon.repair("resmue algoritms") == "resume algorithms"
    assert lexicon.repair("algortihmss") == "algorithms"
    # Compounds and derivations of corpus words are other words ("onsite" is not "site").
    for other in ("backservices", "upmodels", "offhiring", "modelsops"):
        assert lexicon.repair(other) == other


def test_abbreviation_in_the_question_matches_the_long_form_in_passages(lexicon: Lexicon) -> None:
    scores = lexicon.scores(lexicon.terms("ML engineers"))
    assert scores.argmax() == 0 and scores[0] > 0.5
    assert lexicon.matched(lexicon.terms("ML engineers"), DOCUMENTS[0]) == [
        "machine",
        "learning",
        "engineers",
    ]


def test_scores_are_the_share_of_the_questions_information_matched(lexicon: Lexicon) -> None:
    full = lexicon.scores(lexicon.terms("core values interviews"))
    half = lexicon.scores(lexicon.terms("core values interviews salary negotiation"))
    assert 0.8 <= full[2] <= 1.0
    assert 0 < half[2] < full[2]
    assert list(lexicon.scores({})) == [0.0, 0.0, 0.0]


def test_rare_words_weigh_more_than_common_ones(lexicon: Lexicon) -> None:
    assert lexicon.information("titanic") > lexicon.information("work") > 0


def test_coverage_says_how_much_of_a_question_the_corpus_speaks_about(lexicon: Lexicon) -> None:
    assert lexicon.coverage(lexicon.terms("titanic resume projects")) == 1.0
    assert lexicon.coverage(lexicon.terms("sourdough bread recipe")) == 0.0
    assert 0 < lexicon.coverage(lexicon.terms("titanic sourdough")) < 1
