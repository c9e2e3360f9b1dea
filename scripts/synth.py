"""Write a synthetic corpus of interview transcripts, for measuring careerbot at scale.

    python scripts/synth.py OUT_DIR [--answers 100000] [--seed 1]

Each transcript is an interview in the corpus format (corpus/README.md) with two
speakers and a speakers file; every answer is two short sentences, so it makes
one passage: --answers 100000 gives a corpus of 100,000 passages. Names, organizations,
questions and answers are drawn at random (seeded) from small vocabularies; the text
means nothing, but it has the shape and the word statistics of real answers.
"""

import argparse
import random
from pathlib import Path

FIRST = ["Alex", "Sam", "Priya", "Wei", "Maria", "Tomás", "Aisha", "Jonas", "Mei", "Omar",
         "Lena", "Ravi", "Sofia", "Kenji", "Nadia", "Luca"]  # fmt: skip
LAST = ["Moreno", "Chen", "Okafor", "Novak", "Sato", "Haddad", "Larsen", "Gupta", "Rossi",
        "Kim", "Silva", "Berg", "Ito", "Mensah"]  # fmt: skip
ORGS = ["Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Acme", "Hooli",
        "Vandelay", "Soylent"]  # fmt: skip
ROLES = ["Data scientist", "ML engineer", "Research scientist", "Product manager",
         "Engineering manager", "Data engineer", "Designer", "Analyst"]  # fmt: skip
FIELDS = ["machine learning", "data engineering", "product management", "analytics",
          "computer vision", "natural language processing", "recommendation systems",
          "MLOps", "design", "research", "backend engineering", "statistics"]  # fmt: skip
ASKED = ["How did you get into {f}?", "What does a normal week in {f} look like?",
         "What skills matter most in {f}?", "How do you hire for {f}?",
         "What would you tell someone starting out in {f}?",
         "What changed in {f} over the last few years?",
         "How do you measure success in {f}?", "What is hard about {f}?"]  # fmt: skip
OPENINGS = ["I think", "In my experience", "Honestly", "For me", "What I tell people is that",
            "At {o} we found that", "When I started,"]  # fmt: skip
SUBJECTS = ["the hardest part", "most of the work", "a good interview", "the first year",
            "a strong portfolio", "the team around you", "clean data", "a clear metric",
            "mentorship", "shipping small projects", "reading papers", "on-call duty"]  # fmt: skip
VERBS = ["depends on", "comes down to", "starts with", "is mostly about", "rewards",
         "suffers without", "grows out of", "teaches you"]  # fmt: skip
OBJECTS = ["asking better questions", "talking to users", "knowing the basics of {f}",
           "writing tests", "good judgement", "patience with messy data", "clear writing",
           "a habit of measuring things", "learning from failed launches",
           "pairing with senior people", "owning a project end to end"]  # fmt: skip


def sentence(rng: random.Random, field: str, org: str) -> str:
    opening = rng.choice(OPENINGS).format(o=org)
    obj = rng.choice(OBJECTS).format(f=field)
    return f"{opening} {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {obj}."


def interview(rng: random.Random, number: int, answers: int) -> tuple[str, str]:
    """One transcript with about this many answers, and its speakers file."""
    names = rng.sample([f"{first} {last}" for first in FIRST for last in LAST], 2)
    people = [
        (f"{name.split()[0]}{label}{number}", name, rng.choice(ORGS))
        for label, name in zip("AB", names, strict=True)
    ]
    field = rng.choice(FIELDS)
    lines = [f"Interview {number}: two practitioners on {field}.", ""]
    for n in range((answers + 1) // 2):
        question = rng.choice(ASKED).format(f=field)
        lines += [question.replace("?", f" (part {n + 1})?"), ""]
        for label, _, org in people[: answers - 2 * n]:
            said = " ".join(sentence(rng, field, org) for _ in range(2))
            lines += [f"{label}: {said}", ""]
    lines += ["---", "", "Synthetic transcript for scale tests."]
    speakers = "".join(
        f'[speakers."{label}"]\nname = "{name}"\nrole = "{rng.choice(ROLES)}"\n'
        f'organization = "{org}"\n\n'
        for label, name, org in people
    )
    return "\n".join(lines) + "\n", speakers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--per-interview", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    left, number = args.answers, 0
    while left > 0:
        count = min(left, args.per_interview)
        text, speakers = interview(rng, number, count)
        (args.out / f"synthetic-{number:05d}.txt").write_text(text, encoding="utf-8")
        (args.out / f"synthetic-{number:05d}.speakers.toml").write_text(speakers, "utf-8")
        left, number = left - count, number + 1
    print(f"{args.answers} answers in {number} transcripts -> {args.out}")


if __name__ == "__main__":
    main()
