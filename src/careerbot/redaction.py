"""Contacts in what people write (e-mail addresses, URLs, phone numbers), replaced by a
placeholder before the question log stores it (CAREERBOT_QUESTION_LOG=redacted)."""

import re

# What `redacted` replaces before anything is written. Privacy comes first: a run of
# dotted words is taken for an address when any word after its first is a common domain
# ending, even when it names a technology (socket.io, ASP.NET), and so is a lower-case one
# followed by a path (bit.ly/x, node.js/y), though not "M.Sc/PhD". Each pattern starts
# only where a run starts, never gives back what it took, and reads a scheme of at most
# 32 characters (what is an address is then decided in Python), so the time grows with the
# text's length, not its square: 1,000 characters such as "a.a.a." took 26 to 40 ms before.
# An address's dots and at sign may be full-width, and spaces may stand around the at.
EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]++ ?[@\uff20] ?[\w-]++(?:[.\uff0e\u3002][\w-]++)++")
URL = re.compile(
    r"(?<![\w+-])(?<!\w\.)(?:(?i:[a-z][a-z0-9+.-]{0,31}+://|www\.)\S++"
    r"|[\w-]++(?:\.[\w-]++)++(?:/\S*+)?+)"
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
    if not others:
        return False
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


# Runs of digits with the separators phone numbers are written with (dashes of any kind,
# spaced or not); which of them are phone numbers is for phone_like to say. Not a run right
# after a decimal point ("3.14159265"), but one after "Tel." is.
DASHES = "\u2010-\u2015\u2212\uff0d"
DIGITS = re.compile(rf"(?<![\w#])(?<!\d\.)\+?(?:\(\d+\)|\d)(?:[\s().{DASHES}-]{{0,3}}\d)+(?!\w)")
RANGE = re.compile(rf"(\d+)\s?[{DASHES}-]\s?(\d+)")
DATE = re.compile(
    r"(?:19|20)\d\d([-./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])([-./])(?:0?[1-9]|1[0-2])\2(?:19|20)\d\d"
)


def phone_like(text: str) -> bool:
    """Seven digits or more that are not a date (2023-01-15, 15.01.2023), a decimal, a range (of
    years, 2015-2023, or of amounts, 1000-10000: rising, neither with a leading zero, alike
    in length or long ones; "07700-900123" is a number to call), nor an amount grouped in
    thousands ("1,234,567", "100 000 000"; but "612 345 678" is a number to call). Longer
    runs than a phone number (two side by side, a card's) are taken too."""
    if sum(c.isdigit() for c in text) < 7 or DATE.fullmatch(text):
        return False
    if re.fullmatch(r"\d+\.\d+", text):  # a decimal, 3.14159265
        return False
    if ranged := RANGE.fullmatch(text):
        low, high = ranged[1], ranged[2]
        plain = not (low.startswith("0") or high.startswith("0"))
        alike = len(low) == len(high) or (max(len(low), len(high)) >= 5)
        if plain and int(low) <= int(high) and alike and abs(len(low) - len(high)) <= 1:
            return False
    if re.fullmatch(r"[1-9]\d{0,2}(?:,\d{3})+", text):
        return False
    return not re.fullmatch(r"[1-9]\d{0,2}(?:\s\d{3})*\s000", text)


def redact(text: str) -> str:
    """The text with e-mail addresses, URLs and phone numbers replaced by a placeholder."""
    text = EMAIL.sub("[email]", text)
    text = URL.sub(lambda m: "[url]" if url_like(m[0]) else m[0], text)
    return DIGITS.sub(lambda m: "[phone]" if phone_like(m[0]) else m[0], text)
