"""Hot swap: the server follows index/CURRENT to each new version that loads and verifies."""

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from careerbot import CareerbotError
from careerbot.embedding import Embedder
from careerbot.search import Searcher
from careerbot.version import POINTER, current_version, load_version

log = logging.getLogger("careerbot")

# A refused version is tried again when its folder changes, or after this long (the
# trouble may have been passing: a copy still under way, too many open files).
RETRY_SECONDS = 30.0

FolderState = tuple[tuple[str, int, int], ...] | None


def folder_state(folder: Path) -> FolderState:
    """Each entry's name, size and modification time: what changes when a folder does."""
    try:
        entries = [(e.name, e.stat(follow_symlinks=False)) for e in os.scandir(folder)]
    except OSError:
        return None
    return tuple(sorted((name, info.st_size, info.st_mtime_ns) for name, info in entries))


@dataclass(frozen=True)
class Refusal:
    """A version the server would not serve, why, and what its folder looked like."""

    version: str
    reason: str
    state: FolderState = None
    at: float = field(default_factory=time.monotonic)

    def stands(self, version: str, state: FolderState) -> bool:
        """Whether looking at this version again would be wasted."""
        recent = time.monotonic() - self.at < RETRY_SECONDS
        return recent and (self.version, self.state) == (version, state)


class IndexWatch:
    """The searcher being served, swapped for each new version CURRENT names.

    Requests in flight finish on the searcher they started with. Whatever goes wrong
    while looking at a new version (a garbage pointer, a damaged or hostile manifest, an
    error nobody foresaw) refuses that version, is logged once, and watching goes on.
    """

    def __init__(
        self, searcher: Searcher, index_dir: Path, model: Embedder, min_score: float
    ) -> None:
        self.searcher, self.index_dir = searcher, index_dir
        self.model, self.min_score = model, min_score
        self.refused: Refusal | None = None
        self.checked_at: float | None = None

    async def run(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.check()

    async def check(self) -> None:
        """Look at the pointer once; serve what it names if that is new and loads. A
        pointer a restart could not serve is reported too, though nothing is swapped."""
        self.checked_at = time.time()
        name, state = POINTER, None
        try:
            target = current_version(self.index_dir)
            if target is None:
                self.refuse(name, f"{self.index_dir / POINTER} is missing; a restart would rebuild")
                return
            name = target.name
            if name == self.searcher.index.version:
                if target.is_dir():
                    self.refused = None
                else:
                    self.refuse(name, "the served version's folder is gone from the index")
                return
            state = folder_state(target)
            if self.refused is not None and self.refused.stands(name, state):
                return
            index = await run_in_threadpool(load_version, target, self.model)
            searcher = await run_in_threadpool(Searcher, index, self.model, self.min_score)
        except Exception as error:  # the watcher must outlive anything a version holds
            reason = str(error) if isinstance(error, CareerbotError) else repr(error)
            self.refuse(name, reason[:500], state)
            return
        self.searcher, self.refused = searcher, None
        log.info("now serving index version %s", searcher.index.version)

    def refuse(self, version: str, reason: str, state: FolderState = None) -> None:
        if self.refused is None or (self.refused.version, self.refused.reason) != (
            version,
            reason,
        ):
            log.warning("refused index version %s: %s", version, reason)
        self.refused = Refusal(version, reason, state)

    def overdue(self, seconds: float) -> str | None:
        """A warning when CURRENT has not been read for much longer than `seconds`, the
        interval between checks: the watcher is stuck on something."""
        if self.checked_at is None:
            return None
        late = time.time() - self.checked_at
        if late <= 3 * seconds + 60:
            return None
        return f"CURRENT was last read {late:.0f} s ago; new versions are not being followed"
