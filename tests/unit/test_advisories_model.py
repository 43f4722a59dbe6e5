"""Advisory files: the bundled data, model-name normalisation, validation errors, round trips."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.advisories.model import (
    Advisory,
    Product,
    Text,
    Texts,
    dump_advisory,
    load_advisories,
    load_advisory_dir,
    load_advisory_text,
    model_key,
    save_advisory,
)
from teiten.advisories.versions import parse_range
from teiten.errors import ConfigError

# Section 3 of the NPA report of 2017-12-19 (../shared/seed/npa-2017-12-19.txt).
SEED = {
    "LAN-WH300N/DR": ("2.14", date(2014, 6, 11)),
    "LAN-W300N/DR": ("2.14", date(2014, 6, 11)),
    "LAN-WH300N/DRCV": ("2.14", date(2014, 6, 11)),
    "LAN-WH300N/DRCY": ("2.14", date(2014, 6, 11)),
    "LAN-W300N/R": ("2.33", date(2013, 11, 6)),
    "LAN-W300N/RU2": ("2.33", date(2013, 11, 6)),
    "LAN-W300N/RS": ("2.33", date(2013, 11, 6)),
    "LAN-W300N/P": ("3.09", date(2014, 8, 22)),
    "LAN-W300N3L": ("1.13N3L", date(2013, 6, 25)),
    "LAN-WH300N/DGR": ("1.26", date(2014, 10, 15)),
    "LAN-WH300N/DGRU": ("1.26", date(2014, 10, 15)),
}

MINIMAL = """
id = "x-1"
vendor = "Example"
[title]
en = "Example"
[[products]]
model = "EX-1"
fixed = "1.20"
fixed_date = 2020-01-02
"""


def test_bundled_logitec_matches_the_seed() -> None:
    logitec = {a.id: a for a in load_advisories()}["logitec-2017-12-19"]
    assert logitec.cves == ("CVE-2014-8361",) and logitec.jvn_ids == ("JVNDB-2014-008039",)
    got = {p.model: (p.fixed.text if p.fixed else "", p.fixed_date) for p in logitec.products}
    assert got == SEED
    for p in logitec.products:
        assert p.fixed is not None and p.affected == (parse_range(f"< {p.fixed}"),)
    assert logitec.title.ja and logitec.title.en and logitec.actions.ja and logitec.actions.en


def test_bundled_hg532_and_realtek() -> None:
    by_id = {a.id: a for a in load_advisories()}
    hg = by_id["huawei-hg532-cve-2017-17215"]
    assert hg.cves == ("CVE-2017-17215",)
    assert [(p.model, p.fixed, p.family) for p in hg.products] == [("HG532", None, True)]
    realtek = by_id["realtek-sdk-miniigd-cve-2014-8361"]
    assert realtek.products == () and {b.server for b in realtek.banners} >= {"miniupnpd/1.0"}
    assert any(b.manufacturer == "Realtek" for b in realtek.banners)


def test_every_bundled_advisory_round_trips() -> None:
    for a in load_advisories():
        assert load_advisory_text(dump_advisory(a), "x", a.id) == a


@pytest.mark.parametrize(
    "name",
    [
        "LAN-W300N/R",
        "lan-w300n/r",
        "LAN W300N R",
        "LAN-W300N-R",
        "ＬＡＮ－Ｗ３００Ｎ／Ｒ",
        " LAN_W300N/R ",
        "LAN‐W300N／R",
        "lan－w300n r",
    ],
)
def test_model_names_normalise(name: str) -> None:
    assert model_key(name) == "LAN-W300N-R"


def test_similar_models_stay_apart() -> None:
    keys = {model_key(m) for m in SEED}
    assert len(keys) == 11
    assert model_key("LAN-W300N/RU2") != model_key("LAN-W300N/R")
    assert model_key("LAN-WH300N/DGRU") != model_key("LAN-WH300N/DGR")


def test_family_matches_letter_suffixes_only() -> None:
    hg = {a.id: a for a in load_advisories()}["huawei-hg532-cve-2017-17215"].products[0]
    assert all(hg.matches(model_key(m)) for m in ("HG532", "hg532e", "HG532s", "HG532-F"))
    assert not any(hg.matches(model_key(m)) for m in ("HG5320", "HG53", "HG532E-2", "HG532 E 1"))


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (('fixed = "1.20"', 'fixed = "latest"'), "products[0].fixed"),
        (("fixed_date = 2020-01-02", 'fixed_date = "2020-01-02"'), "products[0].fixed_date"),
        (('model = "EX-1"', 'model = ""'), "products[0].model"),
        (('model = "EX-1"', 'modell = "EX-1"'), "products[0].modell"),
        (('vendor = "Example"', ""), "vendor"),
        (('id = "x-1"', 'id = "../x-1"'), "id"),
        (('en = "Example"', 'de = "Beispiel"'), "title.de"),
        (('fixed = "1.20"', 'fixed = "1.20"\naffected = ["<= 1.20"]'), "products[0].fixed"),
        (('fixed = "1.20"', 'fixed = "1.20"\naffected = ["before"]'), "products[0].affected[0]"),
        (('vendor = "Example"', 'vendor = "Example"\ncves = ["CVE-14-1"]'), "cves[0]"),
        (('vendor = "Example"', 'vendor = "Example"\njvn_ids = ["JVN-1"]'), "jvn_ids[0]"),
        (('model = "EX-1"', 'model = "EX-1"\nfamily = "yes"'), "products[0].family"),
        (("[[products]]", "[products]"), "products"),
    ],
)
def test_errors_name_file_and_key(change: tuple[str, str], where: str) -> None:
    text = MINIMAL.replace(*change)
    with pytest.raises(ConfigError) as e:
        load_advisory_text(text, "adv/x-1.toml", "x-1")
    assert str(e.value).startswith(f"adv/x-1.toml: {where}:"), str(e.value)


def test_other_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="differs from the file name"):
        load_advisory_text(MINIMAL, "y.toml", "y")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_advisory_text("id = ", "z.toml", "z")
    with pytest.raises(ConfigError, match="listed twice"):
        load_advisory_text(MINIMAL + '[[products]]\nmodel = "ex 1"\n', "x.toml", "x-1")
    with pytest.raises(ConfigError, match=r"needs \[\[products\]\] or \[\[banners\]\]"):
        load_advisory_text(MINIMAL.split("[[products]]")[0], "x.toml", "x-1")
    with pytest.raises(ConfigError, match="not a directory"):
        load_advisory_dir(tmp_path / "missing")
    (tmp_path / "big.toml").write_bytes(b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than"):
        load_advisory_dir(tmp_path)


def test_save_and_reload(tmp_path: Path) -> None:
    a = load_advisory_text(MINIMAL, "x", "x-1")
    out = tmp_path / "new"
    path = save_advisory(a, out)
    assert path == out / "x-1.toml"
    assert load_advisory_dir(out) == [a]
    with pytest.raises(ConfigError, match="exists"):
        save_advisory(a, out)
    save_advisory(a, out, replace=True)
    (out / "notes.txt").write_text("not an advisory")
    extra = load_advisories([out])
    assert "x-1" in {x.id for x in extra} and len(extra) == len(load_advisories()) + 1


def test_same_id_in_an_extra_dir_replaces_the_bundled(tmp_path: Path) -> None:
    text = MINIMAL.replace('id = "x-1"', 'id = "logitec-2017-12-19"')
    (tmp_path / "logitec-2017-12-19.toml").write_text(text)
    by_id = {a.id: a for a in load_advisories([tmp_path])}
    assert by_id["logitec-2017-12-19"].vendor == "Example"


_texts = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from('\t\n"\\'),
    min_size=1,
    max_size=60,
).filter(lambda s: bool(s.strip()))


@settings(max_examples=150, deadline=None)
@given(_texts, _texts, st.lists(_texts, max_size=3))
def test_any_text_survives_the_toml_round_trip(title: str, model: str, actions: list[str]) -> None:
    a = Advisory(
        id="x-1",
        vendor='Vendor "quoted" \\ back\tslash',
        title=Text(ja=title, en="t"),
        products=(Product(model=model),),
        actions=Texts(en=tuple(actions)),
    )
    assert load_advisory_text(dump_advisory(a), "x", "x-1") == a
