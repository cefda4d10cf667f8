"""NER data: native formats, label conversion to one IOB2 set, hub-shaped parquet, quality checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlhw.errors import DataError
from dlhw.families.ner.config import NerDataConfig
from dlhw.families.ner.data import (
    Conversion,
    normalize_tag,
    prepare_ner_data,
    read_local_dir,
    read_native,
    to_iob2,
)

FIXTURES = Path(__file__).parent / "fixtures"
MIXED_NAMES = ["B_LOC", "I_DAT", "B_PCT", "I_LOC", "I_PER", "I_MON", "B_ORG", "B_PRO", "B_PER", "O", "I_PCT",
               "I_ORG", "B_FAC", "B_DAT", "B_TIM", "I_TIM", "I_EVE", "B_MON", "I_PRO", "B_EVE", "I_FAC"]
"""The class names of AliFartout/PEYMA-ARMAN-Mixed, in its order (O is id 9)."""


def test_tag_spellings_of_every_source_map_to_the_union_types():
    assert normalize_tag("B_LOC") == ("B", "LOC")
    assert normalize_tag("I-pers") == ("I", "PER")
    assert normalize_tag("B-event") == ("B", "EVE")
    assert normalize_tag("I-fac") == ("I", "FAC")
    assert normalize_tag("B_PCT") == ("B", "PCT")
    assert normalize_tag("O") == ("O", None)
    assert normalize_tag("B-nat", {"nat": "MISC"}) == ("B", "MISC")
    assert normalize_tag("B-PER", {"PER": "O"}) == ("O", None)  # a type mapped to O is dropped
    with pytest.raises(DataError, match=r"f\.txt:3: entity type 'animal' is not one of .*data\.label_map\.animal"):
        normalize_tag("B-animal", where="f.txt:3")


def test_iob1_and_invalid_transitions_become_iob2():
    tags, changed = to_iob2([("I", "ORG"), ("I", "ORG"), ("B", "ORG"), ("O", None), ("I", "LOC"), ("I", "PER")])
    assert tags == ["B-ORG", "I-ORG", "B-ORG", "O", "B-LOC", "B-PER"]
    assert changed == 3


def test_conll_iob1_file_with_docstart():
    conversion = Conversion()
    sentences = read_native(FIXTURES / "conll2003_sample.txt", conversion=conversion)
    assert [len(s.tokens) for s in sentences] == [9, 2, 2, 5]
    assert sentences[0].tokens[:3] == ["EU", "rejects", "German"]
    assert sentences[0].tags == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    assert sentences[3].tags == ["B-ORG", "I-ORG", "B-ORG", "I-ORG", "I-ORG"]  # IOB1's B- splits two ORGs
    assert sentences[2].where.endswith("conll2003_sample.txt:18")
    assert conversion.iob1_converted == 6 and conversion.repaired == 0
    assert {s.lang for s in sentences} == {"en"}


def test_peyma_pipe_file():
    sentences = read_native(FIXTURES / "peyma_sample.txt")
    assert len(sentences) == 2
    assert sentences[0].tags == ["O", "O", "B-ORG", "I-ORG", "O", "O", "B-DAT", "I-DAT", "O", "B-LOC", "O"]
    assert sentences[1].tags[2:4] == ["B-PCT", "I-PCT"]
    assert sentences[0].lang == "fa"


def test_arman_file_with_bom_and_crlf():
    sentences = read_native(FIXTURES / "arman_sample.txt")
    assert sentences[0].tokens[0] == "علی"  # no BOM glued to the first token
    assert sentences[0].tags == ["B-PER", "I-PER", "O", "B-EVE", "I-EVE", "I-EVE", "B-FAC", "I-FAC", "O", "O"]
    assert sentences[1].tokens[1] == "ایران\u200cخودرو"  # the ZWNJ stays inside the word
    assert sentences[1].tags == ["B-ORG", "I-ORG", "B-PRO", "I-PRO", "O", "O"]


def test_a_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("Ali|B_PER\nReza\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.txt:2: expected `token\|tag` \(peyma format\), got 'Reza'"):
        read_native(path)
    path.write_bytes(b"Ali B-PER\n\xff\xfe B-LOC\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: not UTF-8"):
        read_native(path)


def write_mixed_parquet(path: Path, rows: list[tuple[list[str], list[str]]]) -> None:
    """A parquet file shaped like AliFartout/PEYMA-ARMAN-Mixed (class ids with Mixed's names)."""
    import datasets

    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=MIXED_NAMES)),
        "ner_tags_names": datasets.Sequence(datasets.Value("string")),
    })
    ds = datasets.Dataset.from_dict({"tokens": [t for t, _ in rows],
                                     "ner_tags": [[MIXED_NAMES.index(x) for x in tags] for _, tags in rows],
                                     "ner_tags_names": [tags for _, tags in rows]}, features=features)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))


def test_mixed_shaped_parquet_with_o_at_id_9(tmp_path):
    rows = [(["سفر", "به", "شیراز"], ["O", "O", "B_LOC"]),
            (["بانک", "ملی", "۲۰", "درصد"], ["B_ORG", "I_ORG", "B_PCT", "I_PCT"]),
            (["جام", "جهانی"], ["B_EVE", "I_EVE"])]
    write_mixed_parquet(tmp_path / "mixed" / "train-00000.parquet", rows)
    write_mixed_parquet(tmp_path / "mixed" / "test-00000.parquet", rows[1:2])
    splits = read_local_dir(tmp_path / "mixed", {}, {}, Conversion())
    assert [s.tags for s in splits["train"]] == [["O", "O", "B-LOC"], ["B-ORG", "I-ORG", "B-PCT", "I-PCT"],
                                                 ["B-EVE", "I-EVE"]]
    assert len(splits["test"]) == 1 and splits["val"] == []


def test_quality_finds_planted_duplicates_and_drops_test_overlap():
    config = NerDataConfig(source="local", data_dir=str(FIXTURES / "quality"))
    splits = prepare_ner_data(config, seed=0)
    q = splits.quality
    assert q["duplicates_train"] == 2 and q["duplicates_train_conflicting_tags"] == 1
    assert q["test_in_train"] == 2 and q["test_overlap_dropped"] == 2
    assert q["invalid_transitions_repaired"] == 1  # "Apex I-ORG" after O
    assert [s.tokens for s in splits.test] == [["Reza", "visited", "Shiraz"], ["Mina", "left"]]
    kept = prepare_ner_data(NerDataConfig(source="local", data_dir=str(FIXTURES / "quality"),
                                          drop_test_overlap=False), seed=0)
    assert len(kept.test) == 4 and kept.quality["test_overlap_dropped"] == 0


def test_hub_source_offline_names_ids_data_dir_and_tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = NerDataConfig(conll_dataset="eriktks/conll2003", mixed_dataset="AliFartout/PEYMA-ARMAN-Mixed")
    with pytest.raises(DataError) as err:
        prepare_ner_data(config, seed=0)
    message = str(err.value)
    assert "eriktks/conll2003 and AliFartout/PEYMA-ARMAN-Mixed" in message
    assert "--data-dir" in message and "--preset tiny" in message


def test_embedded_test_names_never_occur_in_training():
    from dlhw.families.ner.ner_tasks import embedded_splits

    splits = embedded_splits(400, 50, 200, seed=3)

    def names(sentences: list) -> set[str]:
        return {w for s in sentences for w, t in zip(s.tokens, s.tags, strict=True)
                if t[2:] in ("PER", "LOC", "MISC") or (t[2:] in ("ORG", "FAC", "EVE") and t.startswith("I-") != (s.lang == "en"))}

    train, test = names(splits["train"]), names(splits["test"])
    assert test and not train & test
    assert {s.lang for s in splits["test"]} == {"en", "fa"}
    assert all(len(s.tokens) == len(s.tags) for s in splits["train"])


def test_mixed_parquet_resaved_with_pandas_falls_back_to_ner_tags_names(tmp_path):
    """pandas drops the Hub's ClassLabel schema: ner_tags become bare ints; ner_tags_names says what they are."""
    import pandas as pd

    rows = [(["سفر", "به", "شیراز"], ["O", "O", "B_LOC"]), (["بانک", "ملی"], ["B_ORG", "I_ORG"])]
    write_mixed_parquet(tmp_path / "hub" / "train.parquet", rows)
    frame = pd.read_parquet(tmp_path / "hub" / "train.parquet")
    (tmp_path / "mixed").mkdir()
    frame.to_parquet(tmp_path / "mixed" / "train.parquet", index=False)
    frame.to_parquet(tmp_path / "mixed" / "test.parquet", index=False)
    import pyarrow.parquet as pq

    assert b"huggingface" not in (pq.read_schema(tmp_path / "mixed" / "train.parquet").metadata or {})
    splits = read_local_dir(tmp_path / "mixed", {}, {}, Conversion())
    assert [s.tags for s in splits["train"]] == [["O", "O", "B-LOC"], ["B-ORG", "I-ORG"]]


def test_integer_tags_without_any_names_name_the_column_and_the_fix(tmp_path):
    import pandas as pd

    (tmp_path / "mixed").mkdir()
    pd.DataFrame({"tokens": [["a", "b"]], "ner_tags": [[9, 0]]}).to_parquet(tmp_path / "mixed" / "train.parquet")
    with pytest.raises(DataError, match=r"train.parquet\[0\]: ner_tags holds class ids without names"):
        read_local_dir(tmp_path / "mixed", {}, {}, Conversion())
