"""Serving over HTTP: uvicorn, with time and size limits on what a client sends."""

import asyncio
import gc
import os
import signal
import socket
import sys
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from careerbot import CareerbotError
from careerbot.config import Settings
from careerbot.lexical import english


class HeadersTooLarge(Exception):
    """The request's headers are over the limit."""


class TooManyPipelined(Exception):
    """A connection has more requests waiting than it may."""


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request and a cap on its headers.

    uvicorn closes idle keep-alive connections but waits for ever on a request that
    arrives slowly, and httptools buffers headers of any size. Here a request's line,
    headers and body must all arrive within `request_seconds` of its first byte (or of
    the connection opening), else the client gets 408 and the connection closes; headers
    over `max_header_bytes` get 431. The application never sees either request.
    """

    request_seconds = 10.0
    max_header_bytes = 16 * 1024
    # Requests one connection may have waiting behind the one being answered (HTTP/1.1
    # pipelining). uvicorn reads on after each answer and whenever the app waits for the
    # client (as /ask's watch for a hang-up does), so a client that sends and never reads
    # would fill the server's memory with them (75 MB of requests in 15 s left 1.5 GB);
    # past this the connection is closed.
    max_pipelined = 64

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.deadline: asyncio.TimerHandle | None = None
        # Header bytes of the request being received, two ways, each never more than the
        # truth: as parsed (name and value of each header, the URL) and as received in
        # whole chunks while its headers were unfinished (a header that trickles in never
        # reaches the parser's callbacks). `requests` tells one request from the next.
        self.in_headers, self.requests, self.parsed, self.received = False, 0, 0, 0
        self.oversized = self.flooded = False
        self.unanswered: list[Any] = []  # the requests not yet answered (uvicorn's cycles)
        super().connection_made(transport)
        self.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        # uvicorn tells only the newest request; one answered before it would go on, and
        # write to the closed socket.
        for cycle in self.unanswered:
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        super().connection_lost(exc)

    def arm(self) -> None:
        self.disarm()
        self.deadline = self.loop.call_later(self.request_seconds, self.too_slow)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def data_received(self, data: bytes) -> None:
        unfinished, request = self.in_headers, self.requests
        super().data_received(data)
        # The same request's headers unfinished before and after: the chunk was all headers.
        if unfinished and self.in_headers and self.requests == request:
            self.received += len(data)
            if self.received > self.max_header_bytes and not self.transport.is_closing():
                self.reply(431, "Request headers too large.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_headers, self.parsed, self.received = True, 0, 0
        self.requests += 1
        self.arm()

    def on_url(self, url: bytes) -> None:
        self.count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_headers = False
        super().on_headers_complete()
        self.unanswered = [c for c in self.unanswered if not c.response_complete]
        if self.cycle is not None and self.cycle not in self.unanswered:
            self.unanswered.append(self.cycle)
        if len(self.pipeline) > self.max_pipelined:
            self.flooded = True
            raise TooManyPipelined  # httptools stops parsing; uvicorn calls send_400

    def on_message_complete(self) -> None:
        self.disarm()
        super().on_message_complete()

    def count(self, size: int) -> None:
        self.parsed += size
        if self.parsed > self.max_header_bytes:
            self.oversized = True
            raise HeadersTooLarge  # httptools stops parsing; uvicorn answers via send_400

    def send_400_response(self, msg: str) -> None:
        if self.flooded:
            self.logger.warning(
                "Closed a connection with over %d requests waiting", self.max_pipelined
            )
            self.transport.close()
        elif self.oversized:
            self.reply(431, "Request headers too large.")
        else:
            super().send_400_response(msg)

    def too_slow(self) -> None:
        self.deadline = None
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        if answering:
            self.transport.close()
        else:
            self.reply(408, "Request not received in time.")

    def reply(self, status: int, message: str) -> None:
        """Answer with a short plain-text error and close the connection; only close it
        while an earlier request on it is unanswered (the client would take the error for
        that request's answer)."""
        if self.transport.is_closing():
            return
        current = None if self.in_headers else self.cycle
        if any(c is not current and not c.response_complete for c in self.unanswered):
            self.transport.close()
            return
        body = message.encode("ascii")
        self.transport.write(
            STATUS_LINE[status]
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        self.transport.close()


def limited_http(settings: Settings) -> type[LimitedHttp]:
    """The protocol class with the limits the settings give."""
    limits = {
        "request_seconds": settings.request_seconds,
        "max_header_bytes": settings.max_header_bytes,
    }
    return type("LimitedHttp", (LimitedHttp,), limits)


def server_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for careerbot. Forwarded addresses are believed only from the
    trusted proxies, which the app's own middleware handles, so uvicorn's is off."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=limited_http(settings),
        proxy_headers=False,
        access_log=settings.access_log,
        **options,
    )


def check_address(settings: Settings) -> None:
    """Refuse, with one line, an address this process cannot listen on, before the model
    and index load: gunicorn would retry it five times over five seconds, ten log lines,
    and uvicorn would say so only once everything had loaded."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as both servers do
            trial.bind((settings.host, settings.port))
    except OSError as error:
        raise CareerbotError(
            f"cannot listen on {settings.host} port {settings.port} ({error.strerror})"
        ) from None


def address(settings: Settings) -> str:
    """host:port, an IPv6 host in brackets."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{host}:{settings.port}"


def run(app: Any, settings: Settings) -> None:
    """Serve the app until interrupted: in this process, or in settings.workers processes
    forked from it once the app, the model and the index are loaded (gunicorn, preloading),
    so that they share those pages rather than each loading its own."""
    if settings.workers == 1:
        uvicorn.Server(server_config(app, settings, log_level="info")).run()
        return
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter
    from gunicorn.glogging import Logger
    from uvicorn_worker import UvicornWorker

    english()  # the dictionary of the word matching, shared too

    class Worker(UvicornWorker):  # type: ignore[misc]
        CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
            "loop": "auto",
            "http": limited_http(settings),
            "proxy_headers": False,
            "access_log": settings.access_log,
        }

        async def _serve(self) -> None:
            """uvicorn_worker's, but SIGQUIT stops the worker as SIGTERM does.

            gunicorn's quick shutdown (SIGINT or SIGQUIT to the main process) sends the
            workers SIGQUIT, and uvicorn_worker's handler for it only clears gunicorn's
            `alive` flag, which uvicorn never reads: the workers went on answering until
            killed graceful_timeout later, their queued question logs lost. Here it ends
            the server, which finishes its requests and writes its log. (Not the server's
            handle_exit: that raises the signal again once stopped, and SIGQUIT's default
            action is a core dump.)
            """
            self.config.app = self.wsgi
            server = uvicorn.Server(config=self.config)

            def stop() -> None:
                server.should_exit = True

            asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, stop)
            await server.serve(sockets=self.sockets)
            # Its log is written: leave without Python's finalization, as a worker stopped
            # by SIGTERM does (killed by the signal, raised again). Finalizing runs the
            # destructors of ONNX Runtime's objects, made in the main process before the
            # fork, which wait on threads the fork did not copy: the worker hung or
            # aborted ("terminate called ... std::system_error").
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0 if server.started else Arbiter.WORKER_BOOT_ERROR)

    class Log(Logger):  # type: ignore[misc]
        def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
            """With SO_REUSEPORT each worker opens its own socket and the main process none,
            so gunicorn says "Listening at:  (pid)": name the address it binds instead."""
            if msg.startswith("Listening at:") and args and not args[0]:
                args = (f"http://{address(settings)}", *args[1:])
            super().info(msg, *args, **kwargs)

    options = {
        "bind": [address(settings)],
        "logger_class": Log,
        "workers": settings.workers,
        "worker_class": Worker,
        "preload_app": True,
        # Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new
        # connections among them; on one shared socket the first worker to wake takes most
        # of a burst, and kept-alive clients stay where they landed.
        "reuse_port": True,
        # A worker stopping finishes its requests and writes its question log first.
        "graceful_timeout": 30,
        "keepalive": 5,
        "loglevel": "info",
        # gunicorn's access log, which uvicorn's logger writes to in a worker
        "accesslog": "-" if settings.access_log else None,
        "control_socket_disable": True,  # no gunicornc: nothing to write in $HOME
    }

    class Workers(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    # Objects made so far are never collected: a collection would touch (and so copy)
    # every page of them in each worker.
    gc.freeze()
    Workers().run()
