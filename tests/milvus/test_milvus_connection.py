"""Milvus's refusals become one-line errors (issue 14 item 4, issue 15 item 5)."""

from __future__ import annotations

import pytest
from pymilvus import MilvusException
from rinalmo_search.milvus.connection import milvus_errors

from rinalmo_search.errors import StoreError


def test_multi_line_milvus_message_becomes_one_line() -> None:
    message = "failed to create query plan:\n  cannot parse expression: length >=\n\n  ^\n"
    with pytest.raises(StoreError) as caught, milvus_errors("search 't'"):
        raise MilvusException(code=1100, message=message)
    assert str(caught.value) == (
        "Milvus refused to search 't': failed to create query plan: cannot parse expression: "
        "length >= ^ (code 1100)"
    )
