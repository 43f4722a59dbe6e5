"""CSAF 2.0 import: hand-written samples give the same verdicts; bad files fail clearly."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from teiten.advisories import check, import_csaf
from teiten.advisories import csaf as csaf_module
from teiten.advisories.check import bundled_advisories
from teiten.advisories.model import load_advisory_dir
from teiten.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data" / "csaf"
LOGITEC = DATA / "logitec-sample.json"
EXAMPLE = DATA / "example-relationships.json"
VERSIONS = [
    "1.00",
    "1.12N3L",
    "1.13N3L",
    "1.14N3L",
    "1.25",
    "1.26",
    "1.27",
    "2.13",
    "2.14",
    "Ver2.15",
    "2.27",
    "2.32",
    "2.33",
    "2.34",
    "2.9",
    "3.08",
    "3.09",
    "3.10",
    "x",
    "2.33-b1",
]


def test_logitec_sample_answers_like_the_bundled_toml() -> None:
    result = import_csaf(LOGITEC)
    assert result.warnings == ()
    imported = result.advisory
    assert imported.id == "teiten-sample-logitec-2017-12-19" and imported.vendor == "Logitec"
    assert imported.cves == ("CVE-2014-8361",) and imported.jvn_ids == ("JVNDB-2014-008039",)
    assert imported.published == date(2017, 12, 19) and len(imported.products) == 11
    bundled = [a for a in bundled_advisories() if a.id == "logitec-2017-12-19"]
    for product in bundled[0].products:
        for version in VERSIONS:
            want = check(product.model, version, advisories=bundled)
            got = check(product.model, version, advisories=[imported])
            assert (got.status, got.fixed_version, got.fixed_date, got.cves, got.jvn_ids) == (
                want.status,
                want.fixed_version,
                want.fixed_date,
                want.cves,
                want.jvn_ids,
            ), (product.model, version)


def test_saved_file_reads_back(tmp_path: Path) -> None:
    result = import_csaf(LOGITEC, into=tmp_path / "adv")
    assert result.path == tmp_path / "adv" / "teiten-sample-logitec-2017-12-19.toml"
    assert load_advisory_dir(tmp_path / "adv") == [result.advisory]
    v = check("LAN-W300N/R", "Ver2.27", extra_dirs=[tmp_path / "adv"])
    assert v.status == "affected" and {v.advisory_id, *(a.advisory_id for a in v.also)} == {
        "logitec-2017-12-19",
        "teiten-sample-logitec-2017-12-19",
    }


def test_relationships_ranges_and_warnings() -> None:
    result = import_csaf(EXAMPLE)
    a = result.advisory
    assert a.id == "EXAMPLE-SA-2099-001" and a.title.ja.startswith("Example Networks")
    assert a.title.en == "" and a.actions.ja and a.actions.en == ()
    assert a.cves == ("CVE-2099-0001", "CVE-2099-0002") and a.jvn_ids == ("JVNVU#99999999",)
    assert [r.url for r in a.references] == [
        "https://example.org/advisories/EXAMPLE-SA-2099-001",
        "https://example.org/firmware/ex-200",
    ]
    assert {p.model for p in a.products} == {"EX-100", "EX-200", "EX-300"}
    status = {
        (m, v): check(m, v, advisories=[a]).status
        for m, v in [
            ("EX-100", "1.10"),
            ("EX-100", "1.05"),
            ("EX-100", "Ver1.20"),
            ("EX-200", "1.20"),
            ("EX-200", "1.50"),
            ("EX-200", "0.90"),
            ("EX-200", "0.95"),
            ("EX-300", "9.9"),
            ("EX-400", "1.0"),
        ]
    }
    assert status == {
        ("EX-100", "1.10"): "affected",
        ("EX-100", "1.05"): "cannot_compare",  # only 1.10 is said to be affected
        ("EX-100", "Ver1.20"): "fixed",
        ("EX-200", "1.20"): "affected",
        ("EX-200", "1.50"): "fixed",
        ("EX-200", "0.90"): "not_affected",
        ("EX-200", "0.95"): "cannot_compare",
        ("EX-300", "9.9"): "not_affected",
        ("EX-400", "1.0"): "unknown_model",  # its range text is not machine-readable
    }
    ex100 = check("EX-100", "1.10", advisories=[a])
    assert ex100.fixed_date == date(2099, 1, 10)
    assert check("EX-200", "1.20", advisories=[a]).fixed_date == date(2099, 1, 31)
    joined = "\n".join(result.warnings)
    assert "EX999-UNDEFINED" in joined and "not in the product tree" in joined
    assert "not a simple relationship" in joined and "'EX-400' skipped" in joined


def _sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(LOGITEC.read_text())
    return data


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


_DELETE = object()
_BR = ["product_tree", "branches", 0, "branches", 0]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (_set(["document", "csaf_version"], "1.2"), "$.document.csaf_version:"),
        (_set(["document"], _DELETE), "$.document: missing"),
        (_set(["document", "tracking", "id"], _DELETE), "$.document.tracking.id: missing"),
        (_set(["document", "title"], 7), "$.document.title: expected a string"),
        (
            _set(["document", "tracking", "initial_release_date"], "soon"),
            "$.document.tracking.initial_release_date:",
        ),
        (_set(["product_tree", "branches"], {}), "$.product_tree.branches: expected an array"),
        (_set(["product_tree"], _DELETE), "$.product_tree: missing"),
        (_set([*_BR, "name"], _DELETE), "$.product_tree.branches[0].branches[0].name: missing"),
        (
            _set([*_BR, "branches", 1, "product"], []),
            "$.product_tree.branches[0].branches[0].branches[1].product: expected an object",
        ),
        (
            _set([*_BR, "branches", 1, "product", "product_id"], "CSAFPID-0001-BEFORE"),
            "$.product_tree.branches[0].branches[0].branches[1].product.product_id: product id",
        ),
        (
            _set(["vulnerabilities", 0, "product_status", "first_fixed"], "x"),
            "$.vulnerabilities[0].product_status.first_fixed: expected an array",
        ),
        (
            _set(["vulnerabilities", 0, "remediations", 0, "date"], "yesterday"),
            "$.vulnerabilities[0].remediations[0].date:",
        ),
        (
            _set(["vulnerabilities", 0, "remediations", 0, "details"], _DELETE),
            "$.vulnerabilities[0].remediations[0].details: missing",
        ),
        (
            _set(["vulnerabilities", 0, "ids", 0], "JVNDB-2014-008039"),
            "$.vulnerabilities[0].ids[0]: expected an object",
        ),
        (
            _set(["vulnerabilities", 0, "product_status"], {}),
            "$.vulnerabilities: no product status",
        ),
        (_set(["vulnerabilities"], 3), "$.vulnerabilities: expected an array"),
    ],
)
def test_malformed_csaf_names_the_json_path(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], where: str
) -> None:
    doc = copy.deepcopy(_sample())
    change(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as e:
        import_csaf(path)
    message = str(e.value)
    assert message.startswith(f"{path}: {where}"), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "$: not JSON (line 1"),
        (b"[1, 2]", "$: expected an object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 200_000 + b"]" * 200_000, "$: "),
        (
            b'{"document": {"csaf_version": "2.0", "category": "x", "title": "\\ud800",'
            b' "tracking": {"id": "a"}}}',
            "lone surrogate",
        ),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.json: ") as e:
        import_csaf(path)
    assert words in str(e.value)


def test_deep_branches_and_size_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _sample()
    node: dict[str, Any] = {"category": "product_family", "name": "deep"}
    doc["product_tree"]["branches"] = [node]
    for _ in range(40):
        child: dict[str, Any] = {"category": "product_family", "name": "deep"}
        node["branches"] = [child]
        node = child
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"nested deeper than 32"):
        import_csaf(path)
    monkeypatch.setattr(csaf_module, "MAX_BYTES", 1000)
    with pytest.raises(InputError, match="larger than"):
        import_csaf(LOGITEC)
    with pytest.raises(InputError, match="cannot read"):
        import_csaf(tmp_path / "missing.json")
