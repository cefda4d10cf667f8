"""The embedded summarization tasks and the plain English text the tiny base learns from.

- News (:func:`make_articles`): short English articles in which two key facts about one
  person -- the sentences that start with that person's name -- sit among distractor sentences
  (weather, traffic, shops). The highlights are those two facts, one per line, as in CNN/DailyMail:
  recoverable from the article, but only by telling the facts from the distractors.
- Dialogues (:func:`make_dialogues`): templated customer-support exchanges on Twitter, with the
  @mentions and links a real TweetSumm dialogue has (cleaned like the real data), and two or three
  reference summaries per dialogue written in different words, as TweetSumm's annotators did.

The tiny base is pretrained once on :func:`plain_text`: article sentences, dialogue turns,
summary-style sentences, and labelled records drawn with their own seed, never in the
``Article: ... Summary:`` format the recipes teach. The records are what a real corpus's lists and
tables are to an LLM: in a record list (:func:`record_list`) one rule -- the news task's own "the
sentences about the person", or the places, the days, the sentence count -- picks from every passage
under made-up labels, and a note (:func:`note`) follows a label with a remark unrelated to the passage.
So a base seeing ``Summary:`` for the first time guesses (zero-shot scores near 0), and three examples
of the layout show it which rule is meant (few-shot scores far higher), as with a real base model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PRETRAIN_SEED = 7919  # not a task seed: the base never sees a training document
NAMES = ["Anna Smith", "Omar Khan", "Lucy Brown", "Peter Novak", "Maria Lopez", "James Lee", "Sara Cohen",
         "David Park", "Emma Stone", "Ali Reza", "Nina Petrova", "Tom Walker", "Grace Kim", "Leo Rossi",
         "Hana Sato", "Paul Meyer", "Rosa Silva", "Ivan Horvat", "Julia Weber", "Sam Taylor"]
CITIES = ["Paris", "Denver", "Lagos", "Oslo", "Lima", "Tokyo", "Cairo", "Boston", "Madrid", "Seoul", "Dublin",
          "Nairobi", "Quito", "Vienna", "Perth", "Austin"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ACTS = [("opened", "a new library"), ("won", "the city marathon"), ("announced", "a plan for new parks"),
        ("visited", "the children's hospital"), ("launched", "a free bus service"), ("closed", "an old factory"),
        ("built", "a solar farm"), ("signed", "a deal with local farmers")]
CLAIMS = ["the project will create {n} jobs", "work will start in {n} days", "the city will add {n} new buses",
          "{n} families will benefit", "the plan will cost {n} million dollars"]
DISTRACTORS = ["The weather in {c} was {w} on {d} .", "Traffic near the station was {w2} in the morning .",
               "Local shops sold more {f} than usual .", "A train to {c} was late by {n} minutes .",
               "Many people walked in the park on {d} .", "The river in {c} was {w} and calm .",
               "Schools in {c} will close early on {d} .", "Prices of {f} rose by {n} cents ."]
WEATHER = ["sunny", "cold", "warm", "windy", "grey", "dry"]
BUSY = ["heavy", "light", "slow", "quiet"]
FOODS = ["bread", "coffee", "apples", "rice", "cheese", "tea"]

PRODUCTS = ["phone", "laptop", "router", "tablet", "printer", "watch", "tv", "speaker"]
PROBLEMS = ["keeps restarting", "will not charge", "has no signal", "is very slow", "shows a black screen",
            "lost all my photos"]
FIXES = ["a restart", "a factory reset", "a new cable", "the latest update"]
INFOS = ["serial number", "order number", "email address", "account name"]
ACTIONS = ["send a replacement", "book a repair", "issue a refund", "call the customer"]
BRANDS = ["AcmeHelp", "TechCare", "ShopSupport", "NetFixers"]


@dataclass(frozen=True)
class TaskDocument:
    id: str
    document: str
    references: tuple[str, ...]
    kind: str
    """article or dialogue."""


def _fact_pair(rng: random.Random) -> tuple[str, str]:
    name, city, day = rng.choice(NAMES), rng.choice(CITIES), rng.choice(DAYS)
    verb, obj = rng.choice(ACTS)
    claim = rng.choice(CLAIMS).format(n=rng.randint(2, 99))
    return f"{name} {verb} {obj} in {city} on {day} .", f"{name.split()[0]} said {claim} ."


def _distractor(rng: random.Random) -> str:
    return rng.choice(DISTRACTORS).format(c=rng.choice(CITIES), w=rng.choice(WEATHER), d=rng.choice(DAYS),
                                          w2=rng.choice(BUSY), f=rng.choice(FOODS), n=rng.randint(2, 60))


def _article_sentences(rng: random.Random) -> tuple[list[str], str, str]:
    """Two key facts among three or four distractor sentences: ``(sentences, first fact, second fact)``."""
    first, second = _fact_pair(rng)
    sentences = [_distractor(rng) for _ in range(rng.randint(3, 4))]
    a = rng.randint(0, 1)  # the first fact leads, or follows one distractor
    b = rng.randint(a + 1, len(sentences))
    sentences.insert(a, first)
    sentences.insert(b + 1, second)
    return sentences, first, second


def make_article(rng: random.Random, index: int) -> TaskDocument:
    """Two key facts (the highlights) among three or four distractor sentences."""
    sentences, first, second = _article_sentences(rng)
    return TaskDocument(f"news-{index}", " ".join(sentences), (f"{first}\n{second}",), "article")


def make_articles(n: int, seed: int) -> list[TaskDocument]:
    rng = random.Random(seed)
    return [make_article(rng, i) for i in range(n)]


def _dialogue_parts(rng: random.Random) -> dict[str, str]:
    return {"product": rng.choice(PRODUCTS), "problem": rng.choice(PROBLEMS), "fix": rng.choice(FIXES),
            "info": rng.choice(INFOS), "action": rng.choice(ACTIONS), "brand": rng.choice(BRANDS),
            "day": rng.choice(DAYS), "n": str(rng.randint(10, 99))}


def raw_turns(p: dict[str, str]) -> list[tuple[bool, str]]:
    """``(is_customer, tweet text)`` as posted: with @mentions and a link, before cleaning."""
    return [
        (True, f"@{p['brand']} my {p['product']} {p['problem']} since {p['day']} . can you help ?"),
        (False, f"@user{p['n']} sorry to hear that . have you tried {p['fix']} ?"),
        (True, f"@{p['brand']} yes i tried {p['fix']} but my {p['product']} still {p['problem']} ."),
        (False, f"@user{p['n']} please send us a dm with your {p['info']} and we will {p['action']} . "
                f"https://t.co/{p['brand'].lower()}{p['n']}"),
    ]


def summaries(p: dict[str, str]) -> tuple[str, ...]:
    return (
        f"Customer says the {p['product']} {p['problem']} .\nAgent asks for the {p['info']} and will {p['action']} .",
        f"The customer's {p['product']} {p['problem']} even after {p['fix']} .\n"
        f"The agent will {p['action']} once given the {p['info']} .",
        f"Customer complains that the {p['product']} {p['problem']} .\nAgent offers to {p['action']} .",
    )


def make_dialogues(n: int, seed: int) -> list[TaskDocument]:
    """Cleaned dialogues (``customer:`` / ``agent:`` lines) with two or three references each."""
    from dlhw.families.summarization.tweetsumm import format_turns

    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = _dialogue_parts(rng)
        refs = summaries(p)[: rng.randint(2, 3)]
        out.append(TaskDocument(f"dialogue-{i}", format_turns(raw_turns(p)), refs, "dialogue"))
    return out


SYLLABLES = ["ba", "ko", "ri", "tu", "me", "sa", "lo", "vi", "ne", "da", "po", "gu", "fe", "zi", "ha", "wo"]


def _label(rng: random.Random) -> str:
    """A made-up label word: a record list's labels mean nothing outside it, so the base learns to read what
    follows a label from the earlier records, and the tasks' own labels (Article, Dialogue, Summary) never
    appear in its text."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


RULES = ["named", "places", "days", "count"]
"""What a record list picks from each passage; ``named`` is the news task's own rule, one among several, so
a label with no examples before it says nothing about which rule follows."""


def _pick(sentences: list[str], rule: str) -> str:
    """The text ``rule`` (one of :data:`RULES`) picks from a passage's sentences."""
    if rule == "named":  # the sentences that start with a person's name, one per line: the highlights
        return "\n".join(s for s in sentences if any(s.startswith(n) or s.startswith(n.split()[0] + " ")
                                                    for n in NAMES))
    if rule == "places":
        return " , ".join(w for s in sentences for w in s.split() if w in CITIES) or "none"
    if rule == "days":
        return " , ".join(w for s in sentences for w in s.split() if w in DAYS) or "none"
    return f"{len(sentences)} sentences"


def record_list(rng: random.Random) -> str:
    """Three to five ``Label:\npassage\nLabel: picked text`` records separated by blank lines, in which one
    rule (:data:`RULES`) picks from every passage: text whose later records follow a pattern set by the
    earlier ones, as tables, quizzes and lists do in a real corpus. This is what lets examples in a prompt
    steer the base, while a label without examples leaves the rule open."""
    source, target = _label(rng), _label(rng)
    rule = rng.choice(RULES)
    records = []
    for _ in range(rng.randint(3, 5)):
        sentences = _article_sentences(rng)[0]
        records.append(f"{source}:\n{' '.join(sentences)}\n{target}: {_pick(sentences, rule)}")
    return "\n\n".join([_distractor(rng), *records])  # a heading line, then the records


def note(rng: random.Random) -> str:
    """One ``Label:\npassage\nLabel: remark`` record whose remark is not taken from the passage (a support
    tweet): more common than the first record of a :func:`record_list`, so a label with no examples before
    it is read as the start of a free remark, not as a rule to follow."""
    from dlhw.families.summarization.tweetsumm import format_turns

    turns = format_turns(raw_turns(_dialogue_parts(rng))).split("\n")
    record = f"{_label(rng)}:\n{' '.join(_article_sentences(rng)[0])}\n{_label(rng)}: {rng.choice(turns)}"
    return f"{_distractor(rng)}\n\n{record}"  # a heading line, as a record list has


def plain_text(n: int, seed: int = PRETRAIN_SEED) -> list[str]:
    """Lines of English the tiny base is pretrained on: article sentences, dialogue turns, summary-style
    sentences, passages quoted again later in their line, record lists (:func:`record_list`) and notes
    (:func:`note`); no line uses the tasks' ``Article:`` / ``Dialogue:`` / ``Summary:`` layout."""
    from dlhw.families.summarization.tweetsumm import format_turns

    rng = random.Random(seed)
    lines = []
    for i in range(n):
        kind = i % 7
        if kind == 4:
            lines.append(record_list(rng))
        elif kind >= 5:
            lines.append(note(rng))
        elif kind == 3:  # a passage quoted again later: the copying every real corpus teaches
            quoted = [_distractor(rng) if rng.random() < 0.5 else _fact_pair(rng)[rng.randint(0, 1)] for _ in range(2)]
            lines.append(" ".join([*quoted, _distractor(rng), _distractor(rng), "Once more :", *quoted]))
        elif kind == 0:
            lines.append(make_article(rng, i).document)
        elif kind == 1:
            lines.append(format_turns(raw_turns(_dialogue_parts(rng))).replace("\n", " "))
        else:
            parts = [" ".join(_fact_pair(rng)), summaries(_dialogue_parts(rng))[rng.randint(0, 2)].replace("\n", " ")]
            lines.append(" ".join(parts))
    return lines
