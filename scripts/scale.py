"""Measure careerbot at scale: a synthetic corpus, its build, and exact against HNSW search.

    python scripts/scale.py [--answers 100000] [--work /tmp/careerbot-scale] [--queries 200]
                            [--incremental]

Writes the synthetic corpus (scripts/synth.py) into WORK/corpus and builds its index into
WORK/index with `careerbot build`, timed as a whole process (both are kept and reused by
the next run). Then, in this process: the index size on disk, file by file; the FAISS
index in memory, exact (flat) and HNSW; the time to load the index and set up the
searcher, and the process's RSS after it; search latency one question at a time, k=10,
exact against HNSW, and HNSW's recall@10 against exact; and `Searcher.ask` end to end
(question embedded beforehand). The questions are the labelled ones in eval/.

With --incremental, also: one 10-answer transcript is added to a copy of the corpus, and
the index is rebuilt twice, timed as whole processes: from a copy of the existing index
(which reuses the vectors of unchanged passages) and from nothing. The two must hold the
same passages and give the same top 10 for every question.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import faiss
import numpy as np

from careerbot.config import Settings
from careerbot.embedding import Embedder, load_embedder
from careerbot.evaluate import read_cases
from careerbot.index import searchable
from careerbot.search import Searcher
from careerbot.version import current_version, load_index
from load import free_port, wait_healthy

ROOT = Path(__file__).resolve().parent.parent


def percentiles(seconds: list[float]) -> str:
    ms = np.percentile(np.array(seconds) * 1000, [50, 95])
    return f"p50 {ms[0]:.3f} ms, p95 {ms[1]:.3f} ms"


def timed_searches(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[list[float], list]:
    times, found = [], []
    for query in queries:
        begin = time.perf_counter()
        _, ids = index.search(query[None, :], k)
        times.append(time.perf_counter() - begin)
        found.append(ids[0])
    return times, found


def memory(pid: int) -> str:
    """A process's memory, from smaps_rollup: resident (RSS), proportional (PSS: each page
    it shares divided among the processes that map it), and its private dirty pages (its
    own heap and a forked worker's copies: what it costs beyond the pages it shares; the
    index files it alone has read so far are private too, but clean, and any other
    process mapping them shares them)."""
    with open(f"/proc/{pid}/smaps_rollup") as file:
        kb = {line.split(":")[0]: int(line.split()[1]) for line in file if line.endswith("kB\n")}
    names = ("Rss", "Pss", "Private_Dirty")
    return ", ".join(f"{name} {kb[name] / 1024:.0f} MiB" for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/careerbot-scale"))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--incremental", action="store_true")
    args = parser.parse_args()
    corpus, index_dir = args.work / "corpus", args.work / "index"
    if not corpus.is_dir():
        synth = [sys.executable, str(ROOT / "scripts" / "synth.py"), str(corpus)]
        subprocess.run([*synth, "--answers", str(args.answers)], check=True)
    if current_version(index_dir) is None:
        begin = time.perf_counter()
        build = [sys.executable, "-m", "careerbot", "build"]
        subprocess.run(
            [*build, "--corpus-dir", str(corpus), "--index-dir", str(index_dir)], check=True
        )
        print(f"build (careerbot build, whole process): {time.perf_counter() - begin:.0f} s")
    version = current_version(index_dir)
    assert version is not None
    print("on disk:")
    for file in sorted(f for f in version.rglob("*") if f.is_file()):
        name = str(file.relative_to(version))
        print(f"  {name:<26} {file.stat().st_size / 2**20:8.1f} MiB")

    settings = Settings(corpus_dir=corpus, index_dir=index_dir)
    embedder = load_embedder(settings)
    begin = time.perf_counter()
    index = load_index(index_dir, embedder)
    searcher = Searcher(index, embedder, settings.min_score)
    loaded = time.perf_counter() - begin
    count = index.vectors.ntotal
    print(f"{count} passages, index type {index.manifest.index_type}")
    print(f"load index and set up the searcher: {loaded:.2f} s; {memory(os.getpid())}")

    vectors = index.vectors.reconstruct_n(0, count)
    built = {}
    for kind in ("flat", "hnsw"):
        begin = time.perf_counter()
        built[kind] = searchable(vectors, kind)
        size = faiss.serialize_index(built[kind]).nbytes / 2**20
        print(f"{kind}: built in {time.perf_counter() - begin:.1f} s, {size:.1f} MiB in memory")
    exact, graph = built["flat"], built["hnsw"]

    questions = [
        case.question
        for file in sorted((ROOT / "eval").glob("*.jsonl"))
        for case in read_cases(file)
    ][: args.queries]
    texts = [searcher.query_texts(q) for q in questions]
    queries = embedder.embed([t.whole for t in texts])
    faiss.omp_set_num_threads(1)  # one question at a time, as the server searches
    exact_times, exact_ids = timed_searches(exact, queries, 10)
    graph_times, graph_ids = timed_searches(graph, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_ids, graph_ids, strict=True)])
    exact_p50, graph_p50 = np.median(exact_times), np.median(graph_times)
    print(f"{len(queries)} questions, k=10, one at a time:")
    print(f"  exact: {percentiles(exact_times)}")
    print(f"  HNSW:  {percentiles(graph_times)}")
    print(f"  HNSW p50 / exact p50: {graph_p50 / exact_p50:.3f} (target <= 0.1)")
    print(f"  HNSW recall@10 against exact: {recall:.3f} (target >= 0.95)")
    ask_times = []
    for question, made in zip(questions, texts, strict=True):
        embedded = dict(zip(made.distinct(), embedder.embed(made.distinct())[:, None], strict=True))
        begin = time.perf_counter()
        searcher.ask(question, 3, embedded=embedded)
        ask_times.append(time.perf_counter() - begin)
    print(f"Searcher.ask, question embedded beforehand: {percentiles(ask_times)}")
    for workers in (1, 2):
        start_up(corpus, index_dir, workers)
    if args.incremental:
        incremental(args.work, embedder, queries)


def start_up(corpus: Path, index_dir: Path, workers: int) -> None:
    """Time `careerbot serve` from its start to a healthy /health, and say each of its
    processes' memory then."""
    port = free_port()
    command = [sys.executable, "-m", "careerbot", "serve", "--port", str(port)]
    command += [
        "--workers",
        str(workers),
        "--corpus-dir",
        str(corpus),
        "--index-dir",
        str(index_dir),
    ]
    begin = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", server, 120)
        seconds = time.perf_counter() - begin
        # A few questions, so the workers have searched (the rate limit allows 20 at once).
        for _ in range(10):
            ask = urllib.request.Request(
                f"http://127.0.0.1:{port}/ask",
                data=json.dumps({"question": "how do I prepare for interviews?"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(ask, timeout=10).read()
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        print(f"careerbot serve --workers {workers}: healthy /health after {seconds:.2f} s")
        for role, pid in [("main", server.pid), *(("worker", int(c)) for c in children)]:
            print(f"  {role} {pid}: {memory(pid)}")
    finally:
        server.terminate()
        server.wait(timeout=60)


def timed_build(corpus: Path, index_dir: Path) -> float:
    begin = time.perf_counter()
    build = [sys.executable, "-m", "careerbot", "build", "--corpus-dir", str(corpus)]
    subprocess.run([*build, "--index-dir", str(index_dir)], check=True)
    return time.perf_counter() - begin


def incremental(work: Path, embedder: Embedder, queries: np.ndarray) -> None:
    """Add a 10-answer transcript; rebuild from the existing index and from nothing."""
    grown, added = work / "grown", work / "added"
    for folder in (grown, added, work / "index-incremental", work / "index-full"):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(work / "corpus", grown)
    synth = [sys.executable, str(ROOT / "scripts" / "synth.py"), str(added)]
    subprocess.run([*synth, "--answers", "10", "--seed", "7"], check=True)
    for file in added.iterdir():
        shutil.copy(file, grown / file.name.replace("synthetic-", "added-"))
    shutil.copytree(work / "index", work / "index-incremental")
    # The model's ONNX export is made once per index folder: not part of a build's cost.
    shutil.copytree(work / "index" / "encoders", work / "index-full" / "encoders")
    again = timed_build(grown, work / "index-incremental")
    whole = timed_build(grown, work / "index-full")
    print(
        f"one 10-answer transcript added: rebuild {again:.1f} s, full build {whole:.1f} s, "
        f"ratio {again / whole:.3f} (target <= 0.05)"
    )
    one, other = (load_index(work / name, embedder) for name in ("index-incremental", "index-full"))
    assert list(one.passages) == list(other.passages), "the two builds hold different passages"
    faiss.omp_set_num_threads(1)
    _, one_ids = timed_searches(one.vectors, queries, 10)
    _, other_ids = timed_searches(other.vectors, queries, 10)
    same = sum(list(a) == list(b) for a, b in zip(one_ids, other_ids, strict=True))
    print(f"same top 10 from both builds for {same} of {len(queries)} questions")


if __name__ == "__main__":
    main()
