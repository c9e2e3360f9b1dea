"""careerbot: career answers in the words of real practitioners."""

import os
from importlib.metadata import version

__version__ = version("careerbot")


class CareerbotError(Exception):
    """A problem a person can fix; its message is one line meant for them."""


def alive(pid: int) -> bool:
    """Whether a process with this id is running (leftovers of dead ones can go)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
