"""Word matching: BM25 over passages, with synonyms and typo repair, scaled to [0, 1]."""

import functools
import math
import re
from collections import Counter
from collections.abc import Collection
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS
from numpy.typing import NDArray
from rapidfuzz import fuzz, process
from spellchecker import SpellChecker

from careerbot import CareerbotError
from careerbot.metadata import read_toml

SYNONYMS_FILE = "synonyms.toml"
# Words people add when chatting that say nothing about the topic.
CHAT_WORDS = {"say", "says", "said", "think", "thinks", "tell", "please", "hey", "hi",
              "would", "could", "get", "like", "really", "lot", "whats", "thing", "things",
              "guy", "mention", "mentions", "mentioned", "talk", "talks", "talked",
              "talking"}  # fmt: skip
STOPWORDS = frozenset(STOPWORDS_EN_PLUS) | CHAT_WORDS
WORD = re.compile(r"\w+")


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
        keys = sorted(self.table, key=len, reverse=True)
        self.pattern = (
            re.compile(rf"\b({'|'.join(map(re.escape, keys))})\b", re.I) if keys else None
        )

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
        return cls.checked(read_toml(path).get("synonyms", {}), str(path))

    def expand(self, text: str) -> str:
        """Text with each abbreviation followed by its long forms: "ML (machine learning)"."""
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda m: f"{m[0]} ({' / '.join(self.table[m[0].lower()])})", text)

    def replace(self, text: str) -> str:
        """Text with each abbreviation replaced by its long forms, for word matching."""
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda m: " ".join(self.table[m[0].lower()]), text)


class Lexicon:
    """BM25 over the passages' words (stemmed), normalised so scores compare across questions."""

    def __init__(self, documents: list[str], synonyms: Synonyms) -> None:
        self.synonyms = synonyms
        self.stemmer = Stemmer.Stemmer("english")
        document_words = [words(synonyms.expand(document)) for document in documents]
        self.vocabulary = sorted({w for ws in document_words for w in ws})
        self.known = set(self.vocabulary)
        stems = [self.stemmer.stemWords(ws) for ws in document_words]
        self.document_stems = [set(s) for s in stems]
        self.bm25 = bm25s.BM25()
        self.bm25.index(stems, show_progress=False)
        count = len(documents)
        frequency = Counter(stem for s in self.document_stems for stem in s)
        self.idf = {
            stem: math.log(1 + (count - df + 0.5) / (df + 0.5)) for stem, df in frequency.items()
        }
        self.dictionary = SpellChecker()
        # A request repairs its question twice (for the model, then for word matching),
        # and people repeat questions: remember recent repairs.
        self.repair = functools.lru_cache(maxsize=1024)(self.repair_words)

    def repair_words(self, question: str) -> str:
        """Fix misspelt words that are close to a word of the corpus ("intervew" -> "interview")."""

        def fix(match: re.Match[str]) -> str:
            word = match[0]
            lower = word.lower()
            if (
                len(lower) < 4
                or lower in self.known
                or lower in STOPWORDS
                or lower in self.synonyms.table
                or not self.dictionary.unknown([lower])
            ):
                return word
            best = process.extractOne(lower, self.vocabulary, scorer=fuzz.ratio, score_cutoff=80)
            return str(best[0]) if best else word

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
        total = np.zeros(len(self.document_stems))
        weights = {stem: self.information(word) for stem, word in terms.items()}
        # Lucene's BM25 gives a word at most its idf; one occurrence in a passage of
        # typical length gives idf / (k1 + 1): that much counts as a full match.
        full = 1 + self.bm25.k1
        for stem, weight in weights.items():
            if stem in self.idf:
                matched = self.bm25.get_scores([stem]) * full / self.idf[stem]
                total += weight * np.minimum(1.0, matched)
        return np.minimum(1.0, total / max(sum(weights.values()), 1e-9))

    def coverage(self, terms: dict[str, str]) -> float:
        """The share of the question's information in words that the corpus uses at all."""
        weights = {stem: self.information(word) for stem, word in terms.items()}
        known = sum(weight for stem, weight in weights.items() if stem in self.idf)
        return known / sum(weights.values()) if weights else 0.0

    def matched(self, terms: dict[str, str], document: int) -> list[str]:
        """The question's words that a passage contains (after stemming)."""
        return [word for stem, word in terms.items() if stem in self.document_stems[document]]
