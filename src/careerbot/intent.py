"""Which answer a question is about, as the curators' phrasings teach it: a classifier.

The topic signal takes each answer's nearest phrasing, one at a time. Two speakers'
answers to one interview question share that question's phrasings, and a question, a
long one above all, often lands about as near the phrasings of one as of the other. A
linear classifier fitted on all the phrasings together learns which directions of the
model's space tell the answers apart, as the intent classifiers of assistant frameworks
do on their example phrasings.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from careerbot.embedding import Vectors

# The fit stops when no entry of its gradient exceeds this divided by the number of
# classes (scikit-learn's default tolerance is 1e-4 whatever their number), or after
# this many steps: ten times scikit-learn's default, as the smaller tolerance takes more.
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
    def fit(cls, vectors: Vectors, labels: Sequence[int], c: float) -> "Intents | None":
        """From examples (`vectors`) and their classes (`labels`, as `classes` has them);
        `c` is scikit-learn's C, the inverse of the regularisation (larger: the examples
        are followed more closely). None when there are not two classes to tell apart."""
        classes = len(set(labels))
        if classes < 2:
            return None
        # Imported here: scikit-learn takes 0.56 s and 68 MiB to import, which a corpus
        # without answers' phrasings need not pay.
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        # The loss is a mean over the examples, so its gradient shrinks with the number of
        # classes: with a fixed tolerance a fit of a thousand stopped before its first
        # step, every weight 0.
        model = LogisticRegression(C=c, max_iter=MAX_STEPS, tol=TOLERANCE / classes)
        # One thread: BLAS and OpenMP threads vying for two cores made the fit 15 to 80
        # times slower. The limit holds for the whole process while the fit runs (0.04 s
        # on the default corpus), requests answered meanwhile included.
        with threadpool_limits(1):
            model.fit(vectors, np.asarray(labels, dtype=np.int64))
        weights, bias = model.coef_, model.intercept_
        if len(model.classes_) == 2:  # a binary fit gives the second class's log-odds alone
            weights, bias = np.vstack([np.zeros_like(weights), weights]), np.r_[0.0, bias]
        return cls(weights.astype(np.float32), bias.astype(np.float32), model.classes_)

    def likelihoods(self, query: Vectors) -> NDArray[np.float32]:
        """Per class, how likely the classifier finds it for the query (summing to 1)."""
        logits = self.weights @ query[0] + self.bias
        likely = np.exp(logits - logits.max())
        return likely / likely.sum()  # type: ignore[no-any-return]

    def uncovered(self, query: Vectors, allowed: Sequence[int] | None = None) -> tuple[float, int]:
        """How likely the classifier finds the uncovered topics together for the query,
        and the number k of the likeliest (its class is -1 - k); (0, 0) without them.
        `allowed`: only the topics of these numbers count."""
        likely = self.likelihoods(query)
        topics = self.classes < 0
        if allowed is not None:
            topics &= np.isin(-1 - self.classes, allowed)
        if not topics.any():
            return 0.0, 0
        likeliest = int(self.classes[topics][np.argmax(likely[topics])])
        return float(likely[topics].sum()), -1 - likeliest

    def shortfall(self, query: Vectors, groups: NDArray[np.int64]) -> NDArray[np.float32]:
        """Per answer row, how much less likely the classifier finds it for the query than
        the likeliest answer of its group (`groups`: per answer row, its interview
        question): 0 for that one, and for an answer that is no class."""
        likely = self.likelihoods(query)
        answers = self.classes >= 0
        rows = self.classes[answers]
        per_answer = np.zeros(len(groups), dtype=np.float32)
        per_answer[rows] = likely[answers]
        best = np.zeros(groups.max() + 1, dtype=np.float32)
        np.maximum.at(best, groups[rows], per_answer[rows])
        short = np.zeros(len(groups), dtype=np.float32)
        short[rows] = best[groups[rows]] - per_answer[rows]
        return short
