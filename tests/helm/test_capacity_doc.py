"""helm/CAPACITY.md: placeholders, not invented measurements."""

from __future__ import annotations

import re

from .chart import HELM_DIR, REPO_ROOT

CAPACITY = HELM_DIR / "CAPACITY.md"


def test_every_placeholder_names_the_load_test_result_it_comes_from() -> None:
    text = CAPACITY.read_text()
    placeholders = re.findall(r"\[TBD-(P\d+): ([^\]]+)\]", text)
    assert placeholders
    for ident, body in placeholders:
        assert "load_tests/results/" in body, f"{ident} does not say which load_tests result it comes from: {body}"
    defined = set(re.findall(r"^\| (P\d+) \|", text, flags=re.MULTILINE))
    assert {ident for ident, _ in placeholders} <= defined, "placeholder without a row in the inputs table"


def test_cited_results_exist() -> None:
    text = CAPACITY.read_text()
    outside_placeholders = re.sub(r"\[TBD-[^\]]*\]", "", text)
    for path in set(re.findall(r"load_tests/results/[\w./-]+\.md", outside_placeholders)):
        assert (REPO_ROOT / path).exists(), f"{path} is cited as a committed result but does not exist"
