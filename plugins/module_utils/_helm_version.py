# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""helm's version: parsed, checked against what the collection supports, and remembered per
binary in the user's cache, so ``helm version`` runs once per helm binary, not once per task."""

from __future__ import annotations

import json
import os
import re
import tempfile
import typing as t
from dataclasses import dataclass

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import HELM_UNSUPPORTED, HelmError

# Oldest helm 3 with --dry-run=server and -o json on upgrade.
MIN_HELM3 = (3, 13, 0)


@dataclass(frozen=True)
class HelmVersion:
    major: int
    minor: int
    patch: int
    raw: str

    @classmethod
    def parse(cls, text: str) -> HelmVersion:
        match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
        if not match:
            raise HelmError(HELM_UNSUPPORTED, f"Could not read a helm version from {(text or '').strip()!r}.")
        major, minor, patch = (int(g) for g in match.groups())
        return cls(major, minor, patch, match.group(0) if match.group(0).startswith("v") else "v" + match.group(0))

    def check_supported(self) -> None:
        if self.major == 3 and (self.major, self.minor, self.patch) >= MIN_HELM3:
            return
        if self.major == 4:
            return
        raise HelmError(
            HELM_UNSUPPORTED,
            f"helm {self.raw} is not supported: use helm >= v{'.'.join(map(str, MIN_HELM3))} or helm 4.",
        )


# ---- the helm version cache ----------------------------------------------------------------

VERSION_CACHE_ENTRIES = 32


def version_cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ai_mesh.helm_engine", "helm-versions.json")


def binary_key(binary: str) -> str | None:
    try:
        path = os.path.realpath(binary)
        info = os.stat(path)
    except OSError:
        return None
    return f"{path}|{info.st_dev}|{info.st_ino}|{info.st_size}|{info.st_mtime_ns}"


def read_version_cache() -> dict[str, str]:
    try:
        with open(version_cache_path(), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def remember_version(key: str, raw: str) -> None:
    """Best effort, atomic (parallel forks write it too); a read-only home only costs the
    ``helm version`` process next time."""
    path = version_cache_path()
    entries = read_version_cache()
    entries.pop(key, None)
    entries[key] = raw
    kept = dict(list(entries.items())[-VERSION_CACHE_ENTRIES:])
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".helm-versions.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(kept, handle)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass


def cached_version(binary: str, ask: t.Callable[[], str]) -> HelmVersion:
    """The supported version of ``binary``: from the user's cache, keyed by the binary's
    identity (path, inode, size, mtime), so a replaced or rebuilt helm is asked again; else
    from ``ask()`` (what ``helm version`` printed), remembered for the next task."""
    key = binary_key(binary)
    cached = read_version_cache().get(key) if key else None
    if cached:
        version = HelmVersion.parse(cached)
    else:
        version = HelmVersion.parse(ask())
        if key:
            remember_version(key, version.raw)
    version.check_supported()
    return version
