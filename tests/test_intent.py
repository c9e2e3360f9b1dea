import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from careerbot.intent import Intents


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


def test_the_likeliest_answer_falls_short_by_nothing_the_others_by_their_distance() -> None:
    # Answers at rows 4 and 7, and an uncovered topic (-1): five examples each.
    labels = [4] * 5 + [7] * 5 + [-1] * 5
    intents = Intents.fit(clusters(labels), labels, strength=10.0)
    assert intents is not None
    assert list(intents.classes) == [-1, 4, 7]
    # The uncovered topic's axis is 0, row 4's is 1, row 7's is 2.
    short = intents.shortfall(unit(1), count=9)
    assert short[4] == 0.0
    assert 0.5 < short[7] < 1.0
    # Rows that are no class (unphrased answers) fall short by nothing.
    assert np.all(short[[0, 1, 2, 3, 5, 6, 8]] == 0.0)
    # Near the uncovered topic, every answer falls short.
    assert np.all(intents.shortfall(unit(0), count=9)[[4, 7]] > 0.5)


def test_the_shortfall_is_the_regressions_probabilities_apart() -> None:
    labels = [0] * 4 + [1] * 4 + [2] * 4 + [-2] * 4
    vectors = clusters(labels, seed=1)
    intents = Intents.fit(vectors, labels, strength=3.0)
    assert intents is not None
    model = LogisticRegression(C=3.0, max_iter=1000).fit(vectors, labels)
    query = clusters([0, 1, 2, 3], seed=2)[1:2]
    likely = model.predict_proba(query)[0]
    expected = likely.max() - likely[1:]  # the classes are -2, 0, 1, 2
    assert intents.shortfall(query, count=3) == pytest.approx(expected, abs=1e-5)


def test_two_classes_fit_as_a_binary_regression_and_give_both() -> None:
    labels = [3] * 4 + [5] * 4
    vectors = clusters(labels)
    intents = Intents.fit(vectors, labels, strength=10.0)
    assert intents is not None
    model = LogisticRegression(C=10.0, max_iter=1000).fit(vectors, labels)
    likely = model.predict_proba(unit(1))[0]
    short = intents.shortfall(unit(1), count=6)
    assert short[5] == 0.0
    assert short[3] == pytest.approx(likely[1] - likely[0], abs=1e-5)


def test_nothing_to_tell_apart_gives_no_classifier() -> None:
    assert Intents.fit(clusters([2, 2, 2]), [2, 2, 2], strength=10.0) is None
