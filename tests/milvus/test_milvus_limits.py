"""Records over the store's limits stop ``index`` before its first write (issue 15, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rinalmo_search.milvus import VectorStore

from rinalmo_search.cli import main


def fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in records))
    return path


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (("long", "ACGU" * 17_500), "record 'long': sequence is 70,000 nt long, the store "
         "accepts at most 65,535; nothing was written"),
        (("x" * 600, "ACGUACGUAC"), "id is 600 bytes long, the store accepts at most 512"),
    ],
)
def test_index_refuses_record_over_limit_before_writing(
    tmp_path: Path, bad: tuple[str, str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "lib.db"
    first = fasta(tmp_path / "first.fa", [("a", "ACGUACGUACGUAGGCUAGC"), ("b", "GGGCCCAUAUAUCG")])
    assert main(["index", str(first), "--db", str(db), "-q"]) == 0
    good = [(f"n{i}", "ACGUAGCUAGCUAGCAUCG"[i:] + "AAA") for i in range(4)]
    more = fasta(tmp_path / "more.fa", [*good[:3], bad, good[3]])
    # batches of one: before the fix, the three records ahead of the bad one were committed
    assert main(["index", str(more), "--db", str(db), "--batch-size", "1", "-q"]) == 1
    err = capsys.readouterr().err
    assert f"rinalmo-search: error: {more}:7: " in err and expected in err, err
    with VectorStore(str(db)) as store:
        assert store.count() == 2
        assert not store.get([name for name, _ in good])


def test_index_refuses_before_creating_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.db"
    path = fasta(tmp_path / "in.fa", [("ok", "ACGUACGU"), ("long", "A" * 65_536)])
    assert main(["index", str(path), "--db", str(db), "-q"]) == 1
    assert f"{path}:3: record 'long': sequence is 65,536 nt" in capsys.readouterr().err
    assert not db.exists()


def test_index_help_states_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a sequence of at most 65,535 nt, an id of at most 512 bytes" in help_text
