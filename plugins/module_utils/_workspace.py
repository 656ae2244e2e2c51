# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""A task's private files: values, kubeconfigs and registry configs, 0600 in a 0700 temp dir,
written as JSON that helm and the Kubernetes client read as YAML."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import typing as t

# Characters YAML does not allow unescaped in a document (YAML 1.2 "c-printable", and the line
# separators YAML 1.1 reads as line breaks), written as JSON \u escapes instead.
_YAML_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def json_for_helm(data: t.Any, **kwargs: t.Any) -> str:
    """JSON that helm reads as YAML (values files, kubeconfigs) with every string intact.

    Python's default escapes a character outside the BMP (an emoji, rare CJK) as a surrogate
    pair, which helm's YAML parser refuses ("found invalid Unicode character escape code"); so
    such characters are written as UTF-8, and only those YAML forbids raw are escaped."""
    text = json.dumps(data, ensure_ascii=False, **kwargs)
    return _YAML_UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Workspace:
    """A private temp dir for values files and kubeconfigs; files are 0600 and removed on close."""

    def __init__(self, parent: str | None = None) -> None:
        # Under the task's own temp dir when Ansible gives one, so nothing is left in a
        # shared /tmp and concurrent tasks never see each other's files.
        self.path = tempfile.mkdtemp(prefix="helm-engine-", dir=parent)
        os.chmod(self.path, 0o700)
        self._counter = 0
        self._written: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._once = threading.Lock()

    def write_private(self, stem: str, content: str) -> str:
        with self._lock:  # releases deployed in parallel share the task's workspace
            self._counter += 1
            path = os.path.join(self.path, f"{self._counter:02d}-{stem}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return path

    def write_once(self, stem: str, content: str) -> str:
        """The path of a private file with this content, written on the first call only."""
        key = (stem, content)
        with self._once:
            if key not in self._written:
                self._written[key] = self.write_private(stem, content)
            return self._written[key]

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
