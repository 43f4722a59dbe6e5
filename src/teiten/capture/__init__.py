"""Capture sources: files (pcap, pcapng, compressed) read as batches of raw records.

``open_source(path)`` sniffs a file's format from its first bytes (not its
name) and returns a :class:`~teiten.capture.source.Source`;
``expand_paths(args)`` turns files, directories (recursive) and globs into the
sorted list of files to read.
"""

from teiten.capture.files import expand_paths, open_source

__all__ = ["expand_paths", "open_source"]
