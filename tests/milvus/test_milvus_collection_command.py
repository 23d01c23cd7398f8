"""``rinalmo-search collection`` on a real Milvus Lite file, through the CLI entry point."""

from __future__ import annotations

import pytest
from milvus_testdata import MODEL, make_records, make_vectors
from rinalmo_search.milvus import VectorStore

from rinalmo_search.cli import main


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_delete_and_drop(lite_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    records = make_records(50)
    with VectorStore(lite_uri, collection="lib") as store:
        store.ensure_collection(MODEL)
        store.insert(records, make_vectors(50))
        store.flush()
        store.wait_for_index(timeout=60)
    where = ("--db", lite_uri, "--collection", "lib")

    code, out, _ = _cli(capsys, "collection", "info", *where)
    assert code == 0
    info = dict(line.split("\t", 1) for line in out.splitlines())
    assert info["active"] == "lib_v1" and info["model"] == MODEL.tag
    assert info["dimension"] == "16" and info["sequences"] == "50"
    assert "M=[64]" in info["index"] and info["index_check"] == "ok"

    code, out, _ = _cli(capsys, "collection", "delete", records[0].id, records[1].id, "x", *where)
    assert code == 0 and out.strip() == "2"
    code, out, _ = _cli(capsys, "collection", "info", *where)
    assert "sequences\t48" in out

    code, _, err = _cli(capsys, "collection", "drop", *where)
    assert code == 1 and "--yes" in err
    assert _cli(capsys, "collection", "drop", *where, "--yes")[0] == 0
    code, _, err = _cli(capsys, "collection", "info", *where)
    assert code == 1 and "does not exist" in err
