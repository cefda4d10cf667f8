"""The embedded bilingual NER task: English and Persian templated sentences for the union types.

Each sentence is a template with entity slots (``{PER} flew from {LOC} to {LOC} on {DAT} .``)
filled from gazetteers. Every gazetteer is split in two: training and validation sentences draw
names from the first part, test sentences from the second, so test entity names never occur in
training. What a model must learn is therefore
the context and the shape of an entity, not a list of names -- the property the real task needs.

Persian text uses Persian digits and keeps the zero-width non-joiner inside words (``می‌شود``).
"""

from __future__ import annotations

import random

from dlhw.core.persian import to_persian_digits
from dlhw.families.ner.data import Sentence

_EN = {
    "first": "James Mary Robert Linda Michael Sarah David Laura Daniel Emma Thomas Olivia Peter Grace Henry "
             "Alice George Clara Victor Nina Oscar Helen Felix Irene",
    "last": "Smith Johnson Brown Taylor Miller Wilson Moore Clark Lewis Walker Young King Wright Scott Green "
            "Baker Adams Nelson Carter Mitchell Turner Parker Collins Morgan",
    "city": "London Paris Berlin Madrid Rome Vienna Dublin Lisbon Prague Warsaw Oslo Athens Cairo Tokyo Boston "
            "Denver Chicago Toronto Sydney Lagos Lima Quito Nairobi Hanoi",
    "core": "Apex Northwind Bluestone Redwood Silverline Ironbridge Greenfield Clearwater Highpoint Brightway "
            "Summit Oakridge Starfield Westgate Goldcrest Lakeside Riverton Stonehill",
    "misc": "French German Italian Spanish Dutch Swedish Polish Greek Turkish Brazilian Chinese Korean Indian "
            "Russian Mexican Canadian Irish Danish",
    "month": "January February March April May June July August September October November December",
}
_FA = {
    "first": "علی رضا مریم زهرا حسین فاطمه محمد سارا امیر نرگس مهدی لیلا کاوه شیرین بهرام پریسا سهراب "
             "نیلوفر داریوش مینا",
    "last": "احمدی رضایی کریمی حسینی موسوی جعفری صادقی رحیمی نوری کاظمی محمدی یزدانی شریفی قاسمی طاهری "
            "فرهادی",
    "city": "تهران شیراز اصفهان تبریز مشهد کرمان یزد رشت اهواز قم کاشان همدان ارومیه زنجان سمنان بوشهر "
            "اراک ساری",
    "core": "آریا پارس البرز سپهر کیان آسمان دماوند ستاره نگین زاگرس کوثر بهار رویا افق پویا سیمرغ",
    "misc": "فرانسوی آلمانی ایتالیایی اسپانیایی هلندی سوئدی یونانی ترکیه‌ای چینی کره‌ای هندی روسی",
    "month": "فروردین اردیبهشت خرداد تیر مرداد شهریور مهر آبان آذر دی بهمن اسفند",
}
TEMPLATES = {
    "en": [
        "{PER} flew from {LOC} to {LOC} on {DAT} .",
        "{PER} joined {ORG} in {LOC} last year .",
        "Shares of {ORG} rose {PCT} after the report .",
        "{ORG} paid {MON} for a new office in {LOC} .",
        "The meeting at {FAC} starts at {TIM} .",
        "{PER} bought a {PRO} for {MON} .",
        "Thousands watched the {EVE} in {LOC} on {DAT} .",
        "The {MISC} minister met {PER} at {TIM} .",
        "{PER} said the {PRO} sold well in {LOC} .",
        "Prices in {LOC} fell {PCT} in the week before {DAT} .",
        "{MISC} fans travelled to {FAC} for the {EVE} .",
        "According to {PER} , {ORG} will open at {FAC} at {TIM} .",
    ],
    "fa": [
        "{PER} روز {DAT} از {LOC} به {LOC} رفت .",
        "{PER} سال گذشته به {ORG} در {LOC} پیوست .",
        "سهام {ORG} پس از گزارش {PCT} بالا رفت .",
        "{ORG} برای دفتر تازه‌ای در {LOC} {MON} پرداخت .",
        "جلسه در {FAC} {TIM} آغاز می‌شود .",
        "{PER} یک گوشی {PRO} به قیمت {MON} خرید .",
        "هزاران نفر {EVE} را در {LOC} در روز {DAT} تماشا کردند .",
        "وزیر {MISC} {TIM} با {PER} دیدار کرد .",
        "{PER} گفت که {PRO} در {LOC} خوب فروش رفت .",
        "قیمت‌ها در {LOC} در هفته پیش از {DAT} {PCT} کاهش یافت .",
        "هواداران {MISC} برای {EVE} به {FAC} رفتند .",
        "به گفته {PER} ، {ORG} {TIM} در {FAC} افتتاح می‌شود .",
    ],
}
_AFFIX = {  # words that make a core name an ORG / FAC / EVE (English after the core, Persian before)
    "en": {"ORG": ["Corporation", "Bank", "University", "Group", "Airlines"],
           "FAC": ["Airport", "Stadium", "Bridge", "Hospital"],
           "EVE": ["Festival", "Marathon", "Cup", "Summit"]},
    "fa": {"ORG": ["شرکت", "بانک", "دانشگاه", "گروه"],
           "FAC": ["فرودگاه", "ورزشگاه", "بیمارستان", "پل"],
           "EVE": ["جشنواره", "جام", "همایش"]},
}


PSEUDO_SHARE = 0.6
_LETTERS = {"en": "abcdefghijklmnopqrstuvwxyz", "fa": "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی"}
_SYLLABLES = {
    "en": ("ka", "lo", "mi", "ren", "tas", "vo", "bri", "del", "gar", "hu", "jan", "mor", "nel", "pa", "quin",
           "sol", "tor", "ul", "wes", "zen", "fi", "cor", "dan", "el"),
    "fa": ("با", "را", "من", "سی", "ته", "دو", "کو", "نو", "لا", "شا", "گل", "هو", "زر", "پر", "فر", "بی",
           "مه", "سا", "تو", "دا"),
}


def pseudo_word(rng: random.Random, lang: str) -> str:
    """An invented name: syllables, a random run of letters, or an ordinary word used as a name
    (capitalized in English) -- never one of the test names."""
    kind = rng.random()
    if kind < 0.35:
        word = "".join(rng.choice(_SYLLABLES[lang]) for _ in range(rng.randint(2, 3)))
    elif kind < 0.7:
        word = "".join(rng.choice(_LETTERS[lang]) for _ in range(rng.randint(3, 8)))
    else:
        word = rng.choice(_COMMON[lang])
    return word.capitalize() if lang == "en" else word


def _test_names(lang: str) -> set[str]:
    words = _EN if lang == "en" else _FA
    return {w for k, v in words.items() if k != "month" for w in Gazetteer._split(v.split(), True)}


_COMMON_WORDS = {
    "en": "river stone apple winter garden silver maple harbor meadow falcon copper willow thunder amber "
          "cedar rose hill ocean valley forest bright swift north crystal",
    "fa": "سیب نان آب کتاب ماه گل درخت خانه شهر دریا کوه باران برف ابر ستاره خورشید قلم دفتر میز صندلی پنجره ماشین اسب گربه سگ پرنده ماهی چای شیر برنج انار انگور هلو لیمو کلید چراغ کفش کلاه باغ مدرسه "
          "امید آرام روشن سبز نیک مهتاب بامداد",
}


class Gazetteer:
    """Entity generators for one language and one half (``test=False``: train/val names)."""

    def __init__(self, lang: str, test: bool):
        self.lang = lang
        self.test = test
        words = _EN if lang == "en" else _FA
        self.lists = {k: self._half(v.split()) for k, v in words.items() if k != "month"}
        self.months = words["month"].split()
        self.years = range(1950, 2031) if lang == "en" else range(1330, 1410)  # numbers, not names: shared

    def _half(self, items: list[str]) -> list[str]:
        return self._split(items, self.test)

    @staticmethod
    def _split(items: list[str], test: bool) -> list[str]:
        cut = (len(items) * 2) // 3
        return items[cut:] if test else items[:cut]

    def name(self, kind: str, rng: random.Random) -> str:
        """A name from the list of ``kind``; in training, half the time an invented one, so that a
        model learns to find names by context and shape rather than by heart."""
        if not self.test and rng.random() < PSEUDO_SHARE:
            return pseudo_word(rng, self.lang)
        return rng.choice(self.lists[kind])

    def num(self, value: int) -> str:
        return to_persian_digits(value) if self.lang == "fa" else str(value)

    def entity(self, kind: str, rng: random.Random) -> list[str]:
        pick = rng.choice
        fa = self.lang == "fa"
        if kind == "PER":
            return [self.name("first", rng), self.name("last", rng)] if rng.random() < 0.8 else [self.name("first", rng)]
        if kind == "LOC":
            return [self.name("city", rng)]
        if kind in ("ORG", "FAC", "EVE"):
            affix = pick(_AFFIX[self.lang][kind])
            return [affix, self.name("core", rng)] if fa else [self.name("core", rng), affix]
        if kind == "PRO":
            return [self.name("core", rng), self.num(rng.randint(2, 99) * (10 if self.test else 1))]
        if kind == "MISC":
            return [self.name("misc", rng)]
        if kind == "DAT":
            return [self.num(rng.randint(1, 28)), pick(self.months), self.num(rng.choice(self.years))]
        if kind == "TIM":
            hour, minute = self.num(rng.randint(1, 12)), self.num(rng.choice(range(0, 60, 5))).rjust(2, self.num(0))
            return ["ساعت", f"{hour}:{minute}"] if fa else [f"{hour}:{minute}", pick(["am", "pm"])]
        if kind == "MON":
            n = self.num(rng.randint(2, 900))
            return [n, pick(["میلیون", "هزار"]), pick(["تومان", "ریال"])] if fa else [n, pick(["million", "thousand"]), pick(["dollars", "euros"])]
        if kind == "PCT":
            return [self.num(rng.randint(1, 99)), "درصد" if fa else "percent"]
        raise KeyError(kind)


def fill(template: str, gazetteer: Gazetteer, rng: random.Random) -> Sentence:
    """One sentence from a template: slot words tagged B-/I-, the rest O."""
    tokens: list[str] = []
    tags: list[str] = []
    for word in template.split():
        if word.startswith("{") and word.endswith("}"):
            kind = word[1:-1]
            words = gazetteer.entity(kind, rng)
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        else:
            tokens.append(word)
            tags.append("O")
    return Sentence(tokens, tags, gazetteer.lang, "embedded")


def make_sentences(n: int, seed: int, test: bool) -> list[Sentence]:
    """``n`` sentences, alternating English and Persian, from the train or the test half of the names."""
    rng = random.Random(seed)
    gazetteers = {lang: Gazetteer(lang, test) for lang in ("en", "fa")}
    out = []
    for i in range(n):
        lang = "en" if i % 2 == 0 else "fa"
        out.append(fill(rng.choice(TEMPLATES[lang]), gazetteers[lang], rng))
    return out


def embedded_splits(n_train: int, n_val: int, n_test: int, seed: int) -> dict[str, list[Sentence]]:
    """Train and validation from the first half of every gazetteer, test from the second."""
    return {"train": make_sentences(n_train, seed, test=False),
            "val": make_sentences(n_val, seed + 1, test=False),
            "test": make_sentences(n_test, seed + 2, test=True)}


def tokenizer_corpus(sentences: list[Sentence]) -> list[str]:
    """Plain text lines the tiny tokenizer is trained on (training sentences only)."""
    return [" ".join(s.tokens) for s in sentences]


_COMMON = {lang: [w for w in _COMMON_WORDS[lang].split() if w.capitalize() not in _test_names(lang)
                  and w not in _test_names(lang)] for lang in ("en", "fa")}
