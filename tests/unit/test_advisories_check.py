"""Verdicts: the 11 Logitec models around their fixed versions, HG532, banners, and no guesses."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.advisories import check, check_banner
from teiten.advisories.model import load_advisory_text
from teiten.errors import ConfigError

# model, just below the fixed version, the fixed version, just above, release date
AROUND = [
    ("LAN-WH300N/DR", "2.13", "2.14", "2.15", date(2014, 6, 11)),
    ("LAN-W300N/DR", "2.13", "2.14", "2.15", date(2014, 6, 11)),
    ("LAN-WH300N/DRCV", "2.13", "2.14", "2.15", date(2014, 6, 11)),
    ("LAN-WH300N/DRCY", "2.13", "2.14", "2.15", date(2014, 6, 11)),
    ("LAN-W300N/R", "2.32", "2.33", "2.34", date(2013, 11, 6)),
    ("LAN-W300N/RU2", "2.32", "2.33", "2.34", date(2013, 11, 6)),
    ("LAN-W300N/RS", "2.32", "2.33", "2.34", date(2013, 11, 6)),
    ("LAN-W300N/P", "3.08", "3.09", "3.10", date(2014, 8, 22)),
    ("LAN-W300N3L", "1.12N3L", "1.13N3L", "1.14N3L", date(2013, 6, 25)),
    ("LAN-WH300N/DGR", "1.25", "1.26", "1.27", date(2014, 10, 15)),
    ("LAN-WH300N/DGRU", "1.25", "1.26", "1.27", date(2014, 10, 15)),
]


@pytest.mark.parametrize(("model", "below", "fixed", "above", "released"), AROUND)
def test_each_model_around_its_fixed_version(
    model: str, below: str, fixed: str, above: str, released: date
) -> None:
    for version, status in (
        (below, "affected"),
        (f"Ver{below}", "affected"),
        (fixed, "fixed"),
        (f"Ver{fixed}", "fixed"),
        (above, "fixed"),
    ):
        v = check(model, version)
        assert v.status == status, (model, version, v.message)
        assert v.product == model and v.fixed_version == fixed and v.fixed_date == released
        assert v.advisory_id == "logitec-2017-12-19"
        assert v.cves == ("CVE-2014-8361",) and v.jvn_ids == ("JVNDB-2014-008039",)
    assert check(model, "1.00" if fixed != "1.13N3L" else "1.00N3L").status == "affected"


def test_the_issue_example() -> None:
    v = check("LAN-W300N/R", "Ver2.27")
    assert v.status == "affected"
    assert (v.fixed_version, v.fixed_date) == ("2.33", date(2013, 11, 6))
    assert "2.33" in v.message and "2013-11-06" in v.message
    assert v.actions and any("update" in a.lower() for a in v.actions)
    ja = check("LAN-W300N/R", "Ver2.27", lang="ja")
    assert ja.status == "affected" and "影響あり" in ja.message and "2013-11-06" in ja.message
    assert ja.title.startswith("ロジテック") and any("更新" in a for a in ja.actions)


@pytest.mark.parametrize(
    "model", ["lan-w300n/r", "LAN W300N R", "LAN-W300N-R", "ＬＡＮ－Ｗ３００Ｎ／Ｒ"]
)
def test_normalised_names_find_the_model(model: str) -> None:
    v = check(model, "2.27")
    assert v.status == "affected" and v.product == "LAN-W300N/R" and v.model == model


def test_a_longer_name_is_not_its_prefix() -> None:
    assert check("LAN-W300N/RU2", "2.32").product == "LAN-W300N/RU2"
    assert check("LAN-W300N/RU", "2.32").status == "unknown_model"
    assert check("LAN-W300N", "2.32").status == "unknown_model"


@pytest.mark.parametrize(
    ("model", "version", "words"),
    [
        ("LAN-W300N/R", "2.9", "2.09 or 2.90"),  # different width: never guess
        ("LAN-W300N/P", "3.1", "digits"),
        ("LAN-W300N3L", "1.13N3L-b2", "test build"),  # beta before, or build after?
        ("LAN-W300N3L", "1.12", "suffix"),  # the N3L line is not the plain 1.x line
        ("LAN-W300N/R", "latest", "not a firmware version"),
        ("LAN-W300N/R", "", "not a firmware version"),
    ],
)
def test_cannot_compare_instead_of_guessing(model: str, version: str, words: str) -> None:
    v = check(model, version)
    assert v.status == "cannot_compare" and words in v.message, v.message
    assert v.fixed_version is not None  # the operator still learns what the fix is


def test_hg532_family_is_affected_without_a_fixed_version() -> None:
    for model in ("HG532", "hg532e", "HG532s"):
        v = check(model, "V100R001C01B016")
        assert v.status == "affected" and v.fixed_version is None and v.fixed_date is None
        assert "no fixed version listed" in v.message and "vendor" in v.message
        assert v.cves == ("CVE-2017-17215",)
    assert check("HG532", "junk").status == "affected"  # every version is affected
    assert "修正版は掲載されていません" in check("HG532", "1", lang="ja").message


def test_unknown_model_suggests_close_names() -> None:
    v = check("LAN-W300N/RX", "2.27")
    assert v.status == "unknown_model" and v.advisory_id == ""
    assert "LAN-W300N/R" in v.suggestions


def test_several_advisories_give_the_worst_first() -> None:
    extra = load_advisory_text(
        'id = "zz-extra"\nvendor = "Logitec"\n[title]\nen = "another"\n'
        '[[products]]\nmodel = "LAN-W300N/R"\nfixed = "2.40"\n',
        "zz-extra.toml",
        "zz-extra",
    )
    from teiten.advisories.check import bundled_advisories

    v = check("LAN-W300N/R", "2.35", advisories=[*bundled_advisories(), extra])
    assert v.status == "affected" and v.advisory_id == "zz-extra" and v.fixed_version == "2.40"
    assert [(a.advisory_id, a.status) for a in v.also] == [("logitec-2017-12-19", "fixed")]
    d = v.to_dict()
    assert d["also"][0]["fixed_date"] == "2013-11-06" and d["cves"] == []


def test_not_affected_and_uncovered_versions() -> None:
    a = load_advisory_text(
        'id = "na"\nvendor = "V"\n[title]\nen = "t"\n[[products]]\nmodel = "M-1"\n'
        'fixed = "2.00"\naffected = [">= 1.50, < 2.00"]\nnot_affected = ["< 1.00"]\n',
        "na.toml",
        "na",
    )
    status = {
        ver: check("M-1", ver, advisories=[a]).status
        for ver in ("0.90", "1.20", "1.60", "2.00", "1.5")
    }
    assert status == {
        "0.90": "not_affected",
        "1.20": "cannot_compare",
        "1.60": "affected",
        "2.00": "fixed",
        "1.5": "cannot_compare",
    }  # 1.5: 1.05 or 1.50?


def test_banners_are_possibly_affected_never_fixed() -> None:
    v = check_banner(server_header="Linux/2.4 UPnP/1.0 miniupnpd/1.0")
    assert v.status == "possibly_affected" and v.advisory_id == "realtek-sdk-miniigd-cve-2014-8361"
    assert v.fixed_version is None and "CVE-2014-8361" in v.cves
    assert check_banner(manufacturer="Realtek Semiconductor Corp.").status == "possibly_affected"
    ja = check_banner(server_header="miniupnpd/1.0", lang="ja")
    assert ja.message.startswith("影響を受けるおそれ")
    for other in (
        {"server_header": "miniupnpd/1.9"},
        {"server_header": "xminiupnpd/1.0"},
        {"manufacturer": "RealtekX"},
        {"server_header": ""},
        {},
    ):
        assert check_banner(**other).status == "unknown_model", other


def test_banner_model_names() -> None:
    listed = check_banner(model_name="LAN-W300N/R", manufacturer="Realtek")
    assert listed.status == "possibly_affected" and listed.advisory_id == "logitec-2017-12-19"
    assert {a.advisory_id for a in listed.also} == {"realtek-sdk-miniigd-cve-2014-8361"}
    assert check_banner(model_name="HG532e").status == "affected"  # every version is
    evil = check_banner(model_name="\x1b[2J" + "A" * 10_000, server_header="\u202e" * 5000)
    assert evil.status == "unknown_model"


def test_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="language"):
        check("LAN-W300N/R", "2.27", lang="fr")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60), st.sampled_from(["ja", "en"]))
def test_never_crashes_and_never_fixed_by_banner(model: str, version: str, lang: str) -> None:
    v = check(model, version, lang=lang)
    assert v.status in {"affected", "fixed", "not_affected", "cannot_compare", "unknown_model"}
    assert v.message
    b = check_banner(server_header=version, manufacturer=model, model_name=model, lang=lang)
    assert b.status in {"affected", "possibly_affected", "unknown_model"}
