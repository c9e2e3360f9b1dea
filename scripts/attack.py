"""Attack careerbot on loopback: replay each hole of issue 12 and say whether it held.

    python scripts/attack.py                       # every case, about two minutes
    python scripts/attack.py --quick --stall-seconds 3
    python scripts/attack.py --only 1,4b,9a        # the cases whose id starts so

It works in a temporary folder (--work to keep one): a copy of corpus/, its own indexes
(reusing the ONNX export in --encoders when there is one, else the first build exports)
and `careerbot serve` instances it starts on free loopback ports, each with
CAREERBOT_RELOAD_SECONDS=1 and otherwise the default settings (CAREERBOT_* variables of
the caller's environment are dropped), except:

- "main" (cases 1, 2c, 2f, 4, 6) and "tight" (2a, 2b, 2e) have no rate limit
  (CAREERBOT_RATE_LIMIT_PER_MINUTE=0): they ask more questions from one address than the
  limit allows, and the limit is not what they test. "tight" also has the issue's
  CAREERBOT_MAX_IN_PROGRESS=16 and CAREERBOT_REQUEST_SECONDS=2, to be quick.
- "default" (2d, 3) keeps every default. In 2d each client and each connection stalled
  mid-body has its own source address in 127.0.0.0/8 (Linux answers on all of it), and
  the clients ask under the default rate limit. Where those cannot be bound, 2d runs on
  "unlimited" (no rate limit, all from one address) and says so.

Each case prints one line, `held   <case>: <evidence>` or `BROKEN <case>: <evidence>`,
then a summary; the exit status is 1 if any case is broken or was not run in time. Every
wait is bounded and the run ends by itself after --max-seconds.
"""

import argparse
import asyncio
import hashlib
import ipaddress
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How do I move from data science into ML engineering?",
    "How many core values interviews does Airbnb do?",
    "what projects should i put on my resume",
    "how is an ML engineer different from a software engineer",
    "tips for the interview process",
]
UNLIMITED = {"CAREERBOT_RATE_LIMIT_PER_MINUTE": "0"}
TIGHT = {"CAREERBOT_MAX_IN_PROGRESS": "16", "CAREERBOT_REQUEST_SECONDS": "2"}
SERVERS = {
    "main": UNLIMITED,
    "tight": {**UNLIMITED, **TIGHT},
    "default": {},
    "unlimited": UNLIMITED,
}
Outcome = tuple[bool, str]


class OutOfTime(Exception):
    """--max-seconds is used up."""


def loopback(host: str) -> str:
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    sys.exit(f"attack: refusing {host}: only loopback addresses (127.0.0.0/8, ::1)")


def can_bind(address: str, port: int = 0) -> int | None:
    """The port bound at address, or None if it cannot be."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
            probe.bind((address, port))
            return int(probe.getsockname()[1])
    except OSError:
        return None


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0


def brief(reason: object, size: int = 90) -> str:
    """A refusal without the index's path in front, cut to size."""
    return re.sub(r"index-[\w-]+/(versions/[^/\s]+/)?", "", str(reason))[:size]


def point(index: Path, target: str | bytes) -> None:
    """Set CURRENT the way a build does: write beside it, then rename over it."""
    temporary = index / ".CURRENT-attack"
    temporary.write_bytes(target.encode() if isinstance(target, str) else target)
    os.replace(temporary, index / "CURRENT")


def served_name(index: Path) -> str:
    return (index / "CURRENT").read_text().strip()


def copy_version(index: Path, edit: Callable[[dict], None] | None = None, reseal: bool = True):
    """A new version folder copied from the one CURRENT names, its manifest changed by
    `edit`, named for the new manifest's digest (resealed, as a forger would) or the old
    one's; a new build time either way. CURRENT is left alone."""
    source = index / "versions" / served_name(index)
    original = (source / "manifest.json").read_bytes()
    manifest = json.loads(original)
    if edit:
        edit(manifest)
    raw = (json.dumps(manifest, indent=2) + "\n").encode() if edit else original
    digest = hashlib.sha256(raw if reseal else original).hexdigest()[:24]
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{digest}"
    shutil.copytree(source, index / "versions" / name)
    (index / "versions" / name / "manifest.json").write_bytes(raw)
    return name


def transcript(size: int) -> str:
    """A good transcript of about `size` bytes: four answers of one-sentence paragraphs
    (many paragraphs and passages to an answer, where a quadratic line mapping shows)."""
    paragraph = "I moved from analytics into ML engineering because I liked building things."
    answer = "\n\n".join([paragraph] * max(1, size // (4 * (len(paragraph) + 2))))
    parts = ["An interview about careers in machine learning."]
    for number in (1, 2):
        parts += [f"How did you start, part {number}?", f"Ada: {answer}", f"Bo: {answer}"]
    return "\n\n".join(parts) + "\n\n---\n"


def status_of(reply: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return int(match[1]) if match else None


def read_reply(sock: socket.socket, until: float) -> tuple[int | str | None, float]:
    """The status a raw socket is answered with ("closed" or "reset" for a hang-up, None
    for nothing by `until`), and when."""
    left = until - time.monotonic()
    if left > 0 and select.select([sock], [], [], left)[0]:
        try:
            data = sock.recv(4096)
        except OSError:
            return "reset", time.monotonic()
        return (status_of(data) if data else "closed"), time.monotonic()
    return None, time.monotonic()


def stalled_body(host: str) -> bytes:
    """A question that promises 100 bytes of body and sends 12."""
    return (
        f"POST /ask HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        'Content-Length: 100\r\n\r\n{"question":'
    ).encode()


class Server:
    """One `careerbot serve` child process on a free loopback port."""

    def __init__(self, lab: "Lab", name: str, index: Path, corpus: Path, env: dict[str, str]):
        self.index, self.tidy = index, lab.tidy
        self.port = can_bind(lab.host) or 0
        self.url = f"http://{f'[{lab.host}]' if ':' in lab.host else lab.host}:{self.port}"
        dirs = ["--corpus-dir", str(corpus), "--index-dir", str(index)]
        command = [*lab.careerbot, "serve", *dirs, "--host", lab.host, "--port", str(self.port)]
        log, until = lab.work / f"serve-{name}.log", time.monotonic() + lab.bound(90)
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, env=lab.env(env), stdout=out, stderr=out)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        try:
            while time.monotonic() < until and self.process.poll() is None:
                try:
                    if self.http.get("/health", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        except BaseException:  # interrupted: leave no server behind
            self.stop()
            raise
        self.stop()
        last = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"serve exited ({self.process.returncode}): {lab.tidy(last)[:150]}")

    def health(self) -> dict:
        try:
            response = self.http.get("/health")
        except httpx.HTTPError as error:
            return {"http": type(error).__name__}
        body = json.loads(self.tidy(response.text)) if response.is_success else {}
        return {"http": response.status_code, **body}

    def ask(self, question: str = QUESTIONS[0], **headers: str) -> httpx.Response:
        return self.http.post("/ask", json={"question": question}, headers=headers)

    def wait_for(self, test: Callable[[dict], bool], seconds: float) -> tuple[bool, dict, float]:
        """Poll /health until test(health) holds: whether it did, the last health, seconds."""
        started = time.monotonic()
        while not test(health := self.health()) and time.monotonic() - started < seconds:
            time.sleep(0.2)
        return test(health), health, time.monotonic() - started

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Lab:
    """The work folder, the indexes and servers made in it, and the time left."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work, self.host, self.quick = args, work, args.host, args.quick
        self.deadline = time.monotonic() + args.max_seconds
        entry = Path(sys.executable).parent / "careerbot"
        self.careerbot = [str(entry)] if entry.exists() else [sys.executable, "-m", "careerbot"]
        self.servers: dict[str, Server] = {}
        self.corpus = self.corpus_copy("corpus")
        self.index = work / "index"
        (self.index / "encoders").mkdir(parents=True)
        for export in sorted(args.encoders.glob("*.onnx")) if args.encoders.is_dir() else []:
            shutil.copy2(export, self.index / "encoders" / export.name)
        for _ in range(2):  # two good versions, so that one can be damaged (5b)
            done = self.run("build", index=self.index, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"the first builds failed: {done.stderr.strip()[-300:]}")
        self.good = ""  # main's last good version

    def tidy(self, text: str) -> str:
        """Text without the work folder's path, which says nothing and takes room."""
        return text.replace(f"{self.work}/", "")

    def bound(self, seconds: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 1:
            raise OutOfTime
        return min(seconds, left)

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREERBOT_")}
        return {**env, "HF_HUB_OFFLINE": "1", "CAREERBOT_RELOAD_SECONDS": "1", **extra}

    def run(self, *args: str, index: Path, corpus: Path | None = None, timeout: float = 120):
        dirs = ["--corpus-dir", str(corpus or self.corpus), "--index-dir", str(index)]
        command, env = [*self.careerbot, *args, *dirs], self.env({})
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=self.bound(timeout)
        )
        done.stdout, done.stderr = self.tidy(done.stdout), self.tidy(done.stderr)
        return done

    def corpus_copy(self, name: str) -> Path:
        return Path(shutil.copytree(self.args.corpus_dir, self.work / name))

    def index_copy(self, name: str) -> Path:
        """A copy of the first index (two versions), the model export linked, not copied."""
        target = self.work / f"index-{name}"
        shutil.copytree(self.index, target, ignore=shutil.ignore_patterns("encoders"))
        (target / "encoders").mkdir()
        for export in self.index.glob("encoders/*"):
            try:
                os.link(export, target / "encoders" / export.name)
            except OSError:
                shutil.copy2(export, target / "encoders" / export.name)
        return target

    def server(self, name: str) -> Server:
        if name not in self.servers:
            index = self.index_copy(name)
            self.servers[name] = Server(self, name, index, self.corpus, SERVERS[name])
            self.good = served_name(index) if name == "main" else self.good
        return self.servers[name]

    def main(self) -> Server:
        """The main server, CURRENT back on its last good version (served, if it follows)."""
        main = self.server("main")
        versions = main.index / "versions"
        if not (versions / self.good / "manifest.json").is_file():  # a build removed it
            self.good = max(p.name for p in versions.glob("2*") if (p / "manifest.json").is_file())
        point(main.index, self.good)
        main.wait_for(lambda h: h.get("index_version") == self.good, self.bound(5))
        return main

    def start_once(self, name: str, index: Path, corpus: Path) -> dict:
        """Start an instance with default settings; its /health, or why it did not start."""
        try:
            server = Server(self, name, index, corpus, {})
        except RuntimeError as error:
            return {"http": str(error)}
        try:
            return server.health()
        finally:
            server.stop()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()


CASES: list[tuple[str, str, Callable[[Lab], Outcome]]] = []


def case(ident: str, title: str) -> Callable:
    def register(function: Callable[[Lab], Outcome]) -> Callable[[Lab], Outcome]:
        CASES.append((ident, title, function))
        return function

    return register


# 1. The reload watcher outlives whatever CURRENT or a manifest holds.


def watcher_survives(poison: Callable[[Path], object]) -> Callable[[Lab], Outcome]:
    def attack(lab: Lab) -> Outcome:
        main = lab.main()
        poison(main.index)
        time.sleep(lab.bound(2 if lab.quick else 3))
        during = main.health()
        built = lab.run("build", index=main.index)
        if built.returncode != 0:
            return False, f"careerbot build failed: {built.stderr.strip()[-200:]}"
        new = served_name(main.index)
        moved, health, seconds = main.wait_for(lambda h: h.get("index_version") == new, 10)
        lab.good = new if moved else lab.good
        refusal = f"/health {during['http']}, refused: {brief(during.get('refused_reason'), 70)}"
        if moved:
            return True, f"{refusal}; after the build, served it in {seconds:.1f} s"
        return False, f"{refusal}; still serves {health.get('index_version')} 10 s after a build"

    return attack


def forged(edit: Callable[[dict], None]) -> Callable[[Path], object]:
    return lambda index: point(index, copy_version(index, edit))


POISONS = [
    ("1a", "garbage bytes in CURRENT", lambda index: point(index, b"\xff\xfe garbage")),
    ("1b", "a 300-character name in CURRENT", lambda index: point(index, "20" + "9" * 298)),
    ("1c", 'a new version with synonyms {"ml": 5}', forged(lambda m: m.update(synonyms={"ml": 5}))),
    ("1d", 'a new version with "files": []', forged(lambda m: m.update(files=[]))),
]
for ident, title, poison in POISONS:
    case(ident, f"watcher survives {title}")(watcher_survives(poison))


@case("1e", "careerbot ask with garbage in CURRENT")
def ask_garbage_pointer(lab: Lab) -> Outcome:
    index = lab.index_copy("ask")
    point(index, b"\xff\xfe garbage")
    done = lab.run("ask", QUESTIONS[0], "--top-k", "1", index=index)
    first = (done.stdout.strip().splitlines() or ["(no answer)"])[0][:50]
    last = (done.stderr.strip().splitlines() or [""])[-1]
    evidence = f"exit {done.returncode}, {first!r}; stderr ends {brief(last, 80)!r}"
    return done.returncode == 0 and "Traceback" not in done.stderr, evidence


# 2. Slow and oversized requests.


@case("2a", "17 stalled bodies do not use up the /ask slots (max in progress 16)")
def stalled_bodies(lab: Lab) -> Outcome:
    tight = lab.server("tight")
    started = time.monotonic()
    socks = [socket.create_connection((lab.host, tight.port), timeout=5) for _ in range(17)]
    for sock in socks:
        sock.sendall(stalled_body(lab.host))
    statuses = Counter(tight.ask(QUESTIONS[n % len(QUESTIONS)]).status_code for n in range(20))
    until = started + lab.bound(2 + 2)
    replies = Counter(str(read_reply(sock, until)[0]) for sock in socks)
    for sock in socks:
        sock.close()
    seconds = time.monotonic() - started
    evidence = f"20 questions meanwhile: {dict(statuses)}; the 17 stalled got {dict(replies)}"
    return statuses == {200: 20} and replies == {"408": 17}, f"{evidence} in {seconds:.1f} s"


@case("2b", "slow headers and a silent connection are cut off (request seconds 2)")
def slow_headers(lab: Lab) -> Outcome:
    tight = lab.server("tight")
    started = time.monotonic()
    silent, slow = (socket.create_connection((lab.host, tight.port), timeout=5) for _ in "ab")
    slow.sendall(f"GET /health HTTP/1.1\r\nHost: {lab.host}\r\nX-Slow: ".encode())
    until, reply = started + lab.bound(2 + 2), None
    while reply is None and time.monotonic() < until:
        try:
            slow.sendall(b"a")
        except OSError:
            reply = "reset"
        else:
            reply, _ = read_reply(slow, min(until, time.monotonic() + 0.25))
    slow_seconds = time.monotonic() - started
    silent_reply, silent_at = read_reply(silent, until)
    silent.close()
    slow.close()
    evidence = (
        f"headers at a byte every 0.25 s got {reply} after {slow_seconds:.1f} s; "
        f"a silent connection got {silent_reply} after {silent_at - started:.1f} s"
    )
    return reply == 408 and silent_reply in (408, "closed"), evidence


@case("2c", "a 50 MB header is refused early")
def huge_header(lab: Lab) -> Outcome:
    sock = socket.create_connection((lab.host, lab.main().port), timeout=5)
    sock.sendall(f"GET /health HTTP/1.1\r\nHost: {lab.host}\r\nX-Big: ".encode())
    sent, until = 0, time.monotonic() + lab.bound(60)
    # Stop sending as soon as there is a reply, so that a reset cannot swallow it.
    while sent < 50 << 20 and time.monotonic() < until:
        if select.select([sock], [], [], 0.02)[0]:
            break
        try:
            sock.sendall(b"a" * 65536)
        except OSError:
            break
        sent += 65536
    reply, _ = read_reply(sock, time.monotonic() + lab.bound(5))
    sock.close()
    return reply == 431 and sent < 1 << 20, f"got {reply} after {sent >> 10} KiB of header sent"


async def stall(lab: Lab, port: int, source: str | None, until: float, tally: Counter) -> None:
    """Hold a question open mid-body (the kind that took an /ask slot); again when cut off."""
    while time.monotonic() < until:
        try:
            local = (source, 0) if source else None
            reader, writer = await asyncio.open_connection(lab.host, port, local_addr=local)
        except OSError:
            tally["connect error"] += 1
            await asyncio.sleep(0.2)
            continue
        tally["opened"] += 1
        try:
            writer.write(stalled_body(lab.host))
            reply = await asyncio.wait_for(reader.read(100), max(0.01, until - time.monotonic()))
            tally[f"cut off with {status_of(reply) or 'no reply'}"] += 1
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()


async def polite(http: httpx.AsyncClient, turn: int, until: float, tally: dict) -> None:
    """Ask a question every 2/3 s (90 a minute, under the default 120); count what comes."""
    while time.monotonic() < until:
        began, turn = time.perf_counter(), turn + 1
        try:
            response = await http.post("/ask", json={"question": QUESTIONS[turn % len(QUESTIONS)]})
            tally["statuses"][response.status_code] += 1
            tally["seconds"].append(time.perf_counter() - began)
        except httpx.HTTPError as error:
            tally["statuses"][type(error).__name__] += 1
        await asyncio.sleep(max(0.0, 2 / 3 - (time.perf_counter() - began)))


async def stall_and_ask(lab: Lab, server: Server, spread: bool) -> tuple[Counter, dict]:
    until = time.monotonic() + lab.args.stall_seconds
    stalls: Counter = Counter()
    tally: dict = {"statuses": Counter(), "seconds": []}
    source = (lambda net, n: f"127.0.{net}.{n + 1}") if spread else (lambda net, n: None)
    tasks = [stall(lab, server.port, source(2, n), until, stalls) for n in range(50)]
    await asyncio.sleep(0.5)  # the stalled connections first
    clients = [
        httpx.AsyncClient(
            base_url=server.url,
            timeout=15,
            transport=httpx.AsyncHTTPTransport(local_address=source(1, n)),
        )
        for n in range(16)
    ]
    try:
        tasks += [polite(http, n, until, tally) for n, http in enumerate(clients)]
        await asyncio.wait_for(asyncio.gather(*tasks), lab.args.stall_seconds + 20)
    finally:
        for http in clients:
            await http.aclose()
    return stalls, tally


@case("2d", "16 clients fail nothing beside 50 stalled connections (default limits)")
def stalled_crowd(lab: Lab) -> Outcome:
    lab.bound(lab.args.stall_seconds + 25)
    spread = lab.host == "127.0.0.1" and can_bind("127.0.1.1") is not None
    server = lab.server("default" if spread else "unlimited")
    stalls, tally = asyncio.run(stall_and_ask(lab, server, spread))
    statuses, seconds = tally["statuses"], tally["seconds"]
    failed = sum(count for status, count in statuses.items() if status != 200)
    how = "each from its own address" if spread else "all from one address, no rate limit"
    evidence = (
        f"{lab.args.stall_seconds:g} s, {how}: {statuses[200]} answered, {failed} failed "
        f"{dict(statuses)}, p50 {percentile(seconds, 0.5):.0f} ms, "
        f"p95 {percentile(seconds, 0.95):.0f} ms; stalled connections: {dict(stalls)}"
    )
    # Long enough a run, and every stalled connection must have been cut off too.
    cut = stalls["cut off with 408"] >= 50 or lab.args.stall_seconds < 10 + 2
    return failed == 0 and statuses[200] >= 16 and cut, evidence


def ask_bytes(host: str, question: str) -> bytes:
    body = json.dumps({"question": question}).encode()
    head = f"POST /ask HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    return head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body


def log_size(server: Server, name: str) -> int:
    return (server.index.parent / f"serve-{name}.log").stat().st_size


def log_since(server: Server, name: str, offset: int) -> str:
    with (server.index.parent / f"serve-{name}.log").open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


@case("2e", "20 clients that pipeline three questions and hang up hold no slot, log no error")
def pipelined_hang_ups(lab: Lab) -> Outcome:
    tight = lab.server("tight")  # 16 slots
    before = log_size(tight, "tight")
    for n in range(20):
        with socket.create_connection((lab.host, tight.port), timeout=5) as sock:
            three = [ask_bytes(lab.host, f"{QUESTIONS[k % 5]} ({n}, {k})") for k in range(3)]
            sock.sendall(b"".join(three))
    time.sleep(min(3.0, lab.bound(3)))
    with httpx.Client(base_url=tight.url, timeout=30) as http:
        honest = Counter(
            http.post("/ask", json={"question": QUESTIONS[n % 5]}).status_code for n in range(16)
        )
    errors = log_since(tight, "tight", before).count("Exception in ASGI application")
    evidence = f"then 16 questions: {dict(honest)}; errors in the server's log: {errors}"
    return honest[200] == 16 and errors == 0, evidence


@case("2f", "one connection pipelining questions without reading is cut off")
def pipelined_flood(lab: Lab) -> Outcome:
    main = lab.main()

    def rss() -> int:  # KiB
        status = Path(f"/proc/{main.process.pid}/status").read_text().splitlines()
        return int(next(row for row in status if row.startswith("VmRSS")).split()[1])

    before, sent, until = rss(), 0, time.monotonic() + lab.bound(15)
    chunk = ask_bytes(lab.host, QUESTIONS[1]) * 500
    with socket.create_connection((lab.host, main.port), timeout=2) as sock:
        while sent < 20 << 20 and time.monotonic() < until:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
    grown = (rss() - before) >> 10
    answers = main.ask().status_code
    evidence = f"cut off after {sent >> 10} KiB sent; the server grew {grown} MiB; then {answers}"
    return sent < 5 << 20 and grown < 100 and answers == 200, evidence


# 3. Client identity: X-Forwarded-For is not believed by default.


@case("3", "200 questions with 200 X-Forwarded-For values meet one rate limit")
def forwarded_for(lab: Lab) -> Outcome:
    server, started = lab.server("default"), time.monotonic()
    statuses = Counter(
        server.ask(QUESTIONS[0], **{"X-Forwarded-For": f"10.9.{n // 256}.{n % 256}"}).status_code
        for n in range(200)
    )
    seconds = time.monotonic() - started
    evidence = f"{dict(statuses)} in {seconds:.1f} s (burst 20, then 2 a second)"
    return statuses[200] <= 20 + 2 * seconds + 2 and statuses[200] + statuses[429] == 200, evidence


# 4. A tampered index is never served.


def swap(path: Path, good: bytes, bad: bytes, stop: threading.Event) -> None:
    spare = path.with_name(".swap")
    while not stop.is_set():
        for data in (bad, good):
            spare.write_bytes(data)
            os.replace(spare, path)


@case("4a", "passages.jsonl swapped with a tampered copy while the version loads")
def swapped_passages(lab: Lab) -> Outcome:
    main = lab.main()
    answers = pwned = refusals = undecided = 0
    served = []
    for _ in range(2 if lab.quick else 4):
        name = copy_version(main.index)
        passages = main.index / "versions" / name / "passages.jsonl"
        good = passages.read_bytes()
        bad = "".join(
            json.dumps({**record, "text": "PWNED tampered passage. " + record["text"]}) + "\n"
            for record in map(json.loads, good.decode().splitlines())
        ).encode()
        stop = threading.Event()
        swapper = threading.Thread(target=swap, args=(passages, good, bad, stop))
        swapper.start()
        try:
            point(main.index, name)
            until = time.monotonic() + lab.bound(1.25)
            while time.monotonic() < until:
                answers, pwned = answers + 1, pwned + ("PWNED" in main.ask().text)
        finally:
            stop.set()
            swapper.join()

        # The watcher may still be loading, or not yet have looked, when the swapping stops
        # (a slow machine): wait until it has either served or refused the copy.
        def decided(health: dict, name: str = name) -> bool:
            return name in (health.get("index_version"), health.get("refused_version"))

        done, health, _ = main.wait_for(decided, lab.bound(10))
        undecided += not done
        for question in QUESTIONS:  # what was loaded stays loaded
            answers, pwned = answers + 1, pwned + ("PWNED" in main.ask(question).text)
        served.append(health.get("index_version") == name)
        refusals += health.get("refused_version") == name
    lab.main()
    evidence = (
        f"{len(served)} copies published while swapping: {sum(served)} served, "
        f"{refusals} refused, {undecided} neither within 10 s; {pwned} of {answers} "
        "answers said PWNED"
    )
    return pwned == 0 and sum(served) + refusals == len(served), evidence


def refused(lab: Lab, name: str) -> tuple[bool, str, Counter]:
    """Point main at a version: whether it was refused, why, and the /health statuses seen."""
    main = lab.server("main")
    point(main.index, name)
    statuses: Counter = Counter()

    def seen(health: dict) -> bool:
        statuses[health["http"]] += 1
        return health.get("refused_version") == name

    found, health, _ = main.wait_for(seen, lab.bound(4))
    lab.main()
    return (
        found and health.get("index_version") != name,
        brief(health.get("refused_reason")),
        statuses,
    )


@case("4b", "a manifest with edited synonyms, its folder not renamed")
def edited_manifest(lab: Lab) -> Outcome:
    edit = lambda m: m["synonyms"].update(ml=["PWNED"])  # noqa: E731
    held, reason, _ = refused(lab, copy_version(lab.main().index, edit, reseal=False))
    return held, f"refused: {reason}" if held else f"not refused: {reason}"


@case("4c", 'resealed manifests with "speakers": "two" and "documents": 7')
def resealed_manifests(lab: Lab) -> Outcome:
    results, reason = [], ""
    for field, value in (("speakers", "two"), ("documents", 7)):
        name = copy_version(lab.main().index, lambda m, f=field, v=value: m.update({f: v}))
        held, reason, statuses = refused(lab, name)
        results.append((held and set(statuses) == {200}, f"{field}: /health {dict(statuses)}"))
    evidence = "; ".join(text for _, text in results) + f"; refused: {reason}"
    return all(held for held, _ in results), evidence


# 5. A restart with a good index on disk is not an outage.


@case("5a", "serve starts with a bad transcript in the corpus and a good index")
def bad_transcript_at_start(lab: Lab) -> Outcome:
    corpus = lab.corpus_copy("corpus-bad")
    (corpus / "zz-bad.txt").write_text("Ada: an answer before any question.\n\nWhy?\n\nAda: No.\n")
    health = lab.start_once("5a", lab.index_copy("5a"), corpus)
    warnings = [brief(w) for w in health.get("warnings", [])][:1]
    evidence = f"/health {health['http']} {health.get('status')!r}, warnings {warnings}"
    return health["http"] == 200 and health.get("status") == "degraded", evidence


@case("5b", "serve starts with the current version damaged")
def damaged_current(lab: Lab) -> Outcome:
    index = lab.index_copy("5b")
    damaged = served_name(index)
    previous = max(p.name for p in (index / "versions").glob("2*") if p.name < damaged)
    (index / "versions" / damaged / "faiss.index").write_bytes(b"garbage")
    health = lab.start_once("5b", index, lab.corpus)
    serving = health.get("index_version")
    which = "the previous, good one" if serving == previous else "not the previous one"
    evidence = f"/health {health['http']} {health.get('status')!r}, serving {serving} ({which})"
    return health["http"] == 200 and serving not in (None, damaged), evidence


# 6. CURRENT names only a folder inside versions/.


@case("6", "CURRENT holding the path of another index's version")
def foreign_version(lab: Lab) -> Outcome:
    main, other = lab.main(), lab.index_copy("other")
    name = copy_version(other)  # a good version that exists only in the other index
    folder = other / "versions" / name
    held, evidence = True, []
    relative = os.path.relpath(folder, main.index / "versions")
    for kind, target in (("absolute", str(folder.resolve())), ("relative", relative)):
        point(main.index, target)
        time.sleep(lab.bound(2.5))
        health = main.health()
        ours = health["http"] == 200 and health.get("index_version") != name
        held = held and ours
        reason = brief(health.get("refused_reason"), 50)
        evidence.append(f"{kind}: serving {'ours' if ours else 'it'}, refused: {reason}")
    lab.main()
    control = copy_version(main.index)  # a good version of our own is followed, though
    point(main.index, control)
    followed, _, _ = main.wait_for(lambda h: h.get("index_version") == control, lab.bound(5))
    lab.good = control if followed else lab.good
    evidence.append(f"a good copy after them {'served' if followed else 'NOT served'}")
    return held and followed, "; ".join(evidence)


# 7. Bad synonyms.toml values are one-line errors.


def bad_synonyms(text: str) -> Callable[[Lab], Outcome]:
    def attack(lab: Lab) -> Outcome:
        corpus = lab.work / f"corpus-synonyms-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
        shutil.copytree(lab.corpus, corpus)
        (corpus / "synonyms.toml").write_text(text)
        index = lab.work / "index-synonyms"
        done = lab.run("build", index=index if index.exists() else lab.index_copy("synonyms"),
                       corpus=corpus)  # fmt: skip
        errors = [line for line in done.stderr.splitlines() if line.startswith("careerbot: error:")]
        held = done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr
        last = (done.stderr.strip().splitlines() or [""])[-1]
        return held, f"exit {done.returncode}: {last[:110]}"

    return attack


for ident, text in [
    ("7a", "synonyms = 5"),
    ("7b", 'synonyms = "x"'),
    ("7c", '[synonyms]\n"" = ["x"]'),
]:
    case(ident, f"careerbot build with synonyms.toml {text!r}")(bad_synonyms(text + "\n"))


# 8. Leftovers and clean-up.


@case("8a", "a dead export's temp file is removed by a build, a live one's kept")
def export_leftovers(lab: Lab) -> Outcome:
    index = lab.index_copy("8a")
    exports = sorted(index.glob("encoders/*.onnx"))
    if not exports:
        return False, "no ONNX export in the index to name a leftover after"
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()  # its pid is free now
    # Either way of naming a temporary file with its writer's pid in it.
    names = {
        "writing-pid-target": lambda pid: f".writing-{pid}-{exports[0].name}-attack",
        "target-pid": lambda pid: f".{exports[0].name}-{pid}-attack",
    }
    files = {
        (style, who): index / "encoders" / name(pid)
        for style, name in names.items()
        for who, pid in (("dead", child.pid), ("live", os.getpid()))
    }
    for path in files.values():
        path.write_bytes(b"\0" * 4096)
    done = lab.run("build", index=index)
    gone = {key for key, path in files.items() if not path.exists()}
    cleaned = [style for style in names if gone & {(style, "dead")}]
    wrong = [style for style in names if (style, "live") in gone]
    evidence = f"build exit {done.returncode} (the export was there, not redone); dead pid's "
    evidence += f"removed in naming {cleaned or 'none'}"
    evidence += f", live pid's removed in naming {wrong or 'none'}"
    return done.returncode == 0 and bool(cleaned) and not wrong, evidence


@case("8b", "corrupt later-sorting version folders are removed, the served one kept")
def corrupt_versions(lab: Lab) -> Outcome:
    index = lab.index_copy("8b")
    before = served_name(index)
    corrupt = [index / "versions" / f"9999123{n}T235959999999Z-{'0' * 24}" for n in range(3)]
    for folder in corrupt:
        folder.mkdir()
        (folder / "manifest.json").write_text("{not json")
    done = lab.run("build", index=index)
    left = [folder.name[:8] for folder in corrupt if folder.exists()]
    kept = all((index / "versions" / name).is_dir() for name in (before, served_name(index)))
    evidence = f"build exit {done.returncode}; corrupt left: {left}; served one kept: {kept}"
    return done.returncode == 0 and not left and kept, evidence


# 9. Large and odd transcripts.


@case("9a", "parsing and chunking time grows linearly")
def linear_chunking(lab: Lab) -> Outcome:
    from careerbot.chunking import answers_of, split_passages
    from careerbot.transcript import parse_transcript

    def seconds(size: int) -> float:
        path = lab.work / f"linear-{size}.txt"
        path.write_text(transcript(size))
        best = float("inf")
        for _ in range(3):
            lab.bound(60)
            began = time.perf_counter()
            for answer in answers_of(parse_transcript(path)):
                for passage in split_passages(answer, lambda t: len(t.split()) + 2, 256, 128):
                    passage.lines  # noqa: B018 - each passage's source lines, as a build does
            best = min(best, time.perf_counter() - began)
        return best

    small = (128 if lab.quick else 256) << 10
    first, second = seconds(small), seconds(4 * small)
    evidence = f"{small >> 10} KiB in {first:.3f} s, {small >> 8} KiB in {second:.3f} s"
    return second / first < 6, f"{evidence}: x{second / first:.1f} for x4 the text"


@case("9b", "a 50 MB transcript is built or refused in under 60 s")
def huge_transcript(lab: Lab) -> Outcome:
    corpus = lab.corpus_copy("corpus-huge")
    size = 12 if lab.quick else 50  # the default limit is 10 MB
    (corpus / "huge.txt").write_text(transcript(size << 20))
    began = time.monotonic()
    try:
        done = lab.run("build", index=lab.index_copy("9b"), corpus=corpus, timeout=60)
    except subprocess.TimeoutExpired:
        return False, f"{size} MB: no result after 60 s"
    seconds = time.monotonic() - began
    last = (done.stderr.strip().splitlines() or [""])[-1]
    clear = re.search(r"limit|\bMB\b", last, re.I) and "Traceback" not in done.stderr
    held = seconds < 60 and (done.returncode == 0 or (done.returncode == 2 and bool(clear)))
    return held, f"{size} MB: exit {done.returncode} in {seconds:.1f} s: {last[:100]}"


@case("9c", "a long answer without an end marker is kept, or the drop is reported")
def tail_without_marker(lab: Lab) -> Outcome:
    corpus = lab.corpus_copy("corpus-tail")
    impersonal = [
        f"Point {n}: feature stores keep training and serving data consistent, and "
        "monitoring catches drift before it reaches customers."
        for n in range(1, 21)
    ] + ["The last point: the zebrafish benchmark rewards careful evaluation."]
    text = "\n\n".join(
        ["An interview with Ada about data work.", "How did you get started?",
         "Ada: I began as an analyst and moved into engineering over two years.", *impersonal]
    )  # fmt: skip
    (corpus / "tail.txt").write_text(text + "\n")
    index = lab.index_copy("9c")
    done = lab.run("build", index=index, corpus=corpus)
    warnings = [
        line for line in done.stderr.splitlines()
        if line.startswith("careerbot: warning:") and re.search(r"lines? \d+", line)
    ]  # fmt: skip
    kept = b"zebrafish" in (index / "versions" / served_name(index) / "passages.jsonl").read_bytes()
    evidence = f"build exit {done.returncode}; last paragraph indexed: {kept}; warning: "
    evidence += warnings[0][:100] if warnings else "none"
    return done.returncode == 0 and (kept or bool(warnings)), evidence


@case("9d", "a speaker in the speakers file who never answers is reported")
def extra_speaker(lab: Lab) -> Outcome:
    corpus = lab.corpus_copy("corpus-extra")
    speakers = corpus / "ml-engineer-career-qa.speakers.toml"
    speakers.write_text(speakers.read_text() + '\n[speakers.Zed]\nname = "Zed Nobody"\n')
    done = lab.run("build", index=lab.index_copy("9d"), corpus=corpus)
    warnings = [
        line for line in done.stderr.splitlines()
        if line.startswith("careerbot: warning:") and "Zed" in line
    ]  # fmt: skip
    evidence = f"build exit {done.returncode}; warning: {warnings[0][:100] if warnings else 'none'}"
    return done.returncode == 0 and bool(warnings), evidence


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to serve on")
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus")
    parser.add_argument("--encoders", type=Path, default=ROOT / "index" / "encoders",
                        help="an ONNX export to copy (default: the repo's)")  # fmt: skip
    parser.add_argument("--stall-seconds", type=float, default=30, help="length of case 2d")
    parser.add_argument("--max-seconds", type=float, default=300, help="the whole run at most")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter waits")
    parser.add_argument("--only", default="", help="comma-separated case ids or prefixes")
    parser.add_argument("--work", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    loopback(args.host)
    wanted = [part.strip() for part in args.only.split(",") if part.strip()]
    chosen = [c for c in CASES if not wanted or any(c[0].startswith(w) for w in wanted)]
    if not chosen:
        sys.exit(f"attack: no case matches --only {args.only}")
    started = time.monotonic()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="careerbot-attack-", dir=args.work))
    broken, lab = [], None
    try:
        try:
            lab = Lab(args, work)
        except (RuntimeError, OSError, subprocess.SubprocessError, OutOfTime) as error:
            print(f"attack: could not set up in {work}: {error}", file=sys.stderr)
            return 1
        for ident, title, attack in chosen:
            try:
                held, evidence = attack(lab)
            except OutOfTime:
                held, evidence = False, f"not run: --max-seconds {args.max_seconds:g} used up"
            except Exception as error:  # the attack itself failed: say so, go on
                held, evidence = False, f"the attack failed: {type(error).__name__}: {error}"
            print(f"{'held  ' if held else 'BROKEN'} {ident} {title}: {evidence}", flush=True)
            broken += [] if held else [ident]
    finally:
        if lab:
            lab.close()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    summary = f"{len(chosen) - len(broken)} of {len(chosen)} held in {seconds:.0f} s"
    print(summary + (f"; broken: {', '.join(broken)}" if broken else ""), flush=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
