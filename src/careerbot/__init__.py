"""careerbot: career answers in the words of real practitioners."""

from importlib.metadata import version

__version__ = version("careerbot")


class CareerbotError(Exception):
    """A problem a person can fix; its message is one line meant for them."""
