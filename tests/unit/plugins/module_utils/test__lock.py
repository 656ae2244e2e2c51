# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import copy
import time
import typing as t
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    FORBIDDEN,
    KUBERNETES_API,
    RELEASE_LOCKED,
    EngineError,
    KubeError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._lock import (
    KubeLeaseApi,
    LeaseConflict,
    ReleaseLock,
    holder_of,
    is_expired,
    lease_duration,
    lease_name,
    micro_time,
)

T0 = datetime(2026, 12, 2, 8, 0, 0, tzinfo=timezone.utc)


class FakeLeaseApi:
    """Leases as the API server keeps them: resourceVersion on every write, AlreadyExists on
    create, preconditions on update and delete. ``namespace_exists=False`` answers as for a
    namespace that does not exist; ``before_replace`` runs between a read and its update."""

    def __init__(self, *, namespace_exists: bool = True) -> None:
        self.leases: dict[tuple[str, str], dict[str, t.Any]] = {}
        self.namespace_exists = namespace_exists
        self.calls: list[tuple[str, str]] = []
        self.version = 0
        self.before_replace: t.Callable[[], None] | None = None
        self.fail_delete: Exception | None = None

    def _stamp(self, body: dict[str, t.Any], uid: str | None = None) -> dict[str, t.Any]:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        stored["metadata"]["uid"] = uid or f"uid-{self.version}"
        return stored

    def put(self, namespace: str, name: str, spec: dict[str, t.Any]) -> dict[str, t.Any]:
        """A lease another run wrote."""
        body = {"metadata": {"name": name, "namespace": namespace, "annotations": {}}, "spec": spec}
        self.leases[(namespace, name)] = self._stamp(body)
        return self.leases[(namespace, name)]

    def get(self, namespace: str, name: str) -> dict[str, t.Any] | None:
        self.calls.append(("get", name))
        found = self.leases.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def create(self, namespace: str, body: dict[str, t.Any]) -> dict[str, t.Any] | None:
        self.calls.append(("create", body["metadata"]["name"]))
        if not self.namespace_exists:
            return None
        key = (namespace, body["metadata"]["name"])
        if key in self.leases:
            raise LeaseConflict("leases.coordination.k8s.io already exists")
        self.leases[key] = self._stamp(body)
        return copy.deepcopy(self.leases[key])

    def replace(self, namespace: str, name: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        self.calls.append(("replace", name))
        if self.before_replace is not None:
            hook, self.before_replace = self.before_replace, None
            hook()
        current = self.leases.get((namespace, name))
        if current is None or current["metadata"]["resourceVersion"] != body["metadata"].get("resourceVersion"):
            raise LeaseConflict("the object has been modified")
        self.leases[(namespace, name)] = self._stamp(body, uid=current["metadata"]["uid"])
        return copy.deepcopy(self.leases[(namespace, name)])

    def delete(self, namespace: str, name: str, uid: str, resource_version: str) -> None:
        self.calls.append(("delete", name))
        if self.fail_delete is not None:
            raise self.fail_delete
        current = self.leases.get((namespace, name))
        if current is None:
            return
        if (current["metadata"]["uid"], current["metadata"]["resourceVersion"]) != (uid, resource_version):
            raise LeaseConflict("precondition failed")
        del self.leases[(namespace, name)]


class Clock:
    """Wall and monotonic time that move only when the lock sleeps."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []
        self.on_sleep: t.Callable[[int], None] | None = None

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return (self.now - T0).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        if self.on_sleep is not None:
            self.on_sleep(len(self.slept))


def make_lock(api: FakeLeaseApi, clock: Clock, **kwargs: t.Any) -> ReleaseLock:
    kwargs.setdefault("duration", 60)
    return ReleaseLock(api, "web", "apps", operation="helm_deploy", identity=kwargs.pop("identity", "me/pid-1/aaaa"),
                       clock=clock.wall, monotonic=clock.monotonic, sleep=clock.sleep, renew=False, **kwargs)


def other_holder(api: FakeLeaseApi, *, renewed: datetime = T0, duration: int = 60) -> dict[str, t.Any]:
    return api.put("apps", "helm-engine.web", {
        "holderIdentity": "ci-runner/pid-77/bbbb", "leaseDurationSeconds": duration,
        "acquireTime": micro_time(renewed - timedelta(seconds=5)), "renewTime": micro_time(renewed), "leaseTransitions": 2,
    })


# ---- names and times ------------------------------------------------------------------------


def test_lease_name_is_a_dns_subdomain_per_release():
    assert lease_name("web") == "helm-engine.web"
    longest = "a" * 53  # helm's limit for a release name
    assert len(lease_name(longest)) <= 253
    assert lease_name("web") != lease_name("web2")


@pytest.mark.parametrize("stale_after, seconds", [(360.0, 360), (65.5, 66), (1.0, 5), (0.0, 5)])
def test_lease_duration_follows_the_stale_threshold_with_a_floor(stale_after, seconds):
    assert lease_duration(stale_after) == seconds


def test_micro_time_is_kubernetes_micro_time():
    assert micro_time(datetime(2026, 12, 2, 8, 0, 1, 42, tzinfo=timezone.utc)) == "2026-12-02T08:00:01.000042Z"


@pytest.mark.parametrize(
    "spec, expired",
    [
        ({"holderIdentity": "x", "renewTime": "2026-12-02T07:59:00.000000Z", "leaseDurationSeconds": 60}, True),
        ({"holderIdentity": "x", "renewTime": "2026-12-02T07:59:00.500000Z", "leaseDurationSeconds": 60}, False),
        ({"holderIdentity": "x", "acquireTime": "2026-12-02T07:58:00Z", "leaseDurationSeconds": 60}, True),
        ({"holderIdentity": "", "renewTime": "2026-12-02T08:00:00Z", "leaseDurationSeconds": 60}, True),
        ({"renewTime": "2026-12-02T08:00:00Z", "leaseDurationSeconds": 60}, True),
        # Unreadable: it expires only by its own word, so it counts as held.
        ({"holderIdentity": "x", "leaseDurationSeconds": 60}, False),
        ({"holderIdentity": "x", "renewTime": "yesterday", "leaseDurationSeconds": 60}, False),
        ({"holderIdentity": "x", "renewTime": "2026-12-02T07:00:00Z"}, False),
    ],
)
def test_is_expired(spec, expired):
    assert is_expired({"spec": spec}, T0) is expired


def test_holder_of_says_who_since_when_and_until_when():
    lease = {"metadata": {"name": "helm-engine.web", "annotations": {"helm-engine.ai-mesh.io/operation": "helm_rollback"}},
             "spec": {"holderIdentity": "h/pid-1/x", "acquireTime": "2026-12-02T07:59:30.000000Z",
                      "renewTime": "2026-12-02T07:59:50.000000Z", "leaseDurationSeconds": 30}}
    assert holder_of(lease, T0) == {
        "lease": "helm-engine.web", "holder": "h/pid-1/x", "operation": "helm_rollback",
        "since": "2026-12-02T07:59:30.000000Z", "renewed": "2026-12-02T07:59:50.000000Z", "duration_seconds": 30,
        "expires": "2026-12-02T08:00:20.000000Z", "expires_in_seconds": 20.0,
    }


# ---- taking and letting go ------------------------------------------------------------------


def test_a_free_lock_is_created_held_and_deleted_at_the_end():
    api, clock = FakeLeaseApi(), Clock()
    with make_lock(api, clock, duration=360) as lock:
        stored = api.leases[("apps", "helm-engine.web")]
        assert stored["spec"] == {"holderIdentity": "me/pid-1/aaaa", "leaseDurationSeconds": 360,
                                  "acquireTime": "2026-12-02T08:00:00.000000Z", "renewTime": "2026-12-02T08:00:00.000000Z",
                                  "leaseTransitions": 0}
        assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "ai_mesh.helm_engine"}
        assert stored["metadata"]["annotations"] == {"helm-engine.ai-mesh.io/operation": "helm_deploy"}
        assert lock.waited == 0 and lock.taken_over is None and lock.unlocked_reason is None
    assert api.leases == {}
    assert api.calls == [("create", "helm-engine.web"), ("delete", "helm-engine.web")]


def test_the_lease_is_deleted_when_the_operation_fails():
    api, clock = FakeLeaseApi(), Clock()
    with pytest.raises(EngineError, match="boom"):
        with make_lock(api, clock):
            raise EngineError(KUBERNETES_API, "boom")
    assert api.leases == {}


def test_a_lease_that_cannot_be_deleted_is_left_to_expire():
    api, clock = FakeLeaseApi(), Clock()
    api.fail_delete = KubeError(KUBERNETES_API, "DELETE: Kubernetes API error 500", details={"status": 500})
    with make_lock(api, clock):
        pass
    assert ("apps", "helm-engine.web") in api.leases


def test_a_held_lock_fails_at_once_naming_holder_and_since():
    api, clock = FakeLeaseApi(), Clock()
    other_holder(api)
    with pytest.raises(EngineError) as raised:
        make_lock(api, clock).acquire()
    error = raised.value
    assert error.kind == RELEASE_LOCKED
    assert "ci-runner/pid-77/bbbb" in error.msg and "since 2026-12-02T07:59:55.000000Z" in error.msg
    assert "at once (lock_wait: 0)" in error.msg
    assert error.details["lock"]["holder"] == "ci-runner/pid-77/bbbb"
    assert error.details["lock"]["expires"] == "2026-12-02T08:01:00.000000Z"
    assert error.details["lock"]["namespace"] == "apps" and error.details["lock"]["waited_seconds"] == 0
    assert clock.slept == []
    assert api.leases[("apps", "helm-engine.web")]["spec"]["holderIdentity"] == "ci-runner/pid-77/bbbb"
    assert [c[0] for c in api.calls] == ["create", "get"]


def test_lock_wait_waits_until_the_holder_lets_go():
    api, clock = FakeLeaseApi(), Clock()
    other_holder(api)
    clock.on_sleep = lambda n: api.leases.clear() if n == 3 else None
    with make_lock(api, clock, wait=30) as lock:
        assert api.leases[("apps", "helm-engine.web")]["spec"]["holderIdentity"] == "me/pid-1/aaaa"
        assert lock.waited == 3.0
    assert clock.slept == [1.0, 1.0, 1.0]


def test_lock_wait_gives_up_at_its_deadline():
    api, clock = FakeLeaseApi(), Clock()
    other_holder(api, duration=3600)
    with pytest.raises(EngineError) as raised:
        make_lock(api, clock, wait=2.5).acquire()
    assert raised.value.kind == RELEASE_LOCKED
    assert clock.slept == [1.0, 1.0, 0.5]
    assert "after waiting 2.5s (lock_wait)" in raised.value.msg
    assert raised.value.details["lock"]["waited_seconds"] == 2.5


def test_an_expired_lease_is_taken_over_with_its_resource_version():
    api, clock = FakeLeaseApi(), Clock()
    old = other_holder(api, renewed=T0 - timedelta(seconds=61), duration=60)
    with make_lock(api, clock) as lock:
        stored = api.leases[("apps", "helm-engine.web")]
        assert stored["spec"]["holderIdentity"] == "me/pid-1/aaaa"
        assert stored["spec"]["leaseTransitions"] == 3
        assert stored["spec"]["acquireTime"] == micro_time(T0)
        assert stored["metadata"]["uid"] == old["metadata"]["uid"]
        assert lock.taken_over["holder"] == "ci-runner/pid-77/bbbb"
        assert lock.taken_over["expires_in_seconds"] == -1.0
    assert api.leases == {}
    assert [c[0] for c in api.calls] == ["create", "get", "replace", "delete"]


def test_of_two_runs_taking_over_the_same_expired_lease_one_wins():
    api, clock = FakeLeaseApi(), Clock()
    other_holder(api, renewed=T0 - timedelta(hours=1))
    winner = make_lock(api, clock, identity="winner/pid-2/cccc")
    # The other run reads the same expired lease, then the winner's update lands first.
    api.before_replace = winner.acquire
    with pytest.raises(EngineError) as raised:
        make_lock(api, clock).acquire()
    assert raised.value.kind == RELEASE_LOCKED
    assert raised.value.details["lock"]["holder"] == "winner/pid-2/cccc"
    assert api.leases[("apps", "helm-engine.web")]["spec"]["holderIdentity"] == "winner/pid-2/cccc"


def test_a_lease_deleted_between_create_and_read_is_created_again():
    api, clock = FakeLeaseApi(), Clock()
    other_holder(api)
    real_get = api.get

    def get_once_gone(namespace: str, name: str) -> dict[str, t.Any] | None:
        api.get = real_get  # type: ignore[method-assign]
        api.leases.clear()
        return None

    api.get = get_once_gone  # type: ignore[method-assign]
    with make_lock(api, clock):
        assert api.leases[("apps", "helm-engine.web")]["spec"]["holderIdentity"] == "me/pid-1/aaaa"


def test_a_missing_namespace_goes_on_unlocked():
    api, clock = FakeLeaseApi(namespace_exists=False), Clock()
    with make_lock(api, clock) as lock:
        assert lock.unlocked_reason == "namespace 'apps' did not exist yet (no lease to hold)"
    assert api.calls == [("create", "helm-engine.web")]


# ---- check mode -----------------------------------------------------------------------------


def test_check_mode_reads_and_never_writes():
    api, clock = FakeLeaseApi(), Clock()
    with make_lock(api, clock, check_only=True):
        pass
    assert api.calls == [("get", "helm-engine.web")]
    other_holder(api)
    with pytest.raises(EngineError) as raised:
        make_lock(api, clock, check_only=True).acquire()
    assert raised.value.kind == RELEASE_LOCKED
    assert all(call[0] == "get" for call in api.calls)
    expired = FakeLeaseApi()
    other_holder(expired, renewed=T0 - timedelta(hours=1))
    with make_lock(expired, clock, check_only=True) as lock:
        assert lock.lease is None
    assert all(call[0] == "get" for call in expired.calls)


def test_check_mode_with_an_identity_that_may_not_read_leases_previews_anyway():
    class Forbidden(FakeLeaseApi):
        def get(self, namespace: str, name: str) -> dict[str, t.Any] | None:
            raise KubeError(FORBIDDEN, "GET leases: forbidden (403)", details={"status": 403})

        def create(self, namespace: str, body: dict[str, t.Any]) -> dict[str, t.Any] | None:
            raise KubeError(FORBIDDEN, "POST leases: forbidden (403)", details={"status": 403})

    with make_lock(Forbidden(), Clock(), check_only=True) as lock:
        assert lock.unlocked_reason == "the identity may not read leases"
    # RBAC written for helm alone: a real run goes on without the lease, and says why.
    with make_lock(Forbidden(), Clock()) as lock:
        assert lock.lease is None
        assert lock.unlocked_reason.startswith("the identity may not create leases (get, create, update and delete")


def test_other_api_errors_when_taking_the_lock_fail_the_run():
    class Broken(FakeLeaseApi):
        def create(self, namespace: str, body: dict[str, t.Any]) -> dict[str, t.Any] | None:
            raise KubeError(KUBERNETES_API, "POST leases: 500", details={"status": 500})

    with pytest.raises(KubeError):
        make_lock(Broken(), Clock()).acquire()


# ---- renewing ------------------------------------------------------------------------------


def test_renewal_moves_renew_time_and_keeps_acquire_time():
    api, clock = FakeLeaseApi(), Clock()
    with make_lock(api, clock) as lock:
        clock.now += timedelta(seconds=20)
        assert lock.renew_once() is True
        spec = api.leases[("apps", "helm-engine.web")]["spec"]
        assert spec["renewTime"] == micro_time(T0 + timedelta(seconds=20))
        assert spec["acquireTime"] == micro_time(T0)
    assert api.leases == {}, "the renewed resourceVersion is the one deleted"


def test_a_lease_taken_over_after_it_expired_is_not_renewed_nor_deleted():
    api, clock = FakeLeaseApi(), Clock()
    with make_lock(api, clock) as lock:
        api.leases.clear()
        other_holder(api)
        assert lock.renew_once() is False
        assert lock.lost is True
    assert api.leases[("apps", "helm-engine.web")]["spec"]["holderIdentity"] == "ci-runner/pid-77/bbbb"
    assert api.calls[-1][0] == "replace"


def test_the_renewer_thread_renews_while_the_operation_runs():
    api = FakeLeaseApi()
    lock = ReleaseLock(api, "web", "apps", operation="helm_deploy", duration=3)
    assert lock.renew_interval == 1.0
    with lock:
        first = api.leases[("apps", "helm-engine.web")]["spec"]["renewTime"]
        time.sleep(1.4)
        assert api.leases[("apps", "helm-engine.web")]["spec"]["renewTime"] > first
    assert api.leases == {}
    assert not lock._renewer.is_alive()


# ---- the API adapter ------------------------------------------------------------------------


class FakeKube:
    def __init__(self, error: KubeError | None = None, answer: t.Any = None) -> None:
        self.error = error
        self.answer = answer
        self.requests: list[tuple[str, str, t.Any]] = []

    def get_json(self, path: str, query: t.Any = None, *, missing_ok: bool = False) -> t.Any:
        self.requests.append(("GET", path, missing_ok))
        if self.error is not None:
            raise self.error
        return self.answer

    def write_json(self, method: str, path: str, body: dict[str, t.Any]) -> t.Any:
        self.requests.append((method, path, body))
        if self.error is not None:
            raise self.error
        return self.answer


def status_error(status: int) -> KubeError:
    return KubeError(FORBIDDEN if status == 403 else KUBERNETES_API, f"Kubernetes API error {status}", details={"status": status})


def test_kube_lease_api_paths_escape_their_segments():
    kube = FakeKube(answer={"metadata": {}})
    api = KubeLeaseApi(kube)  # type: ignore[arg-type]
    api.get("apps", "helm-engine.web")
    api.create("apps", {"metadata": {"name": "helm-engine.web"}})
    api.replace("apps", "helm-engine.web", {"metadata": {}})
    api.delete("apps", "helm-engine.web", "u", "7")
    base = "/apis/coordination.k8s.io/v1/namespaces/apps/leases"
    assert [(m, p) for m, p, _ in kube.requests] == [
        ("GET", f"{base}/helm-engine.web"), ("POST", base), ("PUT", f"{base}/helm-engine.web"), ("DELETE", f"{base}/helm-engine.web")]
    assert kube.requests[0][2] is True, "a missing lease reads as None"
    assert kube.requests[3][2]["preconditions"] == {"uid": "u", "resourceVersion": "7"}
    with pytest.raises(Exception, match="cannot be used as a name"):
        api.get("..", "x")


def test_kube_lease_api_maps_refusals():
    api = KubeLeaseApi(FakeKube(status_error(409)))  # type: ignore[arg-type]
    for call in (lambda: api.create("apps", {}), lambda: api.replace("apps", "l", {}), lambda: api.delete("apps", "l", "u", "1")):
        with pytest.raises(LeaseConflict):
            call()
    assert KubeLeaseApi(FakeKube(status_error(404))).create("gone", {}) is None  # type: ignore[arg-type]
    with pytest.raises(LeaseConflict):
        KubeLeaseApi(FakeKube(status_error(404))).replace("apps", "l", {})  # type: ignore[arg-type]
    KubeLeaseApi(FakeKube(status_error(404))).delete("apps", "l", "u", "1")  # type: ignore[arg-type]
    with pytest.raises(KubeError) as raised:
        KubeLeaseApi(FakeKube(status_error(403))).create("apps", {})  # type: ignore[arg-type]
    assert raised.value.kind == FORBIDDEN
    assert "leases.coordination.k8s.io in namespace 'apps'" in raised.value.msg
    with pytest.raises(KubeError) as raised:
        KubeLeaseApi(FakeKube(status_error(500))).create("apps", {})  # type: ignore[arg-type]
    assert raised.value.kind == KUBERNETES_API


def test_a_holder_process_of_this_host_that_is_gone_frees_the_lease():
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    fresh = {"renewTime": micro_time(T0), "leaseDurationSeconds": 600}
    assert is_expired({"spec": dict(fresh, holderIdentity=f"{host}/pid-{gone.pid}/dead")}, T0) is True
    # Alive here, or on another host: held until it expires.
    assert is_expired({"spec": dict(fresh, holderIdentity=f"{host}/pid-{os.getppid()}/live")}, T0) is False
    assert is_expired({"spec": dict(fresh, holderIdentity=f"elsewhere/pid-{gone.pid}/dead")}, T0) is False
    assert is_expired({"spec": dict(fresh, holderIdentity="not an identity of ours")}, T0) is False
