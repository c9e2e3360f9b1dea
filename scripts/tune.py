"""Choose the scoring weights, passage size and threshold on the tuning questions.

Usage: python scripts/tune.py eval/tune.jsonl [more.jsonl ...]
Prints, for each setting tried, the figures at the threshold that best separates the
in-domain questions from the off-topic ones. Report held-out figures with `careerbot eval`.
"""

import itertools
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import tomlkit

from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder, Text, Vectors
from careerbot.evaluate import Case, Report, evaluate, read_cases
from careerbot.index import build_index
from careerbot.search import Searcher, Weights
from careerbot.version import LoadedIndex, load_index


def at_threshold(report: Report, threshold: float) -> Report:
    kept = [
        type(o)(o.case, [hit for hit in o.hits if hit.score >= threshold]) for o in report.outcomes
    ]
    return Report(kept)


def best_threshold(report: Report) -> tuple[float, Report]:
    candidates = sorted({round(o.hits[0].score, 3) for o in report.outcomes if o.hits})
    scored = []
    for threshold in candidates:
        figures = at_threshold(report, threshold).figures()
        value = figures["top1"] + figures["offtopic_rejected"] - figures["false_rejection"]
        scored.append((value, threshold))
    best = max(value for value, _ in scored)
    # Among the best thresholds, take the middle one: the widest margin both ways.
    ties = [threshold for value, threshold in scored if value == best]
    threshold = ties[len(ties) // 2]
    return threshold, at_threshold(report, threshold)


class CachedEmbedder(OnnxEmbedder):
    """Embeds each text once: the settings tried differ in scoring, not in questions."""

    cache: ClassVar[dict[Text, np.ndarray]] = {}

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        missing = [text for text in texts if text not in self.cache]
        if missing:
            self.cache.update(zip(missing, super().embed(missing, progress), strict=True))
        return np.stack([self.cache[text] for text in texts])


def main() -> None:
    cases = [case for name in sys.argv[1:] for case in read_cases(Path(name))]
    embedder = CachedEmbedder()
    steps = [round(0.1 * i, 1) for i in range(11)]
    fine = [round(0.05 * i, 2) for i in range(21)]
    results = []
    for passage_tokens in (96, 128):
        with tempfile.TemporaryDirectory() as scratch:
            settings = Settings(index_dir=Path(scratch) / "index", passage_tokens=passage_tokens)
            build_index(settings, embedder)
            index = load_index(settings.index_dir, embedder)
            # One set of weights for every answer (however curated), at the best threshold:
            # on a corpus without answers' phrasings, the weights of the unphrased.
            for semantic, lexical in itertools.product(steps, steps):
                topic = round(1 - semantic - lexical, 1)
                if topic < 0:
                    continue
                same = (semantic, lexical, topic)
                weights = Weights(semantic, lexical, topic, phrased=same, plain=same)
                report = evaluate(Searcher(index, embedder, 0.0, weights), cases)
                threshold, chosen = best_threshold(report)
                setting = f"tokens {passage_tokens} {weights} threshold {threshold:.3f}"
                results.append((value_of(chosen), f"{setting}: {chosen}"))
            # The weights of transcripts whose every answer has phrasings, the others' kept,
            # at the configured threshold: their sum may stay under 1, so that one
            # threshold serves both. (The two grids rank together; read them apart.)
            for total, semantic, lexical in itertools.product((0.85, 0.9, 0.95, 1.0), fine, fine):
                topic = round(total - semantic - lexical, 2)
                if topic < 0:
                    continue
                weights = Weights(phrased=(semantic, lexical, topic))
                chosen = evaluate(Searcher(index, embedder, settings.min_score, weights), cases)
                setting = (
                    f"tokens {passage_tokens} phrased {weights.phrased} at {settings.min_score}"
                )
                results.append((value_of(chosen), f"{setting}: {chosen}"))
            if passage_tokens == Settings().passage_tokens:
                results += asking_shares(index, embedder, settings, cases, "as it is")
                results += intent_weights(index, embedder, settings, cases)
    # The weights of transcripts without phrasings, on a copy of the corpus without any,
    # at the configured threshold.
    with tempfile.TemporaryDirectory() as scratch:
        corpus = without_curation(Settings().corpus_dir, Path(scratch) / "corpus")
        settings = Settings(corpus_dir=corpus, index_dir=Path(scratch) / "index")
        build_index(settings, embedder)
        index = load_index(settings.index_dir, embedder)
        sums = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)
        wide = [round(0.05 * i, 2) for i in range(25)]
        for total, semantic, lexical in itertools.product(sums, wide, wide):
            topic = round(total - semantic - lexical, 2)
            if topic < 0:
                continue
            weights = Weights(plain=(semantic, lexical, topic))
            chosen = evaluate(Searcher(index, embedder, settings.min_score, weights), cases)
            setting = f"no phrasings: plain {weights.plain} at {settings.min_score}"
            results.append((value_of(chosen), f"{setting}: {chosen}"))
        results += asking_shares(index, embedder, settings, cases, "no phrasings")
    for value, line in sorted(results, reverse=True)[:25]:
        print(f"{value:.3f} {line}")
    grids = (
        " phrased (",
        " plain (",
        "as it is: asking (",
        "no phrasings: asking (",
        "as it is: intent (",
    )
    for kind in grids:  # every setting tied for best, for each grid
        kept = [result for result in results if kind in result[1]]
        top = max((value for value, _ in kept), default=None)
        for value, line in kept:
            if value == top:
                print(f"best{kind.split('(')[0]}: {value:.3f} {line}")


def asking_shares(
    index: LoadedIndex, embedder: CachedEmbedder, settings: Settings, cases: list[Case], corpus: str
) -> list[tuple[float, str]]:
    """The share of a long question's asking sentences (Weights.asking), the rest as
    configured: to be chosen on the corpus as it is and on the copy without curation."""
    shares = [round(0.1 * i, 1) for i in range(11)]
    tried = {f"{corpus}: asking ({share})": Weights(asking_share=share) for share in shares}
    return each_scored(index, embedder, settings, cases, tried)


def intent_weights(
    index: LoadedIndex, embedder: CachedEmbedder, settings: Settings, cases: list[Case]
) -> list[tuple[float, str]]:
    """The weight of the classifier of answers (Weights.intent) and its C, the rest as
    configured; only a corpus with phrasings has the classifier (and at weight 0, none)."""
    grid = itertools.product((0.05, 0.1, 0.15, 0.2, 0.3), (1.0, 3.0, 10.0, 30.0, 100.0))
    tried = {
        f"as it is: intent ({weight}, C {c})": Weights(intent=weight, intent_c=c)
        for weight, c in [(0.0, 10.0), *grid]
    }
    return each_scored(index, embedder, settings, cases, tried)


def each_scored(
    index: LoadedIndex,
    embedder: CachedEmbedder,
    settings: Settings,
    cases: list[Case],
    tried: dict[str, Weights],
) -> list[tuple[float, str]]:
    """Each named setting's value on the cases at the configured threshold, with its line."""
    results = []
    for name, weights in tried.items():
        chosen = evaluate(Searcher(index, embedder, settings.min_score, weights), cases)
        results.append((value_of(chosen), f"{name} at {settings.min_score}: {chosen}"))
    return results


def without_curation(corpus: Path, target: Path) -> Path:
    """A copy of corpus whose metadata files keep who speaks, but no phrasings or
    uncovered topics."""
    shutil.copytree(corpus, target)
    for path in target.glob("*.speakers.toml"):
        table = tomlkit.parse(path.read_text(encoding="utf-8"))
        for name in ("questions", "uncovered"):
            table.pop(name, None)
        path.write_text(tomlkit.dumps(table), encoding="utf-8")
    return target


def value_of(report: Report) -> float:
    f = report.figures()
    return f["top1"] + f["evidence1"] / 2 + f["offtopic_rejected"] - f["false_rejection"]


if __name__ == "__main__":
    main()
