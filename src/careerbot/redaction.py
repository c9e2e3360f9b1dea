"""Contacts in what people write (e-mail addresses, URLs, phone numbers), replaced by a
placeholder before the question log stores it (CAREERBOT_QUESTION_LOG=redacted)."""

import re

# What `redacted` replaces before anything is written. Privacy comes first: a run of
# dotted words is taken for an address when any word after its first is a common domain
# ending, even when it names a technology (socket.io, ASP.NET), and so is a lower-case one
# followed by a path (bit.ly/x, node.js/y), though not "M.Sc/PhD". Each pattern starts
# only where a run starts and never gives back what it took (what is an address is then
# decided in Python): 1,000 characters such as "a.a.a." took 26 to 40 ms otherwise.
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++[@\uff20][\w-]++(?:\.[\w-]++)++")
URL = re.compile(
    r"(?<![\w-])(?<!\w\.)(?:(?i:[a-z][a-z0-9+.-]*+://|www\.)\S++|[\w-]++(?:\.[\w-]++)++(?:/\S*+)?+)"
)
ENDING = re.compile(
    r"com|org|net|io|dev|ai|app|me|co|uk|de|fr|in|info|biz|xyz|ca|us|eu|edu|gov|nl|au", re.I
)


def url_like(text: str) -> bool:
    """Whether a run that URL found is an address (see URL)."""
    if "://" in text or text[:4].lower() == "www.":
        return True
    host, slash, _ = text.partition("/")
    first, *others = host.split(".")
    if any(ENDING.fullmatch(label) for label in others):
        return True
    last = others[-1]
    return (
        bool(slash)
        and len(first) >= 2
        and 2 <= len(last) <= 6
        and last.isascii()
        and last.isalpha()
        and last.islower()
    )


# Runs of digits with the separators phone numbers are written with (dashes of any kind);
# which of them are phone numbers is for phone_like to say.
DASHES = "\u2010-\u2013\u2212"
DIGITS = re.compile(rf"(?<![\w.#])\+?(?:\(\d+\)|\d)(?:[\s().{DASHES}-]{{0,2}}\d)+(?!\w)")
RANGE = re.compile(rf"(\d+)\s?[{DASHES}-]\s?(\d+)")


def phone_like(text: str) -> bool:
    """Seven to fifteen digits that are not a range (of years, 2015-2023, or of amounts,
    1000-10000: numbers alike in length, or long ones), nor an amount grouped in
    thousands ("1,234,567", "100 000 000"; but "612 345 678" is a number to call)."""
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15:
        return False
    if ranged := RANGE.fullmatch(text):
        low, high = len(ranged[1]), len(ranged[2])
        if low == high or (max(low, high) >= 5 and abs(low - high) <= 1):
            return False
    if re.fullmatch(r"[1-9]\d{0,2}(?:,\d{3})+", text):
        return False
    return not re.fullmatch(r"[1-9]\d{0,2}(?:\s\d{3})*\s000", text)


def redact(text: str) -> str:
    """The text with e-mail addresses, URLs and phone numbers replaced by a placeholder."""
    text = EMAIL.sub("[email]", text)
    text = URL.sub(lambda m: "[url]" if url_like(m[0]) else m[0], text)
    return DIGITS.sub(lambda m: "[phone]" if phone_like(m[0]) else m[0], text)
