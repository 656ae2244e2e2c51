# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
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
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, kube_client

T0 = datetime(2026, 12, 2, 8, 0, 0, tzinfo=timezone.utc)


LEASES = "/apis/coordination.k8s.io/v1/namespaces/apps/leases"
LEASE = f"{LEASES}/helm-engine.web"


def leases(api: FakeApi) -> dict[str, dict[str, t.Any]]:
    """The Leases the fake cluster holds, by path."""
    return {path: obj for path, obj in api.objects.items() if path.startswith(f"{LEASES}/")}


def methods(api: FakeApi) -> list[str]:
    return [method for method, _path in api.requests]


def once_before(api: FakeApi, method: str, action: t.Callable[[], None]) -> None:
    """Runs ``action`` when the lease is first sent ``method``, before the API server answers:
    a race decided exactly there."""
    pending = [action]

    def hook(seen: str, path: str, _query: t.Any, _body: t.Any) -> None:
        if seen == method and path == LEASE and pending:
            pending.pop()()

    api.hooks.append(hook)


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


def make_lock(api: FakeApi, clock: Clock, **kwargs: t.Any) -> ReleaseLock:
    kwargs.setdefault("duration", 60)
    return ReleaseLock(KubeLeaseApi(kube_client(api)), "web", "apps", operation="helm_deploy", identity=kwargs.pop("identity", "me/pid-1/aaaa"),
                       clock=clock.wall, monotonic=clock.monotonic, sleep=clock.sleep, renew=False, **kwargs)


def other_holder(api: FakeApi, *, renewed: datetime = T0, duration: int = 60) -> dict[str, t.Any]:
    """A lease another run wrote."""
    return api.put(LEASE, {"metadata": {"name": "helm-engine.web", "namespace": "apps", "annotations": {}}, "spec": {
        "holderIdentity": "ci-runner/pid-77/bbbb", "leaseDurationSeconds": duration,
        "acquireTime": micro_time(renewed - timedelta(seconds=5)), "renewTime": micro_time(renewed), "leaseTransitions": 2,
    }})


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
    api, clock = FakeApi(), Clock()
    with make_lock(api, clock, duration=360) as lock:
        stored = leases(api)[LEASE]
        assert stored["spec"] == {"holderIdentity": "me/pid-1/aaaa", "leaseDurationSeconds": 360,
                                  "acquireTime": "2026-12-02T08:00:00.000000Z", "renewTime": "2026-12-02T08:00:00.000000Z",
                                  "leaseTransitions": 0}
        assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "ai_mesh.helm_engine"}
        assert stored["metadata"]["annotations"] == {"helm-engine.ai-mesh.io/operation": "helm_deploy"}
        assert lock.waited == 0 and lock.taken_over is None and lock.unlocked_reason is None
    assert leases(api) == {}
    assert api.requests == [("POST", LEASES), ("DELETE", LEASE)]


def test_the_lease_is_deleted_when_the_operation_fails():
    api, clock = FakeApi(), Clock()
    with pytest.raises(EngineError, match="boom"):
        with make_lock(api, clock):
            raise EngineError(KUBERNETES_API, "boom")
    assert leases(api) == {}


def test_a_lease_that_cannot_be_deleted_is_left_to_expire():
    api, clock = FakeApi(), Clock()
    api.fail("DELETE", LEASE, 500)
    with make_lock(api, clock):
        pass
    assert LEASE in leases(api)


def test_a_held_lock_fails_at_once_naming_holder_and_since():
    api, clock = FakeApi(), Clock()
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
    assert leases(api)[LEASE]["spec"]["holderIdentity"] == "ci-runner/pid-77/bbbb"
    assert methods(api) == ["POST", "GET"]


def test_lock_wait_waits_until_the_holder_lets_go():
    api, clock = FakeApi(), Clock()
    other_holder(api)
    clock.on_sleep = lambda n: api.objects.pop(LEASE) if n == 3 else None
    with make_lock(api, clock, wait=30) as lock:
        assert leases(api)[LEASE]["spec"]["holderIdentity"] == "me/pid-1/aaaa"
        assert lock.waited == 3.0
    assert clock.slept == [1.0, 1.0, 1.0]


def test_lock_wait_gives_up_at_its_deadline():
    api, clock = FakeApi(), Clock()
    other_holder(api, duration=3600)
    with pytest.raises(EngineError) as raised:
        make_lock(api, clock, wait=2.5).acquire()
    assert raised.value.kind == RELEASE_LOCKED
    assert clock.slept == [1.0, 1.0, 0.5]
    assert "after waiting 2.5s (lock_wait)" in raised.value.msg
    assert raised.value.details["lock"]["waited_seconds"] == 2.5


def test_an_expired_lease_is_taken_over_with_its_resource_version():
    api, clock = FakeApi(), Clock()
    old = other_holder(api, renewed=T0 - timedelta(seconds=61), duration=60)
    with make_lock(api, clock) as lock:
        stored = leases(api)[LEASE]
        assert stored["spec"]["holderIdentity"] == "me/pid-1/aaaa"
        assert stored["spec"]["leaseTransitions"] == 3
        assert stored["spec"]["acquireTime"] == micro_time(T0)
        assert stored["metadata"]["uid"] == old["metadata"]["uid"]
        assert lock.taken_over["holder"] == "ci-runner/pid-77/bbbb"
        assert lock.taken_over["expires_in_seconds"] == -1.0
    assert leases(api) == {}
    assert methods(api) == ["POST", "GET", "PUT", "DELETE"]


def test_of_two_runs_taking_over_the_same_expired_lease_one_wins():
    api, clock = FakeApi(), Clock()
    other_holder(api, renewed=T0 - timedelta(hours=1))
    winner = make_lock(api, clock, identity="winner/pid-2/cccc")
    # The other run reads the same expired lease, then the winner's update lands first.
    once_before(api, "PUT", winner.acquire)
    with pytest.raises(EngineError) as raised:
        make_lock(api, clock).acquire()
    assert raised.value.kind == RELEASE_LOCKED
    assert raised.value.details["lock"]["holder"] == "winner/pid-2/cccc"
    assert leases(api)[LEASE]["spec"]["holderIdentity"] == "winner/pid-2/cccc"


def test_a_lease_deleted_between_create_and_read_is_created_again():
    api, clock = FakeApi(), Clock()
    other_holder(api)
    once_before(api, "GET", lambda: api.objects.pop(LEASE))
    with make_lock(api, clock):
        assert leases(api)[LEASE]["spec"]["holderIdentity"] == "me/pid-1/aaaa"


def test_a_missing_namespace_goes_on_unlocked():
    api, clock = FakeApi(), Clock()
    api.fail("POST", LEASES, 404, 'namespaces "apps" not found')
    with make_lock(api, clock) as lock:
        assert lock.unlocked_reason == "namespace 'apps' did not exist yet (no lease to hold)"
    assert api.requests == [("POST", LEASES)]


# ---- check mode -----------------------------------------------------------------------------


def test_check_mode_reads_and_never_writes():
    api, clock = FakeApi(), Clock()
    with make_lock(api, clock, check_only=True):
        pass
    assert api.requests == [("GET", LEASE)]
    other_holder(api)
    with pytest.raises(EngineError) as raised:
        make_lock(api, clock, check_only=True).acquire()
    assert raised.value.kind == RELEASE_LOCKED
    assert all(method == "GET" for method in methods(api))
    expired = FakeApi()
    other_holder(expired, renewed=T0 - timedelta(hours=1))
    with make_lock(expired, clock, check_only=True) as lock:
        assert lock.lease is None
    assert all(method == "GET" for method in methods(expired))


def test_check_mode_with_an_identity_that_may_not_read_leases_previews_anyway():
    def forbidden() -> FakeApi:
        api = FakeApi()
        api.fail("GET", LEASE, 403, "forbidden")
        api.fail("POST", LEASES, 403, "forbidden")
        return api

    with make_lock(forbidden(), Clock(), check_only=True) as lock:
        assert lock.unlocked_reason == "the identity may not read leases"
    # RBAC written for helm alone: a real run goes on without the lease, and says why.
    with make_lock(forbidden(), Clock()) as lock:
        assert lock.lease is None
        assert lock.unlocked_reason.startswith("the identity may not create leases (get, create, update and delete")


def test_other_api_errors_when_taking_the_lock_fail_the_run():
    broken = FakeApi()
    broken.fail("POST", LEASES, 500)
    with pytest.raises(KubeError):
        make_lock(broken, Clock()).acquire()


# ---- renewing ------------------------------------------------------------------------------


def test_renewal_moves_renew_time_and_keeps_acquire_time():
    api, clock = FakeApi(), Clock()
    with make_lock(api, clock) as lock:
        clock.now += timedelta(seconds=20)
        assert lock.renew_once() is True
        spec = leases(api)[LEASE]["spec"]
        assert spec["renewTime"] == micro_time(T0 + timedelta(seconds=20))
        assert spec["acquireTime"] == micro_time(T0)
    assert leases(api) == {}, "the renewed resourceVersion is the one deleted"


def test_a_lease_taken_over_after_it_expired_is_not_renewed_nor_deleted():
    api, clock = FakeApi(), Clock()
    with make_lock(api, clock) as lock:
        api.objects.pop(LEASE)
        other_holder(api)
        assert lock.renew_once() is False
        assert lock.lost is True
    assert leases(api)[LEASE]["spec"]["holderIdentity"] == "ci-runner/pid-77/bbbb"
    assert methods(api)[-1] == "PUT"


def test_the_renewer_thread_renews_while_the_operation_runs():
    api = FakeApi()
    lock = ReleaseLock(KubeLeaseApi(kube_client(api)), "web", "apps", operation="helm_deploy", duration=3)
    assert lock.renew_interval == 1.0
    with lock:
        first = leases(api)[LEASE]["spec"]["renewTime"]
        time.sleep(1.4)
        assert leases(api)[LEASE]["spec"]["renewTime"] > first
    assert leases(api) == {}
    assert not lock._renewer.is_alive()


# ---- the API adapter ------------------------------------------------------------------------


def refusing(status: int) -> KubeLeaseApi:
    """Leases over a cluster that refuses every request with ``status``."""
    api = FakeApi()
    for method in ("GET", "POST", "PUT", "DELETE"):
        api.fail(method, "", status)
    return KubeLeaseApi(kube_client(api))


def test_kube_lease_api_paths_escape_their_segments():
    cluster = FakeApi()
    cluster.hooks.append(lambda *request: {"metadata": {}})
    api = KubeLeaseApi(kube_client(cluster))
    api.get("apps", "helm-engine.web")
    api.create("apps", {"metadata": {"name": "helm-engine.web"}})
    api.replace("apps", "helm-engine.web", {"metadata": {}})
    api.delete("apps", "helm-engine.web", "u", "7")
    base = "/apis/coordination.k8s.io/v1/namespaces/apps/leases"
    assert cluster.requests == [
        ("GET", f"{base}/helm-engine.web"), ("POST", base), ("PUT", f"{base}/helm-engine.web"), ("DELETE", f"{base}/helm-engine.web")]
    assert KubeLeaseApi(kube_client(FakeApi())).get("apps", "helm-engine.web") is None, "a missing lease reads as None"
    assert cluster.writes[-1][2]["preconditions"] == {"uid": "u", "resourceVersion": "7"}
    with pytest.raises(Exception, match="cannot be used as a name"):
        api.get("..", "x")


def test_kube_lease_api_maps_refusals():
    api = refusing(409)
    for call in (lambda: api.create("apps", {}), lambda: api.replace("apps", "l", {}), lambda: api.delete("apps", "l", "u", "1")):
        with pytest.raises(LeaseConflict):
            call()
    assert refusing(404).create("gone", {}) is None
    with pytest.raises(LeaseConflict):
        refusing(404).replace("apps", "l", {})
    refusing(404).delete("apps", "l", "u", "1")
    with pytest.raises(KubeError) as raised:
        refusing(403).create("apps", {})
    assert raised.value.kind == FORBIDDEN
    assert "leases.coordination.k8s.io in namespace 'apps'" in raised.value.msg
    with pytest.raises(KubeError) as raised:
        refusing(500).create("apps", {})
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
