# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""One run at a time per release: a coordination.k8s.io/v1 Lease in the release's namespace.

helm has no lock of its own. Two runs that start together both read "not installed" (or the
same deployed revision), both run helm, and the loser fails late with whatever helm tripped
over ("release: already exists" when both create the same revision Secret, "another operation
(install/upgrade/rollback) is in progress" when one sees the other's pending revision), after
rendering and sometimes after creating the namespace.

helm_deploy and helm_rollback therefore hold the Lease ``helm-engine.<release>`` while they
recover, render and act. It is taken with a create (AlreadyExists: someone holds it), taken
over only once expired (an update with the read resourceVersion as precondition, so of two
runs taking over the same expired lease exactly one wins), renewed by a thread while the
operation runs, and deleted at the end, on failure too. A run killed with SIGKILL leaves a
lease that expires ``leaseDurationSeconds`` after its last renewal: the same time after which
a pending revision it left counts as stale (stale_pending_after), so the next run can then
take the lease and recover the release in one go.

The lease guards runs of this collection only; plain helm and other tools ignore it, and
helm's own pending-revision check remains the guard against them. When the namespace does not
exist yet (create_namespace), there is nothing to hold a lease in: the run goes on unlocked
and helm's own checks decide (their errors are classified release_locked).
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import threading
import time
import typing as t
from datetime import datetime, timedelta, timezone

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    FORBIDDEN,
    RELEASE_LOCKED,
    EngineError,
    KubeError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._objects import parse_time

if t.TYPE_CHECKING:
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient

LEASE_PREFIX = "helm-engine."
MANAGED_BY = "ai_mesh.helm_engine"
OPERATION_ANNOTATION = "helm-engine.ai-mesh.io/operation"
# A lease shorter than this would need a renewal more often than a request can take.
MIN_LEASE_SECONDS = 5
POLL_SECONDS = 1.0
RBAC_HINT = "get, create, update and delete on leases.coordination.k8s.io"


def lease_name(release: str) -> str:
    """helm release names are DNS-1123 subdomains of at most 53 characters, so the name is
    one too (at most 65 characters, well within 253) and cannot collide with another release's."""
    return f"{LEASE_PREFIX}{release}"


def holder_identity() -> str:
    """Who holds the lease: host, process and a random part (pids repeat across hosts and time)."""
    return f"{socket.gethostname()}/pid-{os.getpid()}/{secrets.token_hex(4)}"


def micro_time(moment: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_duration(stale_after: float) -> int:
    return max(MIN_LEASE_SECONDS, int(math.ceil(stale_after)))


class LeaseConflict(Exception):
    """The API server refused a write: the lease exists (create) or changed since it was read (update, delete)."""


class LeaseApi(t.Protocol):
    """The four requests the lock makes; KubeLeaseApi over the cluster, a fake in unit tests."""

    def get(self, namespace: str, name: str) -> dict[str, t.Any] | None: ...

    def create(self, namespace: str, body: dict[str, t.Any]) -> dict[str, t.Any] | None: ...

    def replace(self, namespace: str, name: str, body: dict[str, t.Any]) -> dict[str, t.Any]: ...

    def delete(self, namespace: str, name: str, uid: str, resource_version: str) -> None: ...


class KubeLeaseApi:
    """Leases over the task's Kubernetes client. ``create`` answers None when the namespace
    does not exist; a refusal for lack of rights names the rights the lock needs."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    @staticmethod
    def _path(namespace: str, name: str | None = None) -> str:
        from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import path_segment

        path = f"/apis/coordination.k8s.io/v1/namespaces/{path_segment(namespace)}/leases"
        return f"{path}/{path_segment(name)}" if name else path

    def _request(self, method: str, path: str, body: dict[str, t.Any] | None, namespace: str) -> t.Any:
        try:
            if method == "GET":
                return self.kube.get_json(path, missing_ok=True)
            return self.kube.write_json(method, path, body or {})
        except KubeError as exc:
            status = exc.details.get("status")
            if status == 409:
                raise LeaseConflict(exc.msg) from None
            if status == 403:
                raise KubeError(
                    FORBIDDEN,
                    f"{exc.msg}. The release lock needs {RBAC_HINT} in namespace {namespace!r}.",
                    details={"status": 403},
                ) from None
            raise

    def get(self, namespace: str, name: str) -> dict[str, t.Any] | None:
        return self._request("GET", self._path(namespace, name), None, namespace)

    def create(self, namespace: str, body: dict[str, t.Any]) -> dict[str, t.Any] | None:
        try:
            return self._request("POST", self._path(namespace), body, namespace)
        except KubeError as exc:
            if exc.details.get("status") == 404:  # the namespace does not exist (yet)
                return None
            raise

    def replace(self, namespace: str, name: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        try:
            return self._request("PUT", self._path(namespace, name), body, namespace)
        except KubeError as exc:
            if exc.details.get("status") == 404:  # deleted since it was read: someone else's move
                raise LeaseConflict(exc.msg) from None
            raise

    def delete(self, namespace: str, name: str, uid: str, resource_version: str) -> None:
        options = {"apiVersion": "v1", "kind": "DeleteOptions",
                   "preconditions": {"uid": uid, "resourceVersion": resource_version}}
        try:
            self._request("DELETE", self._path(namespace, name), options, namespace)
        except KubeError as exc:
            if exc.details.get("status") != 404:
                raise


def holder_of(lease: dict[str, t.Any], now: datetime) -> dict[str, t.Any]:
    """What a failure says about a lease someone else holds: who, since when, until when."""
    spec = lease.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    renewed_at = parse_time(renewed)
    expires = renewed_at + timedelta(seconds=duration) if renewed_at and isinstance(duration, int) else None
    return {
        "lease": (lease.get("metadata") or {}).get("name"),
        "holder": spec.get("holderIdentity"),
        "operation": ((lease.get("metadata") or {}).get("annotations") or {}).get(OPERATION_ANNOTATION),
        "since": spec.get("acquireTime"),
        "renewed": renewed,
        "duration_seconds": duration,
        "expires": micro_time(expires) if expires else None,
        "expires_in_seconds": round((expires - now).total_seconds(), 1) if expires else None,
    }


def holder_is_gone(identity: str) -> bool:
    """True when the holder was a process on this host that no longer runs: a run killed with
    SIGKILL (a task timeout, a killed ansible-playbook) need not block the next run on this
    controller until its lease expires. Holders on other hosts are never judged."""
    host, unused_sep, rest = identity.partition("/pid-")
    pid_text = rest.split("/", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # our pid, another identity: an earlier process that had this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's process)
    return False


def is_expired(lease: dict[str, t.Any], now: datetime) -> bool:
    """A lease without a holder, held by a process of this host that is gone, or not renewed
    within its duration, is free. One that cannot be read (no times, no duration) counts as
    held: it expires only by its own word."""
    spec = lease.get("spec") or {}
    if not spec.get("holderIdentity"):
        return True
    if holder_is_gone(str(spec["holderIdentity"])):
        return True
    renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int):
        return False
    return now >= renewed + timedelta(seconds=duration)


class ReleaseLock:
    """The lease of one release, held by one run. ``acquire`` waits up to ``wait`` seconds for
    a held lease; ``check_only`` (check mode) reads it and never writes. Use as a context
    manager around the operation: the lease is deleted when the block ends, however it ends."""

    def __init__(
        self,
        api: LeaseApi,
        release: str,
        namespace: str,
        *,
        operation: str,
        duration: int,
        wait: float = 0.0,
        check_only: bool = False,
        identity: str | None = None,
        clock: t.Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        monotonic: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
        renew: bool = True,
    ) -> None:
        self.api = api
        self.release = release
        self.namespace = namespace
        self.name = lease_name(release)
        self.operation = operation
        self.duration = duration
        self.wait = wait
        self.check_only = check_only
        self.identity = identity or holder_identity()
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._renew = renew
        self.lease: dict[str, t.Any] | None = None  # ours, while held
        self.waited = 0.0
        self.taken_over: dict[str, t.Any] | None = None  # the expired holder we replaced
        self.unlocked_reason: str | None = None  # why the run goes on without a lease
        self.lost = False  # a renewal found the lease taken over by another run
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._mutex = threading.Lock()

    # ---- taking ---------------------------------------------------------------------------

    def _body(self, now: datetime, *, acquired: datetime, transitions: int, resource_version: str | None = None) -> dict[str, t.Any]:
        metadata: dict[str, t.Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
            "annotations": {OPERATION_ANNOTATION: self.operation},
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration,
                "acquireTime": micro_time(acquired),
                "renewTime": micro_time(now),
                "leaseTransitions": transitions,
            },
        }

    def _attempt(self) -> dict[str, t.Any] | None:
        """One try. None when the run may go on (lease taken, or no namespace to hold it in),
        else the lease another run holds."""
        for unused_try in range(3):  # a lease deleted between our create and our read: try again
            now = self._clock()
            if self.check_only:
                try:
                    current = self.api.get(self.namespace, self.name)
                except KubeError as exc:
                    if exc.kind != FORBIDDEN:
                        raise
                    # A read-only identity may preview a deploy; the lock is not part of the preview.
                    self.unlocked_reason = "the identity may not read leases"
                    return None
                if current is None or is_expired(current, now):
                    return None
                return current
            try:
                created = self.api.create(self.namespace, self._body(now, acquired=now, transitions=0))
            except LeaseConflict:
                pass
            except KubeError as exc:
                if exc.kind != FORBIDDEN:
                    raise
                # RBAC written for helm alone has no leases: run as helm would, guarded only by
                # helm's own checks (a concurrent run still ends in release_locked), and say so.
                self.unlocked_reason = f"the identity may not create leases ({RBAC_HINT} is needed)"
                return None
            else:
                if created is None:
                    self.unlocked_reason = f"namespace {self.namespace!r} did not exist yet (no lease to hold)"
                else:
                    self.lease = created
                return None
            current = self.api.get(self.namespace, self.name)
            if current is None:
                continue
            if not is_expired(current, now):
                return current
            spec = current.get("spec") or {}
            body = self._body(now, acquired=now, transitions=int(spec.get("leaseTransitions") or 0) + 1,
                              resource_version=(current.get("metadata") or {}).get("resourceVersion"))
            try:
                self.lease = self.api.replace(self.namespace, self.name, body)
            except LeaseConflict:
                continue  # another run took it over first: read who holds it now
            self.taken_over = holder_of(current, now)
            return None
        current = self.api.get(self.namespace, self.name)
        if current is None:
            raise EngineError(RELEASE_LOCKED, f"The lock of release {self.namespace}/{self.release} (Lease {self.name}) "
                                              "changed hands on every attempt; another run is taking it.")
        return current

    def acquire(self) -> None:
        started = self._monotonic()
        deadline = started + self.wait
        while True:
            held = self._attempt()
            if held is None:
                self.waited = round(self._monotonic() - started, 3)
                break
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                self.waited = round(self._monotonic() - started, 3)
                raise self._locked_error(held)
            self._sleep(min(POLL_SECONDS, remaining))
        if self.lease is not None and self._renew:
            self._renewer = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
            self._renewer.start()

    def _locked_error(self, held: dict[str, t.Any]) -> EngineError:
        info = holder_of(held, self._clock())
        operation = f" ({info['operation']})" if info.get("operation") else ""
        waited = f" after waiting {self.waited:.1f}s (lock_wait)" if self.wait else ""
        return EngineError(
            RELEASE_LOCKED,
            f"Release {self.namespace}/{self.release} is locked by another run: {info['holder']}{operation} holds "
            f"Lease {self.namespace}/{self.name} since {info['since']}, last renewed {info['renewed']}; it expires "
            f"{info['expires']} unless renewed. Gave up{waited or ' at once (lock_wait: 0)'}.",
            details={"lock": dict(info, namespace=self.namespace, waited_seconds=self.waited)},
        )

    # ---- holding --------------------------------------------------------------------------

    @property
    def renew_interval(self) -> float:
        return max(1.0, self.duration / 3.0)

    def renew_once(self) -> bool:
        """Moves renewTime to now; False when the lease is no longer ours."""
        with self._mutex:
            if self.lease is None:
                return False
            body = dict(self.lease)
            body["spec"] = dict(self.lease.get("spec") or {}, renewTime=micro_time(self._clock()))
            try:
                self.lease = self.api.replace(self.namespace, self.name, body)
            except LeaseConflict:
                # It expired (no renewal got through for a whole duration) and another run took
                # it: that run's helm finds our pending revision and refuses, so stop renewing.
                self.lost = True
                self.lease = None
                return False
            return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_interval):
            try:
                if not self.renew_once():
                    return
            except Exception:  # noqa: BLE001 - a failed renewal is retried; the lease covers a whole duration
                continue

    # ---- letting go -----------------------------------------------------------------------

    def release_lease(self) -> None:
        """Stops renewing and deletes the lease if it is still ours (uid and resourceVersion as
        preconditions). A lease that cannot be deleted expires by itself."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=60)
        with self._mutex:
            lease, self.lease = self.lease, None
        if lease is None:
            return
        metadata = lease.get("metadata") or {}
        try:
            self.api.delete(self.namespace, self.name, metadata.get("uid", ""), metadata.get("resourceVersion", ""))
        except LeaseConflict:
            pass  # taken over after it expired: no longer ours to delete
        except EngineError:
            pass  # unreachable or refused now: it expires after its duration

    def __enter__(self) -> ReleaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release_lease()
