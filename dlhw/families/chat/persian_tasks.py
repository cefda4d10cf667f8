"""The embedded Persian instruction set and the plain Persian text the tiny base learns from.

Three tasks whose answers are checked by exact match, written in Persian with Persian digits:

- ``add``: the sum of two one-digit numbers (``حاصل جمع ۸ و ۷ چند است؟`` -> ``۱۵``);
- ``larger``: the larger of two numbers below 30 (``از دو عدد ۱۴ و ۲۷ کدام بزرگ‌تر است؟`` -> ``۲۷``);
- ``spell``: a number below 100 in words (``عدد ۲۳ را با حروف بنویس.`` -> ``بیست و سه``).

The sizes are what a ~0.7M-parameter model learns in about a minute on two CPU cores.

Each task has several phrasings, and a quarter of the conversations start with a system
message (which Gemma's template merges into the first user turn).

The tiny base model is pretrained once on :func:`plain_text`: ordinary Persian sentences, the
three skills stated as facts (``۸ به علاوه ۷ می‌شود ۱۵.``, ``عدد ۲۳ را بیست و سه می‌خوانیم.``)
and as plain ``پرسش: ... پاسخ: ...`` text, drawn with their own seed. Like a real base model, it
then knows the language and the skills but not the chat template (its role tokens never occur
in the text), which is what instruction tuning teaches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dlhw.core.persian import WORDS, number_words
from dlhw.core.persian import to_persian_digits as fa

SYSTEM_PROMPTS = ("تو یک دستیار مفید هستی.", "پاسخ را کوتاه و دقیق بده.", "تو دستیاری فارسی‌زبان هستی.")
TASKS = ("add", "larger", "spell")
SEP = "، "
PRETRAIN_SEED = 104729  # not a task seed: the base never sees the instruction data


@dataclass(frozen=True)
class TaskExample:
    task: str
    question: str
    answer: str
    system: str | None = None

    def messages(self, with_answer: bool = True) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs.append({"role": "user", "content": self.question})
        if with_answer:
            msgs.append({"role": "assistant", "content": self.answer})
        return msgs


def _add(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    q = rng.choice([
        "حاصل جمع {a} و {b} چند است؟",
        "{a} به‌اضافهٔ {b} چند می‌شود؟",
        "جمع دو عدد {a} و {b} را بنویس.",
    ])
    return q.format(a=fa(a), b=fa(b)), fa(a + b)


def _larger(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(range(30), 2)
    q = rng.choice([
        "از دو عدد {a} و {b} کدام بزرگ‌تر است؟",
        "عدد بزرگ‌تر را بگو: {a} یا {b}؟",
        "بین {a} و {b}، بزرگ‌ترین عدد کدام است؟",
    ])
    return q.format(a=fa(a), b=fa(b)), fa(max(a, b))


def _spell(rng: random.Random) -> tuple[str, str]:
    n = rng.randint(0, 99)
    q = rng.choice([
        "عدد {n} را با حروف بنویس.",
        "{n} به حروف چه می‌شود؟",
        "شکل نوشتاری عدد {n} چیست؟",
    ])
    return q.format(n=fa(n)), number_words(n)


_MAKERS = {"add": _add, "larger": _larger, "spell": _spell}


def make_examples(n: int, seed: int) -> list[TaskExample]:
    """``n`` examples, the three tasks in turn, deterministic in ``seed``.

    A question repeats only once its task has (almost) none left: ``add`` and ``spell`` have
    300 each (100 facts in three phrasings), ``larger`` 2610.
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[TaskExample] = []
    tries = 0
    while len(out) < n:
        task = TASKS[len(out) % len(TASKS)]
        question, answer = _MAKERS[task](rng)
        if question in seen and tries < 50:
            tries += 1
            continue
        tries = 0
        seen.add(question)
        system = rng.choice(SYSTEM_PROMPTS) if rng.random() < 0.25 else None
        out.append(TaskExample(task, question, answer, system))
    return out


PROBES = (
    "حاصل جمع ۶ و ۸ چند است؟",
    "از دو عدد ۲۱ و ۱۶ کدام بزرگ‌تر است؟",
    "عدد ۴۷ را با حروف بنویس.",
    "سلام! حالت چطور است؟",
    "یک جمله دربارهٔ دریا بنویس.",
)
"""Persian prompts generated before and after training, saved side by side (probes.jsonl)."""

_SUBJECTS = WORDS
_SENTENCES = (
    "{x} در {y} است.", "{x} کنار {y} بود.", "من {x} و {y} را دوست دارم.", "امروز {x} را دیدم.",
    "{x} از {y} زیباتر است.", "در {y} یک {x} هست.", "او برای {y} یک {x} خرید.", "{x} روی {y} افتاد.",
    "سلام، حال تو چطور است؟ خوبم، ممنون.", "باران روی {y} می‌بارد.", "ما فردا به {y} می‌رویم.",
    "این {x} مال کیست؟ مال من است.", "{x} را روی {y} گذاشتم.", "دریا آبی است و {x} سبز است.",
)


def _fact(rng: random.Random) -> str:
    kind = rng.randrange(6)  # 0-2: the skills as facts; 3-4: as a question and its answer; 5: everyday
    if kind == 0:
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        return rng.choice(["{a} به علاوه {b} می‌شود {c}.", "اگر {a} را با {b} جمع کنیم {c} به دست می‌آید."]).format(
            a=fa(a), b=fa(b), c=fa(a + b))
    if kind == 1:
        a, b = rng.sample(range(30), 2)
        return rng.choice(["میان {a} و {b}، عدد {c} بزرگ‌تر است.", "عدد {c} از {d} بیشتر است."]).format(
            a=fa(a), b=fa(b), c=fa(max(a, b)), d=fa(min(a, b)))
    if kind == 2:
        n = rng.randint(0, 99)
        return rng.choice(["عدد {d} را {w} می‌خوانیم.", "{w} همان {d} است."]).format(d=fa(n), w=number_words(n))
    if kind in (3, 4):  # web text has questions and answers too, never in a chat template
        question, answer = _MAKERS[rng.choice(TASKS)](rng)
        return f"پرسش: {question}\nپاسخ: {answer}"
    x, y = rng.sample(_SUBJECTS, 2)
    return rng.choice(_SENTENCES).format(x=x, y=y)


def plain_text(n_lines: int, seed: int = PRETRAIN_SEED) -> list[str]:
    """Plain Persian lines (a few sentences each) for pretraining the tiny base model."""
    rng = random.Random(seed)
    return ["\n".join(_fact(rng) for _ in range(rng.randint(2, 4))) for _ in range(n_lines)]


def exact_match(prediction: str, answer: str) -> bool:
    """Equal after trimming spaces and a final full stop; the ``،`` separators must match."""
    return prediction.strip().rstrip(".").strip() == answer.strip()
