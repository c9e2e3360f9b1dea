"""careerbot: career answers in the words of real practitioners."""

import os
import stat
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__version__ = version("careerbot")


class CareerbotError(Exception):
    """A problem a person can fix; its message is one line meant for them."""


def first_problem(error: "ValidationError", whole: str) -> str:
    """A pydantic ValidationError's first problem, in one line: "where: what" (`whole` when
    the problem is with the whole value)."""
    first = error.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or whole}: {first['msg']}"


def left_by_dead_writer(name: str, prefix: str) -> bool:
    """Whether a temporary file or folder named <prefix><pid>-... belongs to a process that
    is gone (killed midway: what it left can go) rather than one still at work."""
    pid = name.removeprefix(prefix).split("-")[0]
    return not (pid.isdigit() and alive(int(pid)))


def alive(pid: int) -> bool:
    """Whether a process with this id is running (leftovers of dead ones can go)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Small files careerbot reads (speakers, synonyms, a manifest) are refused past this size.
SMALL_FILE_BYTES = 4 * 1024 * 1024


def utf8_text(raw: bytes, name: str) -> str:
    """Bytes as UTF-8 text; else one line naming the line of the first byte that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CareerbotError(
            f"{name}:{line}: not UTF-8 text (byte {raw[error.start]:#04x})"
        ) from None


def read_limited(path: Path, max_bytes: int, name: str = "", advice: str = "") -> bytes:
    """A regular file's bytes, refused with one line, before any is read, when it is
    something else (a FIFO would block, a device never ends) or larger than max_bytes;
    `advice` follows the size in that refusal."""
    name = name or str(path)
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as error:
        raise CareerbotError(f"{name}: cannot be read ({error.strerror})") from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise CareerbotError(f"{name}: not a regular file")
        if info.st_size > max_bytes:
            raise CareerbotError(
                f"{name}: {info.st_size:,} bytes, over the limit of {max_bytes:,} bytes{advice}"
            )
        with os.fdopen(os.dup(handle), "rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise CareerbotError(f"{name}: cannot be read ({error.strerror})") from None
    finally:
        os.close(handle)
    if len(data) > max_bytes:  # it grew while being read
        raise CareerbotError(f"{name}: over the limit of {max_bytes:,} bytes{advice}")
    return data
