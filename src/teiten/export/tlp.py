"""Traffic Light Protocol 2.0 markings for STIX exports (the ``stix_tlp`` setting).

The five TLP 2.0 levels and the marking-definition objects OASIS publishes for
them (``cti-stix-common-objects``, ``extension-definition-specifications/tlp-2.0``):
fixed ids, created 2022-10-01, named ``TLP:…``, carrying the TLP 2.0 property
extension. Producers must use exactly these objects so consumers recognise the
marking by its id.
"""

from __future__ import annotations

from typing import Any

EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
"""The STIX extension definition of TLP 2.0 markings."""
CREATED = "2022-10-01T00:00:00.000Z"
IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
"""TLP 2.0 level → the id of its official marking-definition object."""
DEFAULT = "amber"


def parse_tlp(value: Any) -> str:
    """A TLP 2.0 level from a setting: ``amber``, ``TLP:AMBER+STRICT``… (case-insensitive).

    >>> parse_tlp("TLP:Amber+Strict")
    'amber+strict'
    """
    level = str(value).strip().lower().removeprefix("tlp:")
    if level not in IDS:
        raise ValueError(f"{value!r} is not a TLP 2.0 level ({', '.join(IDS)})")
    return level


def marking_definition(level: str) -> dict[str, Any]:
    """The official marking-definition object of a TLP 2.0 level, as STIX JSON data."""
    level = parse_tlp(level)
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": IDS[level],
        "created": CREATED,
        "name": f"TLP:{level.upper()}",
        "extensions": {EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    }
