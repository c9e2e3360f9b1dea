"""Replicas behind nginx, on loopback: a version published and a replica stopped under load.

    python scripts/cluster.py [--replicas 2] [--clients 8] [--seconds 30] [--kill]

Starts, each as a child process with its own folder inside one temporary folder: a
throwaway PostgreSQL (scripts/postgres.sh), N `careerbot serve` replicas on loopback ports
sharing one index folder and that database, and Debian's nginx in front of them with
deploy/careerbot.conf.template. Then clients ask the questions of eval/*.jsonl through
nginx for the time given, each from its own loopback address (127.0.0.2, 127.0.0.3, ...).
At 20 % of the time a new index version is published (a small transcript added to the
corpus copy, then `careerbot build`); at 60 % the first replica is stopped with SIGTERM
(SIGKILL with --kill). Afterwards the rest are stopped with SIGTERM, so each writes out its
question log, and the log is read.

Prints one JSON report: requests, failures by kind, latency, requests nginx retried on
another replica, the index versions that answered, and the log's records against the
answers. Exits 1 when a check fails (see `checks`), 2 when the set-up fails. With --kill,
nginx resends the requests the killed replica held to another one, except those whose
response had begun (they fail), and the log records it had queued are lost: the report
counts both, and the run fails on any other failure or a record twice.
"""

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

from load import Tally, client, free_port, percentiles, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_SH = ROOT / "scripts" / "postgres.sh"
NGINX_TEMPLATE = ROOT / "deploy" / "careerbot.conf.template"
CAREERBOT = [sys.executable, "-m", "careerbot"]

# The run's own nginx.conf: every path nginx writes is inside its folder (relative paths
# are taken from -p), then the careerbot part that compose.yaml uses too. The access log
# records which replicas each request went to, to count nginx's retries.
NGINX_MAIN = """\
pid nginx.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    log_format upstreams '"$request" $status "$upstream_addr"';
    access_log access.log upstreams;
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    include careerbot.conf;
}
"""

# What the publish adds to the corpus: one question, one answer, the interview's end.
NEW_TRANSCRIPT = """\
A short interview, published while the replicas were under load.

How do you keep a service answering while you deploy a new version of it?

Alex Moreau: We run two copies behind a proxy and replace them one at a time, so there is
always one answering. I publish the new index beside the old one and let them pick it up.

---
"""


class Failed(Exception):
    """The set-up failed (not a check: the run could not be made)."""


@dataclass
class Replica:
    number: int
    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def stop(process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """SIGTERM (a replica writes out its question log first), SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spawn(command: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A child with its output in folder/output.log, in its own session: a Ctrl-C at the
    terminal reaches only this script, which then stops the children in order."""
    with (folder / "output.log").open("ab") as output:
        return subprocess.Popen(
            command, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def build(corpus: Path, index: Path, env: dict[str, str], scratch: Path) -> None:
    with (scratch / "build.log").open("ab") as output:
        done = subprocess.run(
            [*CAREERBOT, "build", "--corpus-dir", str(corpus), "--index-dir", str(index)],
            env=env, stdout=output, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise Failed(f"careerbot build failed:\n{tail(scratch / 'build.log')}")


def start_postgres(stack: contextlib.ExitStack) -> str:
    """The throwaway PostgreSQL of scripts/postgres.sh (removed when the stack closes); its URL."""
    start = 'source "$0"; postgres_start || { postgres_stop; exit 1; }; '
    started = subprocess.run(
        ["bash", "-c", start + 'echo "$POSTGRES_SOCKET_DIR $CAREERBOT_TEST_POSTGRES_URL"',
         str(POSTGRES_SH)],
        stdout=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    if started.returncode != 0:
        raise Failed("PostgreSQL did not start (scripts/postgres.sh)")
    folder, url = started.stdout.split()[-2:]
    stop_it = 'source "$0"; POSTGRES_SOCKET_DIR="$1"; postgres_stop'
    stack.callback(subprocess.run, ["bash", "-c", stop_it, str(POSTGRES_SH), folder], check=False)
    return url


def nginx_config(listen: str, replicas: list[Replica]) -> str:
    """deploy/careerbot.conf.template filled in, as the nginx image's entrypoint does."""
    values = {
        "CAREERBOT_LISTEN": listen,
        "CAREERBOT_UPSTREAMS": " ".join(f"server 127.0.0.1:{r.port};" for r in replicas),
    }
    text = NGINX_TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


def start_nginx(stack: contextlib.ExitStack, folder: Path, replicas: list[Replica]) -> str:
    """nginx in front of the replicas, on a free loopback port; its URL."""
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if nginx is None:
        raise Failed("nginx is not installed (Debian: apt-get install nginx; scripts/test.sh does)")
    port = free_port()
    folder.mkdir()
    (folder / "careerbot.conf").write_text(nginx_config(f"127.0.0.1:{port}", replicas))
    (folder / "nginx.conf").write_text(NGINX_MAIN)
    if os.geteuid() == 0:
        # Started as root, nginx runs its worker as the unprivileged user `nobody`, the
        # way a system nginx runs, rather than `user root`; the master makes the worker's
        # temp folders in here and hands them over, but nobody must be able to reach them.
        for path in (folder.parent, folder):
            path.chmod(0o711)
    command = [nginx, "-p", f"{folder}/", "-c", f"{folder}/nginx.conf", "-e", f"{folder}/error.log"]
    process = spawn([*command, "-g", "daemon off;"], folder, dict(os.environ))
    stack.callback(stop, process)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, 10)
    except SystemExit as error:
        raise Failed(f"nginx: {error}:\n{tail(folder / 'error.log')}") from None
    return f"http://127.0.0.1:{port}"


def start_replicas(
    stack: contextlib.ExitStack, count: int, scratch: Path, index: Path, env: dict[str, str]
) -> list[Replica]:
    """`careerbot serve` replicas on the shared index, each with its own folder (its
    working and temporary folder, and its output), once all are healthy. They are given
    no corpus, so they never build: only the publisher does."""
    replicas = []
    for number in range(1, count + 1):
        folder = scratch / f"replica-{number}"
        folder.mkdir()
        port = free_port()
        command = [*CAREERBOT, "serve", "--port", str(port), "--index-dir", str(index)]
        process = spawn(command, folder, {**env, "TMPDIR": str(folder)})
        stack.callback(stop, process)
        replicas.append(Replica(number, port, folder, process))
    for replica in replicas:
        try:
            wait_healthy(f"{replica.url}/health", replica.process, 120)
        except SystemExit as error:
            log = tail(replica.folder / "output.log")
            raise Failed(f"replica {replica.number}: {error}:\n{log}") from None
    return replicas


def questions() -> list[str]:
    """The labelled questions of eval/*.jsonl: what people really ask."""
    return [
        json.loads(line)["question"]
        for path in sorted((ROOT / "eval").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def client_address(number: int) -> str:
    return f"127.0.0.{number + 2}"


async def drive(
    args: argparse.Namespace, url: str, replicas: list[Replica], dirs: tuple[Path, Path, Path]
) -> tuple[Tally, dict[str, object], dict[str, object]]:
    """The load through nginx, with the publish and the stop on their schedule."""
    corpus, index, scratch = dirs
    tally, asked = Tally(), questions()
    started = time.monotonic()
    until = started + args.seconds

    async def publish() -> dict[str, object]:
        await asyncio.sleep(args.seconds * 0.2)
        (corpus / "cluster-publish.txt").write_text(NEW_TRANSCRIPT, encoding="utf-8")
        begin = time.monotonic()
        await asyncio.to_thread(build, corpus, index, dict(os.environ), scratch)
        return {
            "version": (index / "CURRENT").read_text().strip(),
            "at_s": round(begin - started, 1),
            "build_s": round(time.monotonic() - begin, 1),
        }

    async def stop_one() -> dict[str, object]:
        await asyncio.sleep(args.seconds * 0.6)
        replica, sent = replicas[0], signal.SIGKILL if args.kill else signal.SIGTERM
        begin = time.monotonic()
        replica.process.send_signal(sent)
        code = await asyncio.to_thread(replica.process.wait)
        return {
            "replica": replica.number,
            "signal": sent.name,
            "at_s": round(begin - started, 1),
            "exit_s": round(time.monotonic() - begin, 1),
            "exit_code": code,
        }

    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for number in range(args.clients):
            transport = httpx.AsyncHTTPTransport(local_address=client_address(number))
            http = httpx.AsyncClient(base_url=url, timeout=30, transport=transport)
            clients.append(await stack.enter_async_context(http))
        budget = [sys.maxsize]
        load = [client(http, n, until, budget, tally, asked) for n, http in enumerate(clients)]
        *_, published, stopped = await asyncio.gather(*load, publish(), stop_one())
    return tally, published, stopped


def settle(replicas: list[Replica], version: str, seconds: float) -> dict[str, str]:
    """The version each live replica serves, once all serve `version` or time runs out."""
    end = time.monotonic() + seconds
    while True:
        live = [r for r in replicas if r.process.poll() is None]
        served = {str(r.number): httpx.get(f"{r.url}/health").json()["index_version"] for r in live}
        if all(v == version for v in served.values()) or time.monotonic() > end:
            return served
        time.sleep(0.2)


def forwarded_clients(replicas: list[Replica]) -> set[str]:
    """The client addresses the replicas logged for /ask (uvicorn's access log)."""
    pattern = re.compile(r"(\S+):\d+ - \"POST /ask ")
    return {
        match.group(1)
        for replica in replicas
        for match in pattern.finditer((replica.folder / "output.log").read_text())
    }


def read_log(url: str) -> list[tuple[str, str]]:
    """Each question-log record's id and the index version that answered it."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, index_version FROM asks")).all()
    finally:
        engine.dispose()
    return [(ask_id, version) for ask_id, version in rows]


def tail(path: Path, lines: int = 15) -> str:
    """The end of a child's output, for an error message (the folder is removed on exit)."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run(args: argparse.Namespace, scratch: Path) -> dict[str, object]:
    corpus, index = scratch / "corpus", scratch / "index"
    shutil.copytree(args.corpus_dir, corpus)
    if args.encoders.is_dir():  # reuse an ONNX export rather than export again (~20 s)
        shutil.copytree(args.encoders, index / "encoders")
    build(corpus, index, dict(os.environ), scratch)
    first = (index / "CURRENT").read_text().strip()
    with contextlib.ExitStack() as stack:
        database = start_postgres(stack)
        env = {
            **os.environ,
            "CAREERBOT_DATABASE_URL": database,
            "CAREERBOT_TRUSTED_PROXIES": "127.0.0.1",  # nginx's address towards the replicas
            # Each replica's access log says which client it took a request for.
            "CAREERBOT_ACCESS_LOG": "true",
            # Raised so that the load is not refused with 429: each client asks as fast
            # as it is answered, far beyond the default 120 a minute.
            "CAREERBOT_RATE_LIMIT_PER_MINUTE": "1000000",
            "CAREERBOT_RATE_LIMIT_BURST": "1000",
            "CAREERBOT_RELOAD_SECONDS": "1",
        }
        replicas = start_replicas(stack, args.replicas, scratch, index, env)
        url = start_nginx(stack, scratch / "nginx", replicas)
        begin = time.monotonic()
        tally, published, stopped = asyncio.run(
            drive(args, url, replicas, (corpus, index, scratch))
        )
        elapsed = time.monotonic() - begin
        new = str(published["version"])
        served = settle(replicas, new, 10)
        for replica in replicas:
            stop(replica.process)
        records = read_log(database)
    asks = [line for line in (scratch / "nginx" / "access.log").open() if "POST /ask" in line]
    answered = set(tally.ids)
    copies = Counter(ask_id for ask_id, _ in records)
    by_version = Counter(version for ask_id, version in records if ask_id in answered)
    log = {
        "records": len(records),
        "answers_with_one_record": sum(copies[i] == 1 for i in answered),
        "answers_without_record": sum(copies[i] == 0 for i in answered),
        "answers_with_more": sum(copies[i] > 1 for i in answered),
        "records_of_no_answer": sum(ask_id not in answered for ask_id, _ in records),
    }
    failures = {k: v for k, v in tally.statuses.items() if k != "ask 200"} | dict(tally.errors)
    seen = forwarded_clients(replicas)
    checks = {"no answer has two log records": log["answers_with_more"] == 0}
    if args.kill:
        # nginx resends what the killed replica held, except a response already begun:
        # nginx had passed its headers on and can only cut the client off (or, with no
        # replica left to try, answer 502). At most one such request a client.
        held = set(failures) <= {"RemoteProtocolError", "ask 502"}
        checks["no failures but requests the killed replica held"] = (
            held and sum(failures.values()) <= args.clients
        )
    else:
        checks["every request answered"] = not failures
        # A killed replica loses the records it had queued, and may have logged a question
        # whose answer it never sent (nginx resent the question): so only without --kill.
        once = log["answers_with_one_record"] == len(answered)
        checks["every answer has exactly one log record"] = once
        checks["no log record without an answer"] = log["records_of_no_answer"] == 0
    clients = {client_address(n) for n in range(args.clients)}
    checks |= {
        "the new version answered during the load": by_version[new] > 0,
        "every live replica serves the new version": all(v == new for v in served.values()),
        "replicas saw each client's own address": seen == clients,
    }
    return {
        "replicas": args.replicas,
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": sum(tally.statuses.values()) + sum(tally.errors.values()),
        "answered": len(tally.ids),
        "failures": failures,
        "ask_ms": percentiles(tally.ask),
        "retried_by_nginx": sum(", " in line for line in asks),
        "published": {"from": first, **published},
        "stopped": stopped,
        "answers_by_version": dict(by_version),
        "versions_served_at_end": served,
        "log": log,
        "clients_seen_by_replicas": sorted(seen, key=ipaddress.ip_address),
        "checks": checks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--kill", action="store_true", help="SIGKILL the replica, not SIGTERM")
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus")
    parser.add_argument(
        "--encoders",
        type=Path,
        default=ROOT / "index" / "encoders",
        help="an ONNX export to reuse (default: the repository's index/encoders, if any)",
    )
    args = parser.parse_args(argv)
    if args.replicas < 2:
        parser.error("--replicas must be 2 or more: one is stopped")
    if not 1 <= args.clients <= 250:
        parser.error("--clients must be 1 to 250: each has a loopback address of its own")
    # A SIGTERM to this script unwinds like Ctrl-C, so every child is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="careerbot-cluster-") as scratch:
        try:
            report = run(args, Path(scratch))
        except Failed as error:
            print(f"cluster: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # the children are stopped by now
            return 130
    print(json.dumps(report, indent=2))
    checks = report["checks"]
    assert isinstance(checks, dict)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
