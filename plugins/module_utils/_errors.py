# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Error kinds and the engine's exceptions: a leaf module, imported by the helm client, the
Kubernetes client and the modules alike.

Every failure a module reports carries ``error.kind``, one of ``KINDS``. Playbooks, the role and
the audit log match on these strings: never rename one. A unit test checks that every kind here
is documented in the modules' RETURN and the README, and that nothing else is.
"""

from __future__ import annotations

import typing as t

# Inputs
INVALID_ARGUMENTS = "invalid_arguments"
INVALID_VALUES = "invalid_values"
KUBECONFIG_INVALID = "kubeconfig_invalid"
# Charts
CHART_NOT_FOUND = "chart_not_found"
CHART_INVALID = "chart_invalid"
REGISTRY_UNREACHABLE = "registry_unreachable"
RENDER_FAILED = "render_failed"
# The cluster
CLUSTER_UNREACHABLE = "cluster_unreachable"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
KUBERNETES_API = "kubernetes_api_error"
RESOURCE_CONFLICT = "resource_conflict"
# Releases
RELEASE_LOCKED = "release_locked"
RELEASE_NOT_FOUND = "release_not_found"
REVISION_NOT_FOUND = "revision_not_found"
HOOK_FAILED = "hook_failed"
ROLLOUT_FAILED = "rollout_failed"
TIMEOUT = "timeout"
# helm and this host
HELM_MISSING = "helm_missing"
HELM_UNSUPPORTED = "helm_unsupported"
HELM_FAILED = "helm_failed"
HELM_OUTPUT = "helm_output_invalid"
MISSING_DEPENDENCY = "missing_dependency"
INTERNAL_ERROR = "internal_error"

KINDS: tuple[str, ...] = (
    INVALID_ARGUMENTS,
    INVALID_VALUES,
    KUBECONFIG_INVALID,
    CHART_NOT_FOUND,
    CHART_INVALID,
    REGISTRY_UNREACHABLE,
    RENDER_FAILED,
    CLUSTER_UNREACHABLE,
    UNAUTHORIZED,
    FORBIDDEN,
    KUBERNETES_API,
    RESOURCE_CONFLICT,
    RELEASE_LOCKED,
    RELEASE_NOT_FOUND,
    REVISION_NOT_FOUND,
    HOOK_FAILED,
    ROLLOUT_FAILED,
    TIMEOUT,
    HELM_MISSING,
    HELM_UNSUPPORTED,
    HELM_FAILED,
    HELM_OUTPUT,
    MISSING_DEPENDENCY,
    INTERNAL_ERROR,
)


class EngineError(Exception):
    """A failure the modules report as ``msg`` plus an ``error`` dict with a stable ``kind``."""

    def __init__(
        self,
        kind: str,
        msg: str,
        *,
        command: list[str] | None = None,
        rc: int | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        details: dict[str, t.Any] | None = None,
    ) -> None:
        if kind not in KINDS:  # a typo here would ship an undocumented kind
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(msg)
        self.kind = kind
        self.msg = msg
        self.command = command
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.details = details or {}
        # Top-level result keys: the release state a failure left, whether it changed anything.
        self.extra: dict[str, t.Any] = {}

    def to_result(self) -> dict[str, t.Any]:
        error: dict[str, t.Any] = {"kind": self.kind, "message": self.msg}
        if self.rc is not None:
            error["rc"] = self.rc
        if self.stderr:
            error["stderr"] = self.stderr
        if self.command:
            error["command"] = " ".join(self.command)
        error.update(self.details)
        result = {"msg": self.msg, "error": error}
        result.update(self.extra)
        return result


class HelmError(EngineError):
    """A helm process failed, could not run, or answered something unusable."""


class KubeError(EngineError):
    """The Kubernetes API refused a request or could not be reached."""


class InputError(EngineError):
    """A task input is unusable; raised before anything touches the cluster."""

    def __init__(self, msg: str, *, kind: str = INVALID_ARGUMENTS, option: str | None = None) -> None:
        super().__init__(kind, msg, details={"option": option} if option else None)
