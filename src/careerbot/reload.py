"""Hot swap: the server follows index/CURRENT to each new version that loads and verifies."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from careerbot import CareerbotError
from careerbot.embedding import Embedder
from careerbot.index import POINTER, current_version, load_version
from careerbot.search import Searcher

log = logging.getLogger("careerbot")


@dataclass(frozen=True)
class Refusal:
    """A version the server would not serve, and why."""

    version: str
    reason: str
    at: float = field(default_factory=time.time)


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
        """Look at the pointer once; serve what it names if that is new and loads."""
        self.checked_at = time.time()
        name = POINTER
        try:
            target = current_version(self.index_dir)
            if target is None or target.name == self.searcher.index.version:
                self.refused = None
                return
            name = target.name
            if self.refused is not None and self.refused.version == name:
                return
            index = await run_in_threadpool(load_version, target, self.model)
            searcher = await run_in_threadpool(Searcher, index, self.model, self.min_score)
        except Exception as error:  # the watcher must outlive anything a version holds
            reason = str(error) if isinstance(error, CareerbotError) else repr(error)
            self.refuse(name, reason[:500])
            return
        self.searcher, self.refused = searcher, None
        log.info("now serving index version %s", searcher.index.version)

    def refuse(self, version: str, reason: str) -> None:
        if self.refused is None or (self.refused.version, self.refused.reason) != (
            version,
            reason,
        ):
            log.warning("refused index version %s: %s", version, reason)
        self.refused = Refusal(version, reason)
