"""Load careerbot on loopback: concurrent clients asking questions for a bounded time.

    python scripts/load.py --url http://127.0.0.1:8000 --clients 32 --seconds 30
    python scripts/load.py ... --rebuilds 2 --corpus-dir corpus --index-dir index

Reports throughput, p50/p95/p99 latency of /ask and of /health (polled alongside), errors
and the status mix. With --rebuilds N it rebuilds the index N times during the run (the
server swaps to each new version) and checks that /health ends on the last one. It only
talks to loopback addresses and stops by itself: after --seconds, or --max-requests.
"""

import argparse
import asyncio
import ipaddress
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

QUESTIONS = [
    "How do I move from data science into ML engineering?",
    "How many core values interviews does Airbnb do?",
    "what projects should i put on my resume",
    "what separates a great candidate from a good one",
    "upcoming trends in machine learning",
    "how is an ML engineer different from a software engineer",
    "tips for the interview process",
    "how do i bake sourdough bread",
]


@dataclass
class Tally:
    ask: list[float] = field(default_factory=list)
    health: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    versions: list[str] = field(default_factory=list)
    # The question-log id of each answered /ask, for scripts that check the log.
    ids: list[str] = field(default_factory=list)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0


def percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(values, q / 100), 1) for q in (50, 95, 99)}


def free_port() -> int:
    """A loopback port that nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait until GET url answers 200; give up when the process ends or time runs out."""
    started = time.monotonic()
    while True:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() - started > seconds:
            process.kill()
            raise SystemExit(f"{url} did not answer 200 within {seconds:.0f} s")
        time.sleep(0.02)


def loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    sys.exit(f"load: refusing {url}: only loopback addresses (127.0.0.0/8, ::1, localhost)")


async def client(
    http: httpx.AsyncClient,
    number: int,
    until: float,
    budget: list[int],
    tally: Tally,
    questions: list[str] = QUESTIONS,
) -> None:
    turn = number
    while time.monotonic() < until and budget[0] > 0:
        budget[0] -= 1
        turn += 1
        started = time.perf_counter()
        try:
            response = await http.post("/ask", json={"question": questions[turn % len(questions)]})
            tally.statuses[f"ask {response.status_code}"] += 1
            if response.status_code == 200:
                tally.ask.append(time.perf_counter() - started)
                tally.ids.append(response.json()["id"])
        except httpx.HTTPError as error:
            tally.errors[type(error).__name__] += 1


async def watch_health(http: httpx.AsyncClient, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await http.get("/health")
            tally.health.append(time.perf_counter() - started)
            tally.statuses[f"health {response.status_code}"] += 1
            version = response.json().get("index_version", "")
            if not tally.versions or tally.versions[-1] != version:
                tally.versions.append(version)
        except httpx.HTTPError as error:
            tally.errors[f"health {type(error).__name__}"] += 1
        await asyncio.sleep(0.1)


async def rebuild(args: argparse.Namespace, until: float, started: float) -> None:
    """Rebuild the index at even intervals during the run, in another process."""
    span = until - started
    for number in range(1, args.rebuilds + 1):
        await asyncio.sleep(
            max(0.0, started + span * number / (args.rebuilds + 1) - time.monotonic())
        )
        dirs = ["--corpus-dir", str(args.corpus_dir), "--index-dir", str(args.index_dir)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "careerbot", "build", *dirs,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if await process.wait() != 0:
            raise SystemExit(f"load: rebuild {number} failed")


async def run(args: argparse.Namespace) -> dict[str, object]:
    loopback(args.url)
    tally = Tally()
    limits = httpx.Limits(max_connections=args.clients + 1)
    async with httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits) as http:
        started = time.monotonic()
        until = started + args.seconds
        budget = [args.max_requests]
        tasks = [client(http, n, until, budget, tally) for n in range(args.clients)]
        tasks.append(watch_health(http, until, tally))
        if args.rebuilds:
            tasks.append(rebuild(args, until, started))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        if args.rebuilds:
            await asyncio.sleep(3)  # the server checks the pointer every few seconds
            final = (await http.get("/health")).json()["index_version"]
            tally.versions.append(final) if tally.versions[-1] != final else None
    current = (args.index_dir / "CURRENT").read_text().strip() if args.rebuilds else None
    return {
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": sum(tally.statuses.values()) + sum(tally.errors.values()),
        "ask_per_second": round(len(tally.ask) / elapsed, 1),
        "ask_ms": percentiles(tally.ask),
        "health_ms": percentiles(tally.health),
        "statuses": dict(sorted(tally.statuses.items())),
        "errors": dict(tally.errors),
        "index_versions_seen": tally.versions,
        "ends_on_latest_version": None if current is None else tally.versions[-1] == current,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--rebuilds", type=int, default=0)
    parser.add_argument("--corpus-dir", type=Path, default=Path("corpus"))
    parser.add_argument("--index-dir", type=Path, default=Path("index"))
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    failed = report["errors"] or any(
        not key.endswith(" 200")
        for key in report["statuses"]  # type: ignore[attr-defined]
    )
    return 1 if failed or report["ends_on_latest_version"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
