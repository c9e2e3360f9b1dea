import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from careerbot.embedding import BatchingEmbedder, EncoderClosed, Text, Vectors, Within
from tests.conftest import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    """Takes 50 ms a forward pass, whatever the batch size, like a model on a busy CPU."""

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        time.sleep(0.05)
        return super().embed(texts, progress)


class HeldEmbedder(FakeEmbedder):
    """Holds a batch that holds "held" until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        if "held" in texts:
            assert self.release.wait(timeout=10)
        return super().embed(texts, progress)


def test_a_burst_of_questions_shares_forward_passes() -> None:
    model = SlowEmbedder()
    batching = BatchingEmbedder(model)
    questions = [f"question number {n}" for n in range(16)]
    with ThreadPoolExecutor(16) as pool:
        vectors = list(pool.map(lambda q: batching.embed([q]), questions))
    assert len(model.calls) < 8  # 16 questions, far fewer passes
    assert sum(len(call) for call in model.calls) == 16
    for question, vector in zip(questions, vectors, strict=True):
        assert np.allclose(vector, FakeEmbedder().embed([question]))


def test_a_lone_question_goes_alone_and_a_repeat_comes_from_the_cache() -> None:
    model = FakeEmbedder()
    batching = BatchingEmbedder(model)
    first = batching.embed(["how do I become an ML engineer"])
    assert model.calls == [["how do I become an ML engineer"]]
    again = batching.embed(["how do I become an ML engineer"])
    assert len(model.calls) == 1
    assert np.array_equal(first, again) and first.shape == (1, model.dimension)


def test_texts_asked_for_together_go_in_one_batch_the_cached_ones_not_at_all() -> None:
    model = FakeEmbedder()
    batching = BatchingEmbedder(model)
    text = "I build dashboards. How do I become an ML engineer?"
    asked = Within(text, ((20, len(text)),))
    for _ in range(20):
        model.calls.clear()
        batching.cache.clear()
        futures = batching.submit_all([text, asked, "other"])
        got = [future.result() for future in futures]
        assert model.calls == [[text, asked, "other"]]
    assert np.allclose(np.concatenate(got), FakeEmbedder().embed([text, asked, "other"]))
    model.calls.clear()
    again = batching.submit_all([text, "new", asked])
    assert [future.result().shape for future in again] == [(1, model.dimension)] * 3
    assert model.calls == [["new"]]


def test_passing_texts_share_the_batch_but_not_the_cache() -> None:
    model = FakeEmbedder()
    batching = BatchingEmbedder(model, cache_size=2)
    cached = batching.embed(["how do I become an ML engineer"])
    sentences = [f"Sentence number {n}." for n in range(5)]
    futures = batching.submit_all(["whole question"], sentences)
    got = np.concatenate([future.result() for future in futures])
    assert model.calls[-1] == ["whole question", *sentences]  # one pass for all
    assert np.allclose(got, FakeEmbedder().embed(["whole question", *sentences]))
    # The question asked before is still cached; the sentences have a cache of their own.
    assert set(batching.cache) == {"how do I become an ML engineer", "whole question"}
    assert list(batching.passing) == sentences[-2:]
    assert np.array_equal(batching.embed(["how do I become an ML engineer"]), cached)
    again = batching.submit_all(["whole question"], sentences[-2:])
    assert np.allclose(np.concatenate([f.result() for f in again]), got[[0, -2, -1]])
    assert len(model.calls) == 2


class Gated(FakeEmbedder):
    """Holds each forward pass until let through, and says when one has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.begun, self.gate = threading.Event(), threading.Event()

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        self.begun.set()
        assert self.gate.wait(5)
        return super().embed(texts, progress)


def test_a_cancelled_question_is_left_out_and_the_worker_goes_on() -> None:
    model = Gated()
    batching = BatchingEmbedder(model)
    busy = batching.submit("keeps the model busy")
    assert model.begun.wait(5)  # the worker is in the model: what comes next waits
    cancelled, kept = batching.submit_all(["given up on", "still wanted"])
    assert cancelled.cancel()
    model.gate.set()
    assert kept.result(timeout=5).shape == (1, model.dimension)
    assert busy.result(timeout=5).shape == (1, model.dimension)
    assert batching.submit("after").result(timeout=5).shape == (1, model.dimension)
    assert not any("given up on" in call for call in model.calls)
    assert "given up on" not in batching.cache


def test_batches_of_texts_go_straight_to_the_model() -> None:
    model = FakeEmbedder()
    BatchingEmbedder(model).embed(["a", "b"])
    assert model.calls == [["a", "b"]]


def test_a_model_error_reaches_the_caller_and_the_worker_goes_on() -> None:
    class Failing(FakeEmbedder):
        def embed(self, texts: Sequence[str], progress: bool = False) -> Vectors:
            if "boom" in texts:
                raise RuntimeError("model failed")
            return super().embed(texts, progress)

    batching = BatchingEmbedder(Failing())
    with pytest.raises(RuntimeError, match="model failed"):
        batching.embed(["boom"])
    assert batching.embed(["fine"]).shape == (1, 64)


@pytest.mark.parametrize("fault", ["a row short", "SystemExit"])
def test_a_model_that_misbehaves_fails_its_batch_and_the_thread_goes_on(fault: str) -> None:
    class Faulty(FakeEmbedder):
        def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
            if "bad" not in texts:
                return super().embed(texts, progress)
            if fault == "SystemExit":
                raise SystemExit(3)
            return super().embed(texts, progress)[:-1]

    batching = BatchingEmbedder(Faulty())
    with pytest.raises(RuntimeError, match=r"0 vectors for 1 texts|SystemExit"):
        batching.submit("bad").result(timeout=5)  # not left waiting for ever
    assert batching.submit("fine").result(timeout=5).shape == (1, 64)
    assert batching.threads[0].is_alive()
    batching.close()


def test_a_question_submitted_as_the_encoder_closes_is_answered_or_refused() -> None:
    for _ in range(500):
        batching = BatchingEmbedder(FakeEmbedder(), encoders=2)
        futures: list[Future[Vectors]] = []

        def ask(
            n: int, batching: BatchingEmbedder = batching, futures: list[Future[Vectors]] = futures
        ) -> None:
            for k in range(50):
                try:
                    futures.append(batching.submit(f"question {n} {k}"))
                except EncoderClosed:
                    return

        askers = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
        for asker in askers:
            asker.start()
        batching.close()
        for asker in askers:
            asker.join()
        assert all(future.result(timeout=5).shape == (1, 64) for future in futures)


def test_under_load_a_batch_waits_briefly_for_more_but_an_idle_server_does_not() -> None:
    model = HeldEmbedder()
    model.release.set()
    batching = BatchingEmbedder(model, max_wait=0.5)
    time.sleep(0.6)  # idle: the first question goes at once, the next one apart
    first = batching.submit("first question")
    first.result(timeout=5)
    time.sleep(0.6)
    lone = batching.submit("a lone question")
    time.sleep(0.1)
    later = batching.submit("a later question")
    lone.result(timeout=5), later.result(timeout=5)
    assert model.calls[-2:] == [["a lone question"], ["a later question"]]
    # One client asking question after question: the model has just finished each time,
    # but no one else is asking, so none waits for stragglers.
    began = time.monotonic()
    for n in range(5):
        batching.submit(f"one after another {n}").result(timeout=5)
    assert time.monotonic() - began < 0.4  # 0.5 s a question if each waited
    # Several asking: a batch of two groups has just finished, the next waits for more.
    model.release.clear()
    held = batching.submit("held")
    time.sleep(0.1)
    queued = [batching.submit("queued one"), batching.submit("queued two")]
    model.release.set()
    for future in [held, *queued]:
        future.result(timeout=5)
    assert model.calls[-1] == ["queued one", "queued two"]
    busy = batching.submit("right after")
    time.sleep(0.1)
    straggler = batching.submit("a straggler")
    busy.result(timeout=5), straggler.result(timeout=5)
    assert model.calls[-1] == ["right after", "a straggler"]


def test_closing_stops_the_encoder_thread_once_the_queue_is_served() -> None:
    batching = BatchingEmbedder(FakeEmbedder())
    queued = batching.submit("a question")
    batching.close()
    assert queued.result(timeout=5).shape == (1, FakeEmbedder().dimension)
    batching.threads[0].join(timeout=5)
    assert not batching.threads[0].is_alive()
    with pytest.raises(EncoderClosed, match="closed"):
        batching.submit("too late")


@pytest.mark.parametrize("encoders", [1, 2])
def test_with_two_encoder_threads_a_batch_goes_while_another_is_in_the_model(
    encoders: int,
) -> None:
    model = HeldEmbedder()
    batching = BatchingEmbedder(model, encoders=encoders)
    held = batching.submit("held")
    time.sleep(0.1)  # in the model now
    other = batching.submit("another question")
    if encoders == 2:
        assert other.result(timeout=5).shape == (1, model.dimension)
        assert not held.done()
    else:  # one thread: it waits for the held batch
        time.sleep(0.2)
        assert not other.done()
    model.release.set()
    assert held.result(timeout=5).shape == other.result(timeout=5).shape
    batching.close()
    for thread in batching.threads:
        thread.join(timeout=5)
        assert not thread.is_alive()
