"""Every tricky input of the fuzz corpus: a clean result or a one-line TeitenError, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from make_corpus import KINDS, write_corpus
from targets import TARGETS, capture, cowrie, outcome

from teiten.capture.cowrie import read_cowrie


def _cases() -> list[tuple[str, str]]:
    return [(kind, name) for kind, make in KINDS.items() for name in make()]


@pytest.mark.parametrize(("kind", "name"), _cases())
def test_corpus_file(corpus: dict[str, list[Path]], kind: str, name: str) -> None:
    (path,) = [p for p in corpus[kind] if p.name == name]
    result = outcome(TARGETS[kind], path)
    assert result == "ok" or result.startswith(f"refused: {path}"), result


def test_the_corpus_is_made_by_the_script(tmp_path: Path) -> None:
    written = write_corpus(tmp_path)
    assert set(written) == set(TARGETS)
    assert all(
        p.stat().st_size or p.name.startswith("empty") for ps in written.values() for p in ps
    )


def test_refusals_say_why(corpus: dict[str, list[Path]]) -> None:
    by_name = {p.name: p for ps in corpus.values() for p in ps}
    assert "nested too deeply" in outcome(TARGETS["csaf"], by_name["deep-json.json"])
    assert "not UTF-8" in outcome(TARGETS["csaf"], by_name["not-utf8.json"])
    for name in ("empty.mmdb", "cut-half.mmdb", "tree-zeroed.mmdb"):
        assert outcome(TARGETS["mmdb"], by_name[name]).startswith("refused:"), name


def test_hostile_captures_keep_their_records(corpus: dict[str, list[Path]]) -> None:
    by_name = {p.name: p for ps in corpus.values() for p in ps}
    # Each packet family is one record per frame, whatever the frame holds.
    assert capture(by_name["vlan-nested-200.pcap"]) == 1
    assert capture(by_name["fragments-overlapping.pcap"]) == 4
    assert capture(by_name["ipv6-extension-chain.pcap"]) == 4
    assert capture(by_name["ethertype-unknown-and-short.pcap"]) == 3


def test_hostile_cowrie_lines_are_counted_not_fatal(corpus: dict[str, list[Path]]) -> None:
    by_name = {p.name: p for ps in corpus.values() for p in ps}
    got = read_cowrie(by_name["broken-lines.json"])
    assert got.stats.skipped["bad_json"] >= 3 and cowrie(by_name["broken-lines.json"]) >= 1
    deep = read_cowrie(by_name["deep-nesting.json"])
    assert deep.stats.skipped["bad_json"] == 1 and len(deep.sessions) == 2  # id reused
    assert read_cowrie(by_name["one-huge-line.json"]).stats.skipped["line_too_long"] == 1


BAD_MMDB = Path(__file__).resolve().parents[3] / "shared/corpus/country/maxmind-test-data/bad-data"


@pytest.mark.skipif(not BAD_MMDB.is_dir(), reason="the shared corpus is not here")
def test_fuzzer_found_mmdb_files() -> None:
    """MaxMind's own fuzzer-found files: each opens cleanly or is refused in one line."""
    files = sorted(BAD_MMDB.rglob("*.mmdb"))
    assert len(files) >= 20
    results = {p.name: outcome(TARGETS["mmdb"], p) for p in files}
    assert all(r == "ok" or r.startswith("refused: ") for r in results.values())
    assert "search tree is corrupt" in results["libmaxminddb-separator-record-max-left.mmdb"]
