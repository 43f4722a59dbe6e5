"""Dropping root after the listeners are bound: ``user`` and ``group`` in ``[sensor]``.

:func:`drop_privileges` runs once every listening socket exists and before any
client byte is read. As root it clears the supplementary groups and switches to
the configured group and user (``setgroups([])``, ``setgid``, ``setuid``, in that
order, so root cannot be regained). Started as another user it changes nothing
and only checks that it already is the configured one. :func:`check_writable`
then proves, as the final user, that the spool folders can be written.
"""

from __future__ import annotations

import grp
import os
import pwd
import tempfile
from dataclasses import dataclass
from pathlib import Path

from teiten.errors import ConfigError


@dataclass(frozen=True)
class Identity:
    """The user and group the sensor runs as after binding."""

    user: str
    uid: int
    gid: int


def resolve(user: str, group: str | None = None) -> Identity:
    """The uid and gid of ``user`` (and ``group``, else the user's own group)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"sensor.user: no such user {user!r}") from None
    gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"sensor.group: no such group {group!r}") from None
    return Identity(user, entry.pw_uid, gid)


def drop_privileges(identity: Identity) -> None:
    """Become ``identity`` when root; otherwise refuse unless already it (one-line error)."""
    if os.geteuid() != 0:
        if os.geteuid() != identity.uid or os.getegid() != identity.gid:
            raise ConfigError(
                f"sensor.user {identity.user!r}: switching user needs root; "
                f"running as uid {os.geteuid()}, gid {os.getegid()}"
            )
        return
    try:
        os.setgroups([])
        os.setgid(identity.gid)
        os.setuid(identity.uid)
    except OSError as e:
        raise ConfigError(f"cannot drop privileges to {identity.user!r}: {e.strerror}") from None
    if os.geteuid() != identity.uid or os.getuid() != identity.uid:
        raise ConfigError(f"cannot drop privileges to {identity.user!r}: still uid {os.getuid()}")


def check_writable(folders: list[Path]) -> None:
    """Create each folder if needed, then a file in it and remove it; one line if not."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
                pass
        except OSError as e:
            raise ConfigError(
                f"{folder}: not writable by uid {os.geteuid()}: {e.strerror}"
            ) from None
