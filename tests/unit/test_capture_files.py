"""Tests for open_source and expand_paths (teiten.capture.files)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.capture import expand_paths, open_source
from teiten.capture.files import EmptySource
from teiten.capture.pcap import PcapSource
from teiten.capture.pcapng import PcapngSource
from teiten.capture.source import Source
from teiten.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data"
PCAP = (
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    + struct.pack("<IIII", 1, 2, 3, 3)
    + b"abc"
)

# records per data file, as described in tests/data/README.md
DATA_RECORDS = {
    "eth_ipv4.pcap": 13,
    "eth_ipv4.pcap.gz": 13,
    "eth_ipv4.pcap.xz": 13,
    "eth_ipv4.pcap.zst": 13,
    "eth_ipv6.pcap": 7,
    "ipv4_228.pcap": 3,
    "ipv6_229.pcap": 3,
    "loop.pcap": 2,
    "mixed.pcapng": 5,
    "null.pcap": 2,
    "raw101.pcap": 4,
    "raw12.pcap": 4,
    "sll.pcap": 2,
    "sll2.pcap": 2,
    "snaplen64.pcap": 3,
}


def touch(path: Path, data: bytes = PCAP) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def count(src: Source) -> int:
    return sum(len(c) for c in src.chunks())


def test_sniffs_by_content_not_name(tmp_path: Path) -> None:
    src = open_source(touch(tmp_path / "capture.txt"))
    assert isinstance(src, PcapSource) and count(src) == 1
    assert src.name == str(tmp_path / "capture.txt")


def test_name_is_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path / "a.pcap")
    monkeypatch.chdir(tmp_path)
    assert open_source("a.pcap").name == "a.pcap"


@pytest.mark.parametrize("name", sorted(DATA_RECORDS))
def test_data_files(name: str) -> None:
    src = open_source(DATA / name, chunk_bytes=256)
    assert isinstance(src, PcapngSource if name.endswith("pcapng") else PcapSource)
    assert count(src) == DATA_RECORDS[name] == src.stats.records
    assert src.stats.skipped == ({"other_blocks": 2} if name == "mixed.pcapng" else {})


def test_unknown_format_is_one_line_input_error(tmp_path: Path) -> None:
    path = touch(tmp_path / "notes.pcap", b"hello, this is not a capture\n")
    with pytest.raises(InputError) as err:
        open_source(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_and_directory_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_source(tmp_path / "nope.pcap")
    with pytest.raises(InputError, match="is a directory"):
        open_source(tmp_path)


def test_empty_file_has_no_records(tmp_path: Path) -> None:
    src = open_source(touch(tmp_path / "empty.pcap", b""))
    assert isinstance(src, EmptySource) and count(src) == 0 and src.stats.records == 0


def test_chunk_bytes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_bytes"):
        open_source(touch(tmp_path / "a.pcap"), chunk_bytes=0)


def test_expand_file_and_directory(tmp_path: Path) -> None:
    f = touch(tmp_path / "one.pcap")
    d = tmp_path / "d"
    for rel in ["b/2.pcap", "a.pcap", "b/1.pcapng", "c/deep/x.gz", ".hidden.pcap", ".git/obj"]:
        touch(d / rel)
    (d / "emptydir").mkdir()
    got = expand_paths([f, str(d)])
    assert got == [f] + [d / r for r in ["a.pcap", "b/1.pcapng", "b/2.pcap", "c/deep/x.gz"]]


def test_expand_explicit_hidden_file_and_dedupe(tmp_path: Path) -> None:
    hidden = touch(tmp_path / ".h.pcap")
    other = touch(tmp_path / "o.pcap")
    assert expand_paths([hidden, other, tmp_path, other]) == [hidden, other]


def test_expand_globs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for rel in ["x/b.pcap", "x/a.pcap", "x/c.txt", "x/sub/d.pcap", "y/e.pcap"]:
        touch(tmp_path / rel)
    monkeypatch.chdir(tmp_path)
    assert expand_paths(["x/*.pcap"]) == [Path("x/a.pcap"), Path("x/b.pcap")]
    assert expand_paths(["**/*.pcap"]) == [
        Path(p) for p in ["x/a.pcap", "x/b.pcap", "x/sub/d.pcap", "y/e.pcap"]
    ]
    assert expand_paths([str(tmp_path / "?")]) == [
        tmp_path / p for p in ["x/a.pcap", "x/b.pcap", "x/c.txt", "x/sub/d.pcap", "y/e.pcap"]
    ]


def test_expand_literal_name_with_glob_characters(tmp_path: Path) -> None:
    odd = touch(tmp_path / "cap[1].pcap")
    assert expand_paths([odd]) == [odd]


def test_expand_missing_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        expand_paths([tmp_path / "missing.pcap"])
    with pytest.raises(InputError, match="no files match"):
        expand_paths([str(tmp_path / "*.nothing")])


def test_expand_then_open_lets_caller_skip_non_captures() -> None:
    opened: list[str] = []
    refused: list[str] = []
    for p in expand_paths([DATA]):
        try:
            opened.append(open_source(p).name)
        except InputError:
            refused.append(p.name)
    assert "make_captures.py" in refused and "README.md" in refused
    assert {str(DATA / n) for n in DATA_RECORDS} <= set(opened)


_MAGICS = [
    b"",
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
    b"\x1f\x8b",
    b"\x28\xb5\x2f\xfd",
    b"\xfd7zXZ\x00",
]


@settings(max_examples=150, deadline=None)
@given(magic=st.sampled_from(_MAGICS), tail=st.binary(max_size=300), chunk=st.integers(1, 300))
def test_any_bytes_give_records_or_input_error(
    tmp_path_factory: pytest.TempPathFactory, magic: bytes, tail: bytes, chunk: int
) -> None:
    path = touch(tmp_path_factory.getbasetemp() / "any.bin", magic + tail)
    try:
        src = open_source(path, chunk_bytes=chunk)
    except InputError as err:
        assert "\n" not in str(err)
        return
    assert count(src) == src.stats.records
