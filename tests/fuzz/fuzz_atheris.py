"""atheris (libFuzzer) entry points for the fuzz targets of ``targets.py``.

    python tests/fuzz/fuzz_atheris.py TARGET [libFuzzer options] [CORPUS_DIR ...]

TARGET is a corpus kind (``capture``, ``compressed``, ``cowrie``, ``payload``,
``csaf``, ``mmdb``). Each input is written to a scratch file (the readers take
paths) and given to the target; a :class:`~teiten.errors.TeitenError` is a
clean refusal, any other exception a crash that libFuzzer saves. ``scripts/fuzz``
runs every target for a given time, seeded with the corpus of ``make_corpus.py``.
Needs the ``fuzz`` extra (``pip install -e '.[fuzz]'``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

# Modules with numba-compiled functions are left alone: numba cannot compile
# instrumented bytecode (their coverage is not seen; their inputs still are fuzzed).
NUMBA = ["teiten.analysis.surge", "teiten.capture.compressed", "teiten.capture.pcap",
         "teiten.capture.pcapng", "teiten.decode.kernel", "teiten.enrich.asn",
         "teiten.enrich.country", "teiten.enrich.rir", "teiten.store.order"]  # fmt: skip

with atheris.instrument_imports(include=["teiten"], exclude=NUMBA):
    from targets import TARGETS, outcome


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    kind = argv[1]
    target = TARGETS[kind]
    scratch = Path(tempfile.mkdtemp(prefix=f"teiten-fuzz-{kind}-")) / "input"

    def one_input(data: bytes) -> None:
        scratch.write_bytes(data)
        outcome(target, scratch)

    atheris.Setup([argv[0], *argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
