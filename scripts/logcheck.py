"""Nothing lost: every answered /ask has exactly one question-log record.

    python scripts/logcheck.py --database-url URL [--clients 16] [--seconds 30]

Starts `careerbot serve` on loopback against the database, runs the clients for the
time given, stops the server (SIGTERM, so the queue is written out), then counts the
log's records for the ids the answers carried. Prints the figures; exits 1 when any
answered ask has no record or more than one.

With --kill the server is killed (SIGKILL) halfway instead: asks still queued are lost,
and the figures say how many; the database must be intact (SQLite: integrity_check),
hold no record twice, and take a restarted server's records.
"""

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa

from load import free_port, wait_healthy


async def ask_for(base: str, clients: int, seconds: float) -> tuple[list[str], Counter[int]]:
    ids: list[str] = []
    statuses: Counter[int] = Counter()

    async def client(number: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            end, asked = time.monotonic() + seconds, 0
            while time.monotonic() < end:
                question = f"how do I get hired as an ML engineer ({number}-{asked})"
                try:
                    reply = await http.post("/ask", json={"question": question})
                except httpx.TransportError:  # killed on purpose (--kill)
                    statuses[0] += 1
                    return
                asked += 1
                statuses[reply.status_code] += 1
                if reply.status_code == 200:
                    ids.append(reply.json()["id"])

    await asyncio.gather(*(client(n) for n in range(clients)))
    return ids, statuses


def env_for(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "CAREERBOT_RATE_LIMIT_PER_MINUTE": "0",
        "CAREERBOT_DATABASE_URL": args.database_url,
    }


def start(args: argparse.Namespace, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`careerbot serve` on a free loopback port, once healthy, and its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "careerbot", "serve", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--index-dir", str(args.index_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_healthy(f"{base}/health", server, 180)
    return server, base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--index-dir", type=Path, default=Path("index"))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kill", action="store_true", help="SIGKILL the server halfway")
    args = parser.parse_args()
    server, base = start(args, env_for(args))
    try:
        if args.kill:
            killer = threading.Timer(args.seconds / 2, server.send_signal, [signal.SIGKILL])
            killer.start()
        ids, statuses = asyncio.run(ask_for(base, args.clients, args.seconds))
    finally:
        server.send_signal(signal.SIGTERM if not args.kill else signal.SIGKILL)
        server.wait(60)
    if args.kill:  # the database must take a new server's records
        again, base = start(args, env_for(args))
        more, _ = asyncio.run(ask_for(base, 2, 3))
        again.send_signal(signal.SIGTERM)
        again.wait(60)
        ids += more
    engine = sa.create_engine(args.database_url)
    with engine.connect() as connection:
        records = Counter(row[0] for row in connection.execute(sa.text("SELECT id FROM asks")))
        if engine.dialect.name == "sqlite":
            intact = connection.execute(sa.text("PRAGMA integrity_check")).scalar()
            print(f"SQLite integrity_check: {intact}")
    engine.dispose()
    once = sum(records[i] == 1 for i in ids)
    missing = sum(records[i] == 0 for i in ids)
    print(f"{args.clients} clients for {args.seconds:.0f} s: statuses {dict(statuses)}")
    print(
        f"answered {len(ids)}: one record {once}, none {missing}, more {len(ids) - once - missing}"
    )
    if args.kill:
        twice = len(ids) - once - missing
        print(f"killed halfway: {missing} answered asks lost (still queued), {twice} twice")
        return 0 if twice == 0 else 1
    return 0 if once == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
