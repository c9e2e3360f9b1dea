"""Settings, read from CAREERBOT_* environment variables or passed in."""

import difflib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODEL = "all-MiniLM-L6-v2"
HNSW_FROM = 50_000
MIN_TOKEN_CHARS = 16
# An origin as browsers send it in the Origin header: scheme, host, optional port.
ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>\d{1,5}))?",
    re.I,
)
DEFAULT_PORTS = {"http": 80, "https": 443}  # which browsers leave out of an origin


def origin(text: str) -> str:
    """An origin (http(s)://host[:port], nothing after) as browsers write it in the Origin
    header: lower case, no default port, an IPv6 address in its short form ([::1])."""
    found = ORIGIN.fullmatch(text)
    port = int(found["port"]) if found and found["port"] else None
    host = found["host"].lower() if found else ""
    try:
        if host.startswith("["):
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
    except ValueError:
        found = None
    if not found or (port is not None and not 0 < port < 65536):
        raise ValueError(
            f"{text[:60]!r} is not an origin like https://www.example.org (a scheme, a host "
            "or an IPv6 address in [], maybe a port from 1 to 65535; no path or trailing slash)"
        )
    scheme = found["scheme"].lower()
    return f"{scheme}://{host}{'' if port in (None, DEFAULT_PORTS[scheme]) else f':{port}'}"


class Settings(BaseSettings):
    # No setting is infinite or not a number (nan passed no bound and broke each one).
    model_config = SettingsConfigDict(env_prefix="CAREERBOT_", extra="forbid", allow_inf_nan=False)

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # The bundled model's name, or the path of a local sentence-transformers model.
    model: str = BUNDLED_MODEL
    # How the model runs: "onnx" (ONNX Runtime, from an export made once into
    # index_dir/encoders), "onnx-int8" (the same with int8 weights) or "torch".
    encoder: Literal["onnx", "onnx-int8", "torch"] = "onnx"
    # Word pieces of answer text per passage; question and speaker are embedded on top.
    passage_tokens: int = Field(default=96, ge=16, le=200)
    top_k: int = Field(default=3, ge=1, le=10)
    # The FAISS index: exact ("flat"), approximate ("hnsw"), or chosen by size ("auto":
    # hnsw from HNSW_FROM passages on, where exact search starts to cost milliseconds).
    index_type: Literal["auto", "flat", "hnsw"] = "auto"
    # Answers scoring below this are left out; none left means "no answer" and suggestions.
    min_score: float = Field(default=0.30, ge=0.0, le=1.0)
    # How often the server checks for a new index version (0: never).
    reload_seconds: float = Field(default=2.0, ge=0)
    # Questions a client may ask a minute (0: no limit), and how many at once in a burst.
    rate_limit_per_minute: int = Field(default=120, ge=0)
    rate_limit_burst: int = Field(default=20, ge=1)
    # Questions in progress at once; more get an immediate 503.
    max_in_progress: int = Field(default=64, ge=1)
    # Seconds a client has to send a whole request (line, headers, body) from its first
    # byte; slower ones get 408. Header bytes beyond max_header_bytes get 431.
    request_seconds: float = Field(default=10.0, gt=0, le=3600)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # A line per request on stdout, with the client's address (uvicorn's access log). Off:
    # what the question log promises not to keep should not go to the server's log either
    # (a proxy in front may log requests itself).
    access_log: bool = False
    # Addresses or networks of proxies whose X-Forwarded-For is believed, comma-separated;
    # none by default, so a client is the address of its socket.
    trusted_proxies: str = ""
    # A transcript larger than this is refused up front.
    max_transcript_mb: float = Field(default=10.0, gt=0, le=1024)
    # The question log: a SQLAlchemy URL (default: an SQLite file in index_dir; for
    # several servers, postgresql+psycopg://...), what it keeps of each question (full,
    # redacted: e-mail addresses, phone numbers and URLs replaced; off: nothing is
    # written), and for how many days.
    database_url: str = ""
    question_log: Literal["full", "redacted", "off"] = "redacted"
    log_retention_days: int = Field(default=90, ge=1, le=3650)
    # The bearer token GET /admin/report asks for; empty (the default): no such route.
    # A SecretStr, so printing the settings never shows it.
    admin_token: SecretStr = SecretStr("")
    host: str = "127.0.0.1"
    # Worker processes serving one port (careerbot serve --workers). Each has its own
    # rate limits and hot-swaps versions itself, and runs the model on one thread.
    workers: int = Field(default=1, ge=1, le=64)
    port: int = Field(default=8000, ge=1, le=65535)
    # Origins allowed to call the API from a browser, comma-separated; none by default.
    cors_origins: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def proxy_addresses(cls, value: str) -> str:
        """Each address or network, written the way uvicorn reads it (host bits cleared:
        uvicorn takes "127.0.0.1/8" for a host name and trusts nothing)."""
        networks = []
        for item in value.split(","):
            if item.strip():
                try:
                    network = ipaddress.ip_network(item.strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{item.strip()[:60]!r} is not an IP address or network"
                    ) from None
                single = network.num_addresses == 1
                networks.append(str(network.network_address) if single else str(network))
        return ", ".join(networks)

    @field_validator("database_url")
    @classmethod
    def known_database(cls, value: str) -> str:
        """SQLite or PostgreSQL through psycopg, the two the question log is tested on."""
        if not value:
            return value
        path = value.removeprefix("sqlite:///")
        known = path != value or value.startswith("postgresql+psycopg://")
        # An in-memory SQLite log would be lost, and one per connection at that.
        if not known or value != value.strip() or path in ("", ":memory:"):
            raise ValueError("must be sqlite:///PATH or postgresql+psycopg://...")
        return value

    @field_validator("cors_origins")
    @classmethod
    def web_origins(cls, value: str) -> str:
        """Each an origin, written as browsers send it: the match is exact, and a typo
        would silently shut the widget out."""
        return ",".join(origin(item.strip()) for item in value.split(",") if item.strip())

    @model_validator(mode="after")
    def forkable_encoder(self) -> "Settings":
        if self.workers > 1 and self.encoder == "torch":
            raise ValueError(
                "CAREERBOT_ENCODER=torch serves one worker (--workers or CAREERBOT_WORKERS "
                "over 1 need onnx or onnx-int8: torch's threads do not survive a fork)"
            )
        return self

    @field_validator("admin_token")
    @classmethod
    def strong_token(cls, value: SecretStr) -> SecretStr:
        """Empty, or long enough not to be guessed, in characters a header carries as is."""
        token = value.get_secret_value()
        if token and (len(token) < MIN_TOKEN_CHARS or not re.fullmatch(r"[!-~]+", token)):
            raise ValueError(
                f"must be at least {MIN_TOKEN_CHARS} visible ASCII characters, no spaces "
                "(e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    @property
    def max_transcript_bytes(self) -> int:
        return int(self.max_transcript_mb * 1024 * 1024)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.index_dir / 'questions.sqlite'}"

    @property
    def encoder_dir(self) -> Path:
        return self.index_dir / "encoders"

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]


MISSPELT_SHOWN = 5


def misspelt_settings(environ: Mapping[str, str]) -> list[str]:
    """A line for each CAREERBOT_ variable that is no setting but nearly one
    (CAREERBOT_TOPK): pydantic ignores it, and a typo would leave the default in force
    without a word. Others (a test's, a script's) are no concern of careerbot's."""
    known = [name.upper() for name in Settings.model_fields]
    lines: list[str] = []
    for variable in sorted(environ):
        name = variable.upper().removeprefix("CAREERBOT_")
        if not variable.upper().startswith("CAREERBOT_") or name in known:
            continue
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if near:
            lines.append(f"{variable} is not a setting (CAREERBOT_{near[0]}?); it is ignored")
    if len(lines) > MISSPELT_SHOWN:
        more = len(lines) - MISSPELT_SHOWN
        lines[MISSPELT_SHOWN:] = [f"and {more} more such variables, ignored too"]
    return lines
