# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""A digest of everything a render depends on, stored with the release it produced.

A no-op deploy has to prove that rendering the chart again would give what is deployed. The
render (a server-side dry run) is most of a no-op's cost. Each deploy stores a digest of its
render inputs as a label of helm's release Secret (``helm upgrade --labels``; helm copies a
revision's labels on rollback); when the latest revision is deployed and carries the digest of
today's inputs, the render would give the same release, and is skipped.

The digest covers the chart's every file (so an edited template is a change), every values
source, the options that change what renders, the helm version and the API server's version.
Inputs it cannot pin give no digest, and the chart is rendered as before: a chart from a
repository or registry (its content is not on this host), ``dependency_update``, a post-renderer
(an outside program), ``reuse_values`` (the result depends on the stored values), and a chart
whose templates read the live cluster (``lookup``, ``.Capabilities.APIVersions``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tarfile
import typing as t

if t.TYPE_CHECKING:
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import DeploySpec

# The Secret label; "helm.sh/..." and helm's own keys (name, owner, status, version) are taken.
INPUTS_LABEL = "helm-engine.ai-mesh.io/inputs"
# Bumped when what the digest covers changes, so an old digest never matches a new meaning.
_SCHEME = "inputs-v1"
# A chart bigger than this is rendered rather than hashed: hashing would cost more than it saves.
MAX_CHART_BYTES = 32 * 1024 * 1024
MAX_CHART_FILES = 5000
# Template functions whose output depends on the live cluster, not on the inputs.
_CLUSTER_READS = re.compile(rb"\blookup\b|\.Capabilities\.APIVersions")


class Unpinnable(Exception):
    """The render cannot be pinned to the inputs: render instead."""


def _walk_chart_dir(root: str, digest: t.Any) -> None:
    if not os.path.isfile(os.path.join(root, "Chart.yaml")):
        raise Unpinnable("not a chart")  # helm refuses it; nothing to walk
    total = 0
    count = 0
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise Unpinnable("symlink")  # helm follows it; its target may live anywhere
            if not stat.S_ISREG(info.st_mode):
                raise Unpinnable("special file")  # a FIFO or device would block or never end
            count += 1
            if count > MAX_CHART_FILES:
                raise Unpinnable("too many files")
            with open(path, "rb") as handle:
                content = handle.read(MAX_CHART_BYTES + 1)
            total += len(content)
            if total > MAX_CHART_BYTES:
                raise Unpinnable("chart too big")
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            _check_content(relative, content)
            digest.update(f"file {relative} {len(content)}\n".encode())
            digest.update(content)


def _check_content(relative: str, content: bytes) -> None:
    if relative.endswith((".tgz", ".tar.gz")):
        _check_archive(content)
    elif "templates" in relative.split("/")[:-1] and _CLUSTER_READS.search(content):
        raise Unpinnable(f"{relative} reads the cluster")


def _check_archive(content: bytes) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:*") as archive:
            unpacked = 0
            for member in archive.getmembers():
                if member.issym() or member.islnk():
                    raise Unpinnable("link in archive")
                if not member.isfile():
                    continue
                unpacked += member.size
                if unpacked > MAX_CHART_BYTES:
                    raise Unpinnable("archive too big unpacked")
                handle = archive.extractfile(member)
                if handle is not None:
                    _check_content(member.name, handle.read(MAX_CHART_BYTES + 1))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise Unpinnable(f"unreadable archive: {exc}") from None


def _hash_file(path: str, digest: t.Any, label: str) -> None:
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise Unpinnable("not a regular file")  # /dev/stdin, a FIFO: read by helm, once
    with open(path, "rb") as handle:
        content = handle.read(MAX_CHART_BYTES + 1)
    if len(content) > MAX_CHART_BYTES:
        raise Unpinnable("file too big")
    digest.update(f"{label} {len(content)}\n".encode())
    digest.update(content)


def inputs_digest(spec: DeploySpec, chart_path: str, *, helm_version: str, kube_version: str) -> str | None:
    """The digest of the render inputs of ``spec``, or None when they cannot be pinned.
    ``chart_path`` is the chart as helm gets it (a local directory or archive)."""
    chart = spec.chart
    if not chart.is_local() or chart.dependency_update or spec.post_renderer or spec.reuse_values \
            or spec.reset_then_reuse_values:
        return None
    if any(item.value_type == "file" for item in spec.set_values):
        return None  # --set-file reads a file named in the value
    digest = hashlib.sha256()
    header = {
        "scheme": _SCHEME,
        "helm": helm_version,
        "kubernetes": kube_version,
        "release": spec.release,
        "namespace": spec.namespace,
        "disable_hooks": spec.disable_hooks,
        "skip_schema_validation": spec.skip_schema_validation,
        "skip_crds": spec.skip_crds,
        "set_values": [[item.value, item.value_type] for item in spec.set_values],
        "values": spec.values or {},
    }
    try:
        digest.update(json.dumps(header, sort_keys=True, default=str).encode())
        if os.path.isdir(chart_path):
            _walk_chart_dir(chart_path, digest)
        elif os.path.isfile(chart_path) and stat.S_ISREG(os.stat(chart_path).st_mode):
            with open(chart_path, "rb") as handle:
                content = handle.read(MAX_CHART_BYTES + 1)
            if len(content) > MAX_CHART_BYTES:
                return None
            _check_archive(content)
            digest.update(content)
        else:
            return None
        for index, path in enumerate(spec.values_files):
            _hash_file(path, digest, f"values {index}")
    except (Unpinnable, OSError):
        return None
    # A label value holds 63 characters; 40 hex digits are 160 bits.
    return digest.hexdigest()[:40]
