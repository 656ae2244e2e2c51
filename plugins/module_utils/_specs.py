# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""What an operation is to do, as data: the chart, its values, and the options of each helm
operation. Built from a task's parameters (see _args.py) and read by the helm client, which
turns each spec into argv; the dry run and the real run come from the same spec."""

from __future__ import annotations

import base64
import json
import os
import typing as t
from dataclasses import dataclass, field

DEFAULT_HELM_TIMEOUT = 300.0  # helm's own --timeout default, seconds
# A pending revision older than the operation's timeout plus this cannot still be worked on.
DEFAULT_STALE_MARGIN = 60.0


@dataclass
class SetValue:
    """One ``--set``-family expression, kubernetes.core's ``set_values`` item."""

    value: str
    value_type: str = "raw"


OCI_SCHEME = "oci://"


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials for the OCI registry of an ``oci://`` chart.

    They reach helm as a docker-style registry config (``--registry-config``), a 0600 file in the
    task's workspace: never argv, and never helm's own config. The file is written with the
    credentials in it rather than by ``helm registry login --password-stdin``: into a config that
    holds no credentials yet, helm's login stores the password in the platform's credential
    helper (docker-credential-secretservice or -pass on Linux, when installed), where it would
    outlive the task (oras-go ``DetectDefaultNativeStore``, which helm 3 and 4 set)."""

    host: str
    username: str
    password: str = field(repr=False)

    def auth_token(self) -> str:
        """The ``auth`` field of the config: base64 of ``username:password`` (HTTP basic)."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def config_json(self) -> str:
        return json.dumps({"auths": {self.host: {"auth": self.auth_token()}}}, sort_keys=True)


def oci_registry_host(ref: str) -> str | None:
    """``host[:port]`` of an ``oci://`` reference (the key helm looks credentials up by)."""
    if not ref.startswith(OCI_SCHEME):
        return None
    return ref[len(OCI_SCHEME):].split("/", 1)[0] or None


@dataclass
class ChartSource:
    ref: str
    repo_url: str | None = None
    version: str | None = None
    dependency_update: bool = False
    plain_http: bool = False
    insecure_skip_tls_verify: bool = False
    ca_file: str | None = None
    login: RegistryLogin | None = field(default=None, repr=False)

    def is_local(self) -> bool:
        return self.ref.startswith(("/", "./", "../", "~")) or os.path.exists(self.ref)

    def positional(self) -> str:
        return os.path.expanduser(self.ref) if self.is_local() else self.ref


@dataclass
class DeploySpec:
    """Everything that decides what an install/upgrade does. The dry run and the real run
    are built from the same spec by the same function, so they cannot disagree."""

    release: str
    namespace: str
    chart: ChartSource
    values_files: list[str] = field(default_factory=list)
    values: dict[str, t.Any] | None = None
    set_values: list[SetValue] = field(default_factory=list)
    create_namespace: bool = False
    wait: bool = False
    wait_strategy: str | None = None
    wait_for_jobs: bool = False
    timeout: str | None = None
    atomic: bool = False
    history_max: int | None = None
    skip_crds: bool = False
    skip_schema_validation: bool = False
    disable_hooks: bool = False
    force: bool = False
    reset_values: bool = True
    reuse_values: bool = False
    reset_then_reuse_values: bool = False
    cleanup_on_fail: bool = False
    description: str | None = None
    server_side: str | None = None
    force_conflicts: bool = False
    take_ownership: bool = False
    post_renderer: str | None = None
    post_renderer_args: list[str] = field(default_factory=list)
    # The digest of the render inputs, stored with the revision (see _inputs.py). helm merges
    # labels into the previous revision's: without a digest, one the previous revision carries
    # is removed ("null"), or a later run could match inputs this revision did not come from.
    inputs_digest: str | None = None
    drop_inputs_label: bool = False


@dataclass
class RollbackSpec:
    release: str
    namespace: str
    revision: int
    wait: bool = False
    wait_strategy: str | None = None
    timeout: str | None = None
    cleanup_on_fail: bool = False
    force: bool = False
    disable_hooks: bool = False
    history_max: int | None = None


@dataclass
class UninstallSpec:
    release: str
    namespace: str
    wait: bool = False
    timeout: str | None = None
    keep_history: bool = False
    disable_hooks: bool = False


@dataclass
class TestSpec:
    """``helm test``: run the chart's test hooks of the deployed revision."""

    __test__ = False  # not a pytest class, whatever its name

    release: str
    namespace: str
    timeout: str | None = None
    logs: bool = False


DRIFT_MODES = ("correct", "detect", "ignore")


@dataclass(frozen=True)
class IgnoreRule:
    """A ``drift_ignore`` item: these JSON pointers (and what lies below them) of objects of a
    kind (and name; any kind when None) are never drift. ``""`` is the whole object."""

    kind: str | None
    name: str | None
    paths: tuple[str, ...]

    def covers(self, kind: str, name: str, pointer: str) -> bool:
        if (self.kind and self.kind != kind) or (self.name and self.name != name):
            return False
        return any(path == "" or pointer == path or pointer.startswith(path.rstrip("/") + "/") for path in self.paths)


@dataclass(frozen=True)
class DriftPolicy:
    """What a deploy does about live objects that depart from the deployed revision."""

    mode: str = "correct"  # correct | detect | ignore
    rules: tuple[IgnoreRule, ...] = ()

    @property
    def checks(self) -> bool:
        return self.mode != "ignore"


@dataclass(frozen=True)
class FailFastPolicy:
    """When a rollout counts as failed (the fail_fast options)."""

    enabled: bool = True
    restarts: int = 3  # a crash-looping container fails the rollout at this restart count
    grace: float = 30.0  # seconds a pod may stay unschedulable before it fails the rollout


@dataclass(frozen=True)
class RecoveryPolicy:
    """What to do about a pending release: the RECOVERY options, validated."""

    recover_pending: bool = True
    stale_pending_after: float | None = None
    lock_wait: float = 0.0
    operation_timeout: float | None = None  # the task's timeout, seconds

    @property
    def stale_after(self) -> float:
        """A pending revision older than this cannot still be worked on by a helm: by default
        the operation's timeout (helm's 5 minutes) plus a margin."""
        if self.stale_pending_after is not None:
            return self.stale_pending_after
        return (self.operation_timeout or DEFAULT_HELM_TIMEOUT) + DEFAULT_STALE_MARGIN
