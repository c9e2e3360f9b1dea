"""How often the widget's "Strong match" label is right, on labelled question sets.

Usage: python scripts/confidence.py eval/heldout.jsonl [more.jsonl ...]
The widget calls a first answer strong when it scores at least STRONG and leads the
second (or the threshold, when alone) by LEAD. This prints, for a grid of both, how many
first answers would be labelled strong and what share of them were right; off-topic
questions that got an answer count as wrong.
"""

import sys
from pathlib import Path

from careerbot.cli import ensure_index
from careerbot.config import Settings
from careerbot.embedding import load_embedder
from careerbot.evaluate import evaluate, read_cases
from careerbot.search import Searcher


def main() -> None:
    settings = Settings()
    embedder = load_embedder(settings)
    # The index served, built only when missing or older than the corpus, as `careerbot
    # eval` does (a build of its own would publish a version and move CURRENT).
    searcher = Searcher(ensure_index(settings, embedder)[0], embedder, settings.min_score)
    firsts = []  # (score, lead over the next, right)
    for name in sys.argv[1:]:
        for outcome in evaluate(searcher, read_cases(Path(name))).outcomes:
            if outcome.hits:
                first = outcome.hits[0].score
                second = outcome.hits[1].score if len(outcome.hits) > 1 else settings.min_score
                right = bool(outcome.case.expect) and outcome.case.accepts(outcome.hits[0])
                firsts.append((first, first - second, right))
    print(f"{len(firsts)} answered questions")
    for strong in (0.40, 0.45, 0.50, 0.55):
        for lead in (0.0, 0.02, 0.05, 0.10):
            picked = [right for score, ahead, right in firsts if score >= strong and ahead >= lead]
            share = sum(picked) / len(picked) if picked else float("nan")
            print(
                f"strong >= {strong:.2f}, lead >= {lead:.2f}: {len(picked):4d} labelled, "
                f"right {share:.3f}"
            )


if __name__ == "__main__":
    main()
