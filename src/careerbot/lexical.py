"""Word matching: BM25 over passages, with synonyms and typo repair, scaled to [0, 1]."""

import functools
import math
import re
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Literal

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from spellchecker import SpellChecker

from careerbot import SMALL_FILE_BYTES, CareerbotError, first_problem, read_limited
from careerbot.metadata import read_toml, refuse_unknown

SYNONYMS_FILE = "synonyms.toml"
# Words people add when chatting that say nothing about the topic.
CHAT_WORDS = {"say", "says", "said", "think", "thinks", "tell", "please", "hey", "hi",
              "would", "could", "get", "like", "really", "lot", "whats", "thing", "things",
              "guy", "mention", "mentions", "mentioned", "talk", "talks", "talked",
              "talking"}  # fmt: skip
STOPWORDS = frozenset(STOPWORDS_EN_PLUS) | CHAT_WORDS
WORD = re.compile(r"\w+")
# A word this long or longer may be repaired by two edits, a shorter one by one.
LONG_WORD = 9


COMPOUND = re.compile(r"\b\w+(?:-\w+)+\b")
# A synonym key is matched between word boundaries (\b), which only work next to a word
# character: an empty key or one like "C++" would match in the wrong places or nowhere.
SYNONYM_KEY = re.compile(r"\w(?:.*\w)?", re.S)
SYNONYM_EXAMPLE = 'e.g. ML = ["machine learning"]'


def words(text: str) -> list[str]:
    """Lower-case words of text that carry meaning; "back-end" also gives "backend"."""
    text = text.lower()
    joined = [compound.replace("-", "") for compound in COMPOUND.findall(text)]
    return [w for w in WORD.findall(text) + joined if w not in STOPWORDS and len(w) > 1]


class Synonyms:
    """Abbreviations people type and the long forms they stand for ("ML" -> "machine learning").

    The constructor trusts its table; `checked` is for one from a file or an index manifest.
    """

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = {key.lower(): forms for key, forms in table.items()}
        # An abbreviation's plural, in capitals and a small s ("MLEs", "APIs"), stands for
        # its long forms' plurals, unless the table lists that plural itself. Only so
        # written: "its" is not the plural of "IT".
        self.plurals = {
            key: [f"{form}s" for form in forms]
            for key, forms in self.table.items()
            if f"{key}s" not in self.table
        }
        # Longest first: of two keys that match at one place ("ML" and "ML ops"), the
        # longer wins. One alternation per kind rather than one per key finds the same,
        # about five times faster (every answer shown has its words matched).
        keys = "|".join(map(re.escape, sorted(self.table, key=len, reverse=True)))
        plurals = "|".join(
            re.escape(key.upper()) for key in sorted(self.plurals, key=len, reverse=True)
        )
        either = rf"(?i:\b(?:{keys})\b)" + (rf"|\b(?:{plurals})s\b" if plurals else "")
        self.pattern = re.compile(either) if keys else None

    def forms(self, abbreviation: str) -> list[str] | None:
        """The long forms of an abbreviation as the pattern matched it. Matched in any
        case, it may hold a letter that only case-folds to the key's (the long s for s);
        None for a match that is no abbreviation after all."""
        for written in (abbreviation.lower(), abbreviation.casefold()):
            found = self.table.get(written)
            if found is None and written.endswith("s"):
                found = self.plurals.get(written[:-1])
            if found is not None:
                return found
        return None

    def __contains__(self, word: str) -> bool:
        """Whether a word, in lower case, is an abbreviation or the plural of one."""
        return word in self.table or (word.endswith("s") and word[:-1] in self.plurals)

    @classmethod
    def checked(cls, table: object, where: str) -> "Synonyms":
        """Synonyms from an untrusted table; `where` names its source in the error."""
        if not isinstance(table, dict):
            raise CareerbotError(f"{where}: synonyms must be a table, {SYNONYM_EXAMPLE}")
        seen: set[str] = set()
        for key, forms in table.items():
            if not isinstance(key, str) or not SYNONYM_KEY.fullmatch(key):
                raise CareerbotError(
                    f"{where}: synonym {key!r} must start and end with a word character (a "
                    "letter, digit or _), as it is matched between word boundaries (\\b)"
                )
            # Matched in any case, then looked up in lower case: each letter must have
            # one upper and one lower case that map back to each other ("ß" is "SS" in
            # capitals, and the dotless i (U+0131) matches "I", whose lower case is "i").
            # The index keeps the key in lower case, which must pass this check too (the
            # capital sharp s is one letter, its small letter's capital is two).
            if not all(
                len(c.upper()) == len(c.lower()) == 1 and c.upper().lower() == c.lower()
                for c in key + key.lower()
            ):
                raise CareerbotError(
                    f"{where}: synonym {key!r} holds a letter whose capital is not one letter "
                    "with the same small letter (such as ß or ı); write the abbreviation "
                    "without it"
                )
            if key.lower() in seen:
                raise CareerbotError(f"{where}: synonym {key!r} is listed twice (case aside)")
            seen.add(key.lower())
            if not (
                isinstance(forms, list)
                and forms
                and all(isinstance(form, str) and form.strip() for form in forms)
            ):
                raise CareerbotError(
                    f"{where}: synonym {key!r} must be a list of one or more long forms, "
                    f"{SYNONYM_EXAMPLE}"
                )
        return cls(table)

    @classmethod
    def read(cls, corpus_dir: Path) -> "Synonyms":
        path = corpus_dir / SYNONYMS_FILE
        if not path.exists():
            return cls({})
        data = read_toml(path)
        refuse_unknown(data, ["synonyms"], f"{path}:", "table")  # [synonym], say
        return cls.checked(data.get("synonyms", {}), str(path))

    def expand(self, text: str) -> str:
        """Text with each abbreviation followed by its long forms: "ML (machine learning)"."""
        if self.pattern is None:
            return text

        def expanded(match: re.Match[str]) -> str:
            forms = self.forms(match[0])
            return f"{match[0]} ({' / '.join(forms)})" if forms else match[0]

        return self.pattern.sub(expanded, text)

    def replace(self, text: str) -> str:
        """Text with each abbreviation replaced by its long forms, for word matching."""
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda m: " ".join(self.forms(m[0]) or [m[0]]), text)


# The files bm25s saves a model into (BM25 as Lucene scores it needs no others).
BM25_FILES = (
    "params.index.json",
    "vocab.index.json",
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
)


class Bm25Params(BaseModel):
    """params.index.json as word_model's BM25 saves it. bm25s passes the file's keys to
    BM25(**params) and reads the types only when scoring: a forged file could pick a
    backend that compiles code or fails to import, or make every question fail later."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    k1: Annotated[float, Field(gt=0, le=100)]
    b: Annotated[float, Field(ge=0, le=1)]
    delta: Annotated[float, Field(ge=0, le=100)]
    method: Literal["lucene"]
    idf_method: Literal["lucene"]
    dtype: Literal["float32"]
    int_dtype: Literal["int32"]
    num_docs: Annotated[int, Field(ge=0)]
    version: Annotated[str, Field(max_length=100)]
    backend: Literal["numpy"]


def load_word_model(folder: Path, documents: int) -> bm25s.BM25:
    """The BM25 model saved in folder, mapped, once it fits `documents` passages: its
    parameters, vocabulary and score arrays checked here, as bm25s trusts them and a
    question would otherwise fail (or score NaN) long after loading."""

    def refuse(reason: str) -> CareerbotError:
        return CareerbotError(f"{folder}: {reason}")

    try:
        params = Bm25Params.model_validate_json(
            read_limited(folder / BM25_FILES[0], SMALL_FILE_BYTES)
        )
    except ValidationError as error:
        reason = first_problem(error, "params")
        raise refuse(f"{BM25_FILES[0]} is not bm25s' parameters ({reason})") from None
    if params.num_docs != documents:
        raise refuse(f"the word model holds {params.num_docs} passages, not {documents}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bm25s warns of versions on load
        bm25 = bm25s.BM25.load(folder, mmap=True, show_progress=False)
    vocab, scores = bm25.vocab_dict, bm25.scores
    data, indices, indptr = scores["data"], scores["indices"], scores["indptr"]
    # Each stem names a column of the scores; columns beyond indptr are stems no passage
    # has (bm25s adds one for the empty word), which Lexicon.idf reads as unknown.
    if not (
        isinstance(vocab, dict)
        and all(type(key) is str and type(column) is int for key, column in vocab.items())
        and set(vocab.values()) == set(range(len(vocab)))
    ):
        raise refuse(f"{BM25_FILES[1]} does not number its words 0, 1, 2, ...")
    shapes = [(array.dtype, array.ndim) for array in (data, indices, indptr)]
    if shapes != [(np.dtype(np.float32), 1), (np.dtype(np.int32), 1), (np.dtype(np.int64), 1)]:
        raise refuse("the word model's scores are not bm25s' arrays (float32, int32, int64)")
    if not (
        1 <= len(indptr) <= len(vocab) + 1
        and indptr[0] == 0
        and indptr[-1] == len(data) == len(indices)
        and (np.diff(indptr) >= 0).all()
        and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < documents))
        and np.isfinite(data).all()
        and (data >= 0).all()
    ):
        raise refuse("the word model's scores do not fit its words and passages")
    return bm25


@functools.cache
def english() -> SpellChecker:
    """English words and how common each is: loaded once for every version served (and
    before a server forks its workers, which then share it)."""
    return SpellChecker()


def word_model(documents: list[str], synonyms: Synonyms) -> tuple[bm25s.BM25, list[str]]:
    """What word matching needs of the passages, made once when the index is built: BM25
    over their words' stems, and the words themselves (for typo repair)."""
    stemmer = Stemmer.Stemmer("english")
    document_words = [words(synonyms.expand(document)) for document in documents]
    bm25 = bm25s.BM25()
    bm25.index([stemmer.stemWords(ws) for ws in document_words], show_progress=False)
    return bm25, sorted({w for ws in document_words for w in ws})


class Lexicon:
    """BM25 over the passages' words (stemmed), normalised so scores compare across questions."""

    def __init__(self, bm25: bm25s.BM25, vocabulary: list[str], synonyms: Synonyms) -> None:
        self.synonyms = synonyms
        self.stemmer = Stemmer.Stemmer("english")
        self.bm25 = bm25
        self.vocabulary = vocabulary
        self.known = set(vocabulary)
        # Per stem, its passages are a column of the scores, between two of these offsets.
        self.columns = bm25.scores["indptr"]
        self.count = int(bm25.scores["num_docs"])
        self.dictionary = english()
        # A request repairs its question twice (for the model, then for word matching),
        # and people repeat questions: remember recent repairs.
        self.repair = functools.lru_cache(maxsize=1024)(self.repair_words)
        # The stems of the passages shown lately: a passage is shown to many questions.
        self.stems_of = functools.lru_cache(maxsize=2048)(self.stems_in)

    def idf(self, stem: str) -> float | None:
        """A stem's inverse document frequency, as BM25 (Lucene) has it; None for a stem
        that no passage has."""
        column = self.bm25.vocab_dict.get(stem)
        if column is None or column + 1 >= len(self.columns):
            return None
        # Every passage with the stem scores above zero, so its column lists them all.
        found = int(self.columns[column + 1] - self.columns[column])
        return math.log(1 + (self.count - found + 0.5) / (found + 0.5)) if found else None

    def repair_words(self, question: str) -> str:
        """Fix misspelt words that are close to a word of the corpus ("intervew" -> "interview").

        A slip of the keyboard changes a letter or two: one (a letter added, dropped,
        changed, or two swapped) in a word of fewer than LONG_WORD letters, two in a longer
        one, the word and its repair still 80 % alike (fuzz.ratio: so a short word is not
        bent into another short word). A word further from every corpus word is left as it
        is: more often it is one the corpus lacks, often a compound of a corpus word
        ("onsite", "upsell", "sklearn"), than a misspelling of it."""

        def fix(match: re.Match[str]) -> str:
            word = match[0]
            lower = word.lower()
            if (
                len(lower) < 4
                or lower in self.known
                or lower in STOPWORDS
                or lower in self.synonyms
                or not self.dictionary.unknown([lower])
            ):
                return word
            most = 1 if len(lower) < LONG_WORD else 2
            near = process.extract(
                lower, self.vocabulary, scorer=OSA.distance, score_cutoff=most, limit=None
            )
            # The fewest edits; among those, the most alike by fuzz.ratio, which weighs the
            # lengths.
            ranked = sorted((edits, -fuzz.ratio(lower, found), found) for found, edits, _ in near)
            return next((found for _, unlike, found in ranked if -unlike >= 80), word)

        return WORD.sub(fix, question)

    def terms(self, question: str, ignore: Collection[str] = ()) -> dict[str, str]:
        """The question's stems, each with the word it came from, less the ignored words."""
        found = [w for w in words(self.synonyms.replace(question)) if w not in ignore]
        return dict(zip(self.stemmer.stemWords(found), found, strict=True))

    def information(self, word: str) -> float:
        """How much a word says: rare words in English say more than "get" or "job"."""
        frequency = self.dictionary.word_frequency
        return math.log(frequency.total_words / (frequency.dictionary.get(word, 0) + 1))

    def scores(self, terms: dict[str, str]) -> NDArray[np.float64]:
        """Each passage's share of the question's information that it matches, from 0 to 1.

        A word counts in full when BM25 finds it once in a passage of typical length (less
        in a longer one), and is weighed by how informative it is in English.
        """
        total = np.zeros(self.count)
        weights = {stem: self.information(word) for stem, word in terms.items()}
        # Lucene's BM25 gives a word at most its idf; one occurrence in a passage of
        # typical length gives idf / (k1 + 1): that much counts as a full match.
        full = 1 + self.bm25.k1
        for stem, weight in weights.items():
            idf = self.idf(stem)
            if idf is not None:
                matched = self.bm25.get_scores([stem]) * full / idf
                total += weight * np.minimum(1.0, matched)
        return np.minimum(1.0, total / max(sum(weights.values()), 1e-9))

    def coverage(self, terms: dict[str, str]) -> float:
        """The share of the question's information in words that the corpus uses at all."""
        weights = {stem: self.information(word) for stem, word in terms.items()}
        known = sum(weight for stem, weight in weights.items() if self.idf(stem) is not None)
        return known / sum(weights.values()) if weights else 0.0

    def matched(self, terms: dict[str, str], document: str) -> list[str]:
        """The question's words that a passage's text contains (after stemming)."""
        stems = self.stems_of(document)
        return [word for stem, word in terms.items() if stem in stems]

    def stems_in(self, document: str) -> frozenset[str]:
        return frozenset(self.stemmer.stemWords(words(self.synonyms.expand(document))))
