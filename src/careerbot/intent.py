"""Which answer a question is about, as the curators' phrasings teach it: a classifier.

The topic signal takes each answer's nearest phrasing, one at a time. Two speakers'
answers to one interview question share that question's phrasings, and a question, a
long one above all, often lands about as near the phrasings of one as of the other. A
linear classifier fitted on all the phrasings together learns which directions of the
model's space tell the answers apart, as the intent classifiers of assistant frameworks
do on their example phrasings.
"""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from careerbot.embedding import Vectors

# scikit-learn's default tolerance for one class's share of the gradient, and a bound
# on the fit's steps.
TOLERANCE = 1e-4
MAX_STEPS = 1000


@dataclass(frozen=True)
class Intents:
    """A multinomial logistic regression over the model's space: per class, weights and a
    bias. A class is an answer (its row in answers.jsonl) or an uncovered topic."""

    weights: NDArray[np.float32]  # classes x dimensions
    bias: NDArray[np.float32]
    classes: NDArray[np.int64]  # an answer's row, or -1 - k for the k-th uncovered topic

    @classmethod
    def fit(cls, vectors: Vectors, labels: Sequence[int], strength: float) -> "Intents | None":
        """From examples (`vectors`) and their classes (`labels`, as `classes` has them),
        `strength` being the inverse of the regularisation. None when there are not two
        classes to tell apart."""
        classes = len(set(labels))
        if classes < 2:
            return None
        # The loss is a mean over the examples, so its gradient shrinks with the number of
        # classes: with the default tolerance a fit of a thousand stops before its first
        # step, every weight 0. The tolerance shrinks with them.
        model = LogisticRegression(C=strength, max_iter=MAX_STEPS, tol=TOLERANCE / classes)
        # One thread: the fit is small, and BLAS and OpenMP threads vying for two cores
        # made it 15 to 80 times slower.
        with warnings.catch_warnings(), threadpool_limits(1):
            # Phrasings that do not separate to the last decimal still fit usefully.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(vectors, np.asarray(labels, dtype=np.int64))
        weights, bias = model.coef_, model.intercept_
        if len(model.classes_) == 2:  # a binary fit gives the second class's log-odds alone
            weights, bias = np.vstack([np.zeros_like(weights), weights]), np.r_[0.0, bias]
        return cls(weights.astype(np.float32), bias.astype(np.float32), model.classes_)

    def shortfall(self, query: Vectors, groups: NDArray[np.int64]) -> NDArray[np.float32]:
        """Per answer row, how much less likely the classifier finds it for the query than
        the likeliest answer of its group (`groups`: per answer row, its interview
        question): 0 for that one, and for an answer that is no class."""
        logits = self.weights @ query[0] + self.bias
        likely = np.exp(logits - logits.max())
        likely /= likely.sum()
        answers = self.classes >= 0
        rows = self.classes[answers]
        per_answer = np.zeros(len(groups), dtype=np.float32)
        per_answer[rows] = likely[answers]
        best = np.zeros(groups.max() + 1, dtype=np.float32)
        np.maximum.at(best, groups[rows], per_answer[rows])
        short = np.zeros(len(groups), dtype=np.float32)
        short[rows] = best[groups[rows]] - per_answer[rows]
        return short
