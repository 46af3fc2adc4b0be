"""The committed AsyncAPI documents are what the code generates (run `make docs`)."""

from pathlib import Path

import pytest

from services.common.asyncapi import render
from services.registry import SERVICES

DOCS = Path(__file__).resolve().parent.parent / "docs" / "asyncapi"


@pytest.mark.parametrize("service", list(SERVICES))
def test_committed_asyncapi_document_matches_code(service: str) -> None:
    committed = DOCS / f"{service}.json"
    assert committed.exists(), f"{committed} missing: run `make docs`"
    assert committed.read_text() == render(service), f"{committed} drifted from the code: run `make docs`"
