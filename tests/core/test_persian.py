from dlhw.core.persian import (
    ZWNJ,
    normalize_digits,
    normalize_letters,
    normalize_persian,
    normalize_zwnj,
)


def test_arabic_yeh_and_kaf_become_persian():
    assert normalize_letters("علي كتاب مى") == "علی کتاب می"


def test_zwnj_escapes_runs_and_strays():
    assert normalize_zwnj("می\\u200cشود") == f"می{ZWNJ}شود"  # a literal escape left by a JSON round trip
    assert normalize_zwnj(f"می{ZWNJ}{ZWNJ}{ZWNJ}شود") == f"می{ZWNJ}شود"
    assert normalize_zwnj(f"{ZWNJ}کتاب {ZWNJ} خوب{ZWNJ}") == "کتاب  خوب"  # spaces collapse later
    assert normalize_zwnj(f"خوب{ZWNJ}\nبد") == "خوب\nبد"


def test_digits_are_optional():
    assert normalize_digits("12 و ٣۴", "keep") == "12 و ٣۴"
    assert normalize_digits("12 و ٣۴", "persian") == "۱۲ و ۳۴"
    assert normalize_digits("12 و ٣۴", "latin") == "12 و 34"


def test_normalize_is_idempotent_and_keeps_newlines():
    text = f"  مي\\u200cشود   كتاب{ZWNJ}{ZWNJ}ها\n\n٣ "
    once = normalize_persian(text, "persian")
    assert once == f"می{ZWNJ}شود کتاب{ZWNJ}ها\n\n۳"
    assert normalize_persian(once, "persian") == once
