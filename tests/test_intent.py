import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from careerbot.intent import TOLERANCE, Intents


def clusters(labels: list[int], dimension: int = 8, seed: int = 0) -> np.ndarray:
    """Unit vectors near one axis per label (its rank among the labels)."""
    rng = np.random.default_rng(seed)
    axes = {label: i for i, label in enumerate(sorted(set(labels)))}
    vectors = rng.normal(0, 0.1, (len(labels), dimension))
    for row, label in enumerate(labels):
        vectors[row, axes[label]] += 1.0
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def unit(axis: int, dimension: int = 8) -> np.ndarray:
    vector = np.zeros((1, dimension), dtype=np.float32)
    vector[0, axis] = 1.0
    return vector


# Per answer row 0 .. 8, its interview question: rows 4 and 7 answer question 2, row 5
# question 3 alone.
GROUPS = np.array([0, 0, 1, 1, 2, 3, 4, 2, 4])


def test_an_answer_falls_short_of_the_likeliest_answer_to_its_question_alone() -> None:
    # Answers at rows 4, 5 and 7, and an uncovered topic (-1): five examples each.
    labels = [4] * 5 + [5] * 5 + [7] * 5 + [-1] * 5
    intents = Intents.fit(clusters(labels), labels, c=10.0)
    assert intents is not None
    assert list(intents.classes) == [-1, 4, 5, 7]
    # Axes: the uncovered topic 0, row 4 1, row 5 2, row 7 3.
    short = intents.shortfall(unit(1), GROUPS)
    assert short[4] == 0.0
    assert 0.3 < short[7] < 1.0
    # Row 5 is the only answer to its question: nothing to fall short of, however
    # unlikely; rows that are no class (unphrased answers) fall short by nothing.
    assert short[5] == 0.0
    assert np.all(short[[0, 1, 2, 3, 6, 8]] == 0.0)
    # Near row 7's examples, row 4 falls short instead.
    short = intents.shortfall(unit(3), GROUPS)
    assert short[7] == 0.0 and short[4] > 0.3


def test_the_shortfall_is_the_regressions_probabilities_apart() -> None:
    labels = [4] * 4 + [7] * 4 + [6] * 4 + [8] * 4 + [-2] * 4
    vectors = clusters(labels, seed=1)
    intents = Intents.fit(vectors, labels, c=3.0)
    assert intents is not None
    model = LogisticRegression(C=3.0, max_iter=1000, tol=TOLERANCE / 5).fit(vectors, labels)
    query = clusters([0, 1, 2, 3, 4], seed=2)[1:2]
    likely = dict(zip(model.classes_, model.predict_proba(query)[0], strict=True))
    short = intents.shortfall(query, GROUPS)
    for one, other in ((4, 7), (6, 8)):  # two questions, two answers each
        assert short[one] == pytest.approx(max(likely[one], likely[other]) - likely[one], abs=1e-6)
        assert short[other] == pytest.approx(
            max(likely[one], likely[other]) - likely[other], abs=1e-6
        )


def test_two_classes_fit_as_a_binary_regression_and_give_both() -> None:
    labels = [4] * 4 + [7] * 4
    vectors = clusters(labels)
    intents = Intents.fit(vectors, labels, c=10.0)
    assert intents is not None
    model = LogisticRegression(C=10.0, max_iter=1000, tol=TOLERANCE / 2).fit(vectors, labels)
    likely = model.predict_proba(unit(1))[0]  # near row 7's examples
    short = intents.shortfall(unit(1), GROUPS)
    assert short[7] == 0.0
    assert short[4] == pytest.approx(likely[1] - likely[0], abs=1e-6)


def test_a_thousand_classes_are_learnt_not_left_at_zero() -> None:
    """The loss is a mean: with the default tolerance, a fit of many classes stopped
    before its first step. Sentence vectors share much of their direction (here a mean
    cosine of 0.92 between classes), which leaves the first gradient small."""
    rng = np.random.default_rng(3)
    common = rng.normal(size=384)
    spread = rng.normal(size=(1000, 384))
    centres = (
        common / np.linalg.norm(common) + 0.3 * spread / np.linalg.norm(spread, axis=1)[:, None]
    )
    labels = [label for label in range(1000) for _ in range(3)]
    vectors = centres[labels] + rng.normal(0, 0.002, (len(labels), 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    intents = Intents.fit(vectors, labels, c=10.0)
    assert intents is not None
    guessed = np.argmax(vectors @ intents.weights.T + intents.bias, axis=1)
    assert np.mean(intents.classes[guessed] == labels) > 0.9


def test_nothing_to_tell_apart_gives_no_classifier() -> None:
    assert Intents.fit(clusters([2, 2, 2]), [2, 2, 2], c=10.0) is None
