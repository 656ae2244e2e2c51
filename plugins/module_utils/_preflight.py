# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Pre-deployment checks: everything that would make a deploy fail, found at once, changing nothing.

Each check adds its problems to one list instead of raising, so a single run reports every
problem (a forbidden kind, a missing CRD, a resource some other tool owns) and the operator fixes
them all before the first deploy. Only reads are made: GETs, discovery, the server-side dry run
of helm that helm_deploy itself decides with, and SelfSubjectAccessReviews (which the API server
answers without storing anything).
"""

from __future__ import annotations

import typing as t
from datetime import datetime, timezone
from dataclasses import dataclass, field, replace

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    FORBIDDEN,
    INVALID_VALUES,
    KUBERNETES_API,
    RELEASE_LOCKED,
    RENDER_FAILED,
    RESOURCE_CONFLICT,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rendered import (
    RELEASE_NAME,
    RELEASE_NAMESPACE,
    Rendered,
    ResourceType,
    ownership_gaps,
    rendered_objects,
    release_from_template,
    shipped_crds,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import path_segment
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._lock import KubeLeaseApi, holder_of, is_expired, lease_name
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._recovery import pending_info
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import RecoveryPolicy
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import latest

if t.TYPE_CHECKING:
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import HelmClient
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import DeploySpec
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._storage import ReleaseStore

CHECKS = ("cluster", "helm", "namespace", "lock", "render", "crds", "rbac", "ownership")
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
# What helm does to each rendered resource: reads it (existence, three-way merge), creates it,
# patches it (client-side merge patch on helm 3, server-side apply on helm 4).
RESOURCE_VERBS = ("get", "create", "patch")
# helm keeps each revision in a Secret of the release namespace.
STORAGE_VERBS = ("get", "list", "create", "update")

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass
class Problem:
    check: str
    kind: str
    message: str
    details: dict[str, t.Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, t.Any]:
        return dict({"check": self.check, "kind": self.kind, "message": self.message}, **self.details)


class Preflight:
    """Runs every check once, in order; a check that cannot run (the cluster is unreachable, the
    chart did not render) is marked skipped with the reason, never reported twice."""

    def __init__(
        self,
        store: ReleaseStore,
        detect_helm: t.Callable[[], HelmClient],
        spec: DeploySpec,
        policy: RecoveryPolicy,
    ) -> None:
        self.store = store
        self.kube: KubeClient = store.kube
        self.detect_helm = detect_helm
        self.spec = spec
        self.policy = policy
        self.problems: list[Problem] = []
        self.checks: dict[str, dict[str, t.Any]] = {}
        self.adoptable: list[dict[str, t.Any]] = []
        self.cluster_version: str | None = None
        self.helm_version: str | None = None
        self.namespace_exists: bool | None = None
        self.objects: list[Rendered] = []
        self.server_render_error: EngineError | None = None

    # ---- bookkeeping --------------------------------------------------------------------

    def _mark(self, check: str, status: str, detail: str) -> None:
        self.checks[check] = {"check": check, "status": status, "detail": detail}

    def _problem(self, check: str, kind: str, message: str, **details: t.Any) -> None:
        self.problems.append(Problem(check, kind, message, details))
        self._mark(check, FAILED, message if check not in self.checks else f"{len([p for p in self.problems if p.check == check])} problem(s)")

    def _skip(self, checks: t.Iterable[str], reason: str) -> None:
        for check in checks:
            if check not in self.checks:
                self._mark(check, SKIPPED, reason)

    # ---- the run ------------------------------------------------------------------------

    def run(self) -> dict[str, t.Any]:
        cluster_ok = self.check_cluster()
        helm = self.check_helm()
        if not cluster_ok:
            self._skip(CHECKS, "the cluster could not be reached")
            return self.report()
        self.check_namespace()
        pending = self.check_lock()
        if helm is None:
            self._skip(("render", "crds", "rbac", "ownership"), "no usable helm to render the chart")
            return self.report()
        if pending:
            # helm refuses even a dry run while the release is pending-*.
            self._skip(("render", "crds", "rbac", "ownership"), "the release is pending; helm does not render it until it is recovered")
            return self.report()
        release = self.check_render(helm)
        if release is None:
            self._skip(("crds", "rbac", "ownership"), "the chart did not render")
            return self.report()
        self.objects = rendered_objects(release, self.spec.namespace)
        types = self.check_crds(release)
        self.check_rbac(types)
        self.check_ownership(types)
        refused = self.server_render_error
        # An unknown kind is the crds check's to judge: helm's dry run cannot map a custom
        # resource whose CRD the chart ships in crds/ (helm installs those only in a real run).
        explained = any(p.check in ("crds", "rbac", "ownership") for p in self.problems)
        if refused is not None and "no matches for kind" not in refused.msg and not explained:
            # Refused for a reason no check names: that refusal is the problem.
            self.checks.pop("render", None)
            self._render_problem(refused)
        return self.report()

    def report(self) -> dict[str, t.Any]:
        return {
            "passed": not self.problems,
            "problems": [p.to_dict() for p in self.problems],
            "checks": [self.checks[c] for c in CHECKS if c in self.checks],
            "adoptable": self.adoptable,
            "resources": [
                {"api_version": o.api_version, "kind": o.kind, "namespace": o.namespace, "name": o.name, "hook": o.hook}
                for o in self.objects
            ],
            "cluster_version": self.cluster_version,
            "namespace_exists": self.namespace_exists,
        }

    # ---- checks -------------------------------------------------------------------------

    def check_cluster(self) -> bool:
        try:
            version = self.kube.get_json("/version") or {}
        except EngineError as exc:
            self._problem("cluster", exc.kind, exc.msg)
            return False
        self.cluster_version = version.get("gitVersion")
        self._mark("cluster", PASSED, f"reachable, Kubernetes {self.cluster_version}")
        return True

    def check_helm(self) -> HelmClient | None:
        try:
            helm = self.detect_helm()
            version = helm.version
        except EngineError as exc:
            self._problem("helm", exc.kind, exc.msg)
            return None
        self.helm_version = version.raw
        self._mark("helm", PASSED, f"helm {version.raw}")
        return helm

    def check_namespace(self) -> None:
        namespace = self.spec.namespace
        try:
            found = self.kube.get_json(f"/api/v1/namespaces/{path_segment(namespace)}", missing_ok=True)
        except EngineError as exc:
            if exc.kind == FORBIDDEN:
                # helm itself never reads the namespace object without create_namespace.
                self._mark("namespace", SKIPPED, f"the identity may not read namespace {namespace!r}")
                return
            self._problem("namespace", exc.kind, exc.msg)
            return
        self.namespace_exists = found is not None
        if found is not None:
            self._mark("namespace", PASSED, f"namespace {namespace!r} exists")
        elif self.spec.create_namespace:
            self._mark("namespace", PASSED, f"namespace {namespace!r} does not exist; the deploy creates it (create_namespace)")
        else:
            self._problem("namespace", KUBERNETES_API,
                          f"namespace {namespace!r} does not exist; create it first or set create_namespace: true.",
                          status=404, option="namespace")

    def check_lock(self) -> bool:
        """True when the latest revision is pending-*. Also a problem: another run of
        helm_deploy or helm_rollback holding the release's lock (its Lease)."""
        pending = self.check_pending()
        self.check_lease()
        return pending

    def check_lease(self) -> None:
        """Read-only. A lease the identity may not read is not reported here: the rbac check
        covers the chart's kinds, and the deploy itself names the rights it lacks."""
        try:
            lease = KubeLeaseApi(self.kube).get(self.spec.namespace, lease_name(self.spec.release))
        except EngineError:
            return
        now = datetime.now(timezone.utc)
        if lease is None or is_expired(lease, now):
            return
        info = holder_of(lease, now)
        self._problem("lock", RELEASE_LOCKED,
                      f"release {self.spec.namespace}/{self.spec.release} is locked by another run: {info['holder']} "
                      f"({info['operation']}) holds Lease {info['lease']} since {info['since']}.", lock=info)

    def check_pending(self) -> bool:
        """True when the latest revision is pending-*. Read-only: what helm_deploy's recovery
        would decide, without marking or rolling back anything."""
        try:
            history = self.store.history(self.spec.release, self.spec.namespace)
        except EngineError as exc:
            self._problem("lock", exc.kind, f"the release history (helm's Secrets) cannot be read: {exc.msg}")
            return False
        current = latest(history)
        if current is None or not current.is_pending:
            state = f"revision {current.revision} is {current.status}" if current else "no release yet"
            self._mark("lock", PASSED, f"not locked ({state})")
            return False
        info = pending_info(current, self.policy.stale_after)
        where = f"release {current.namespace}/{current.name} is {current.status} (revision {current.revision}) since {current.updated}"
        if not info["stale"]:
            self._problem("lock", RELEASE_LOCKED, f"{where}: another helm operation may still be running.", pending=info)
        elif not self.policy.recover_pending:
            self._problem("lock", RELEASE_LOCKED, f"{where}; it is stale, but recover_pending is false.", pending=info)
        else:
            self._mark("lock", PASSED, f"{where}; it is stale and helm_deploy would recover it first")
        return True

    def check_render(self, helm: HelmClient) -> dict[str, t.Any] | None:
        try:
            release = helm.render(self.spec)
        except EngineError as exc:
            if exc.kind in (FORBIDDEN, RESOURCE_CONFLICT) or "no matches for kind" in exc.msg:
                # The chart rendered, but helm's dry run then mapped or read the resources it
                # would create and was refused: a kind the cluster does not serve, RBAC, or
                # resources it does not own. The crds, rbac and ownership checks report those
                # one by one; render without the cluster to run them.
                return self._render_client_side(helm, exc)
            self._render_problem(exc)
            if exc.kind == INVALID_VALUES and "schema" in (exc.stderr or exc.msg).lower() and not self.spec.skip_schema_validation:
                return self._render_despite_schema(helm)
            return None
        summary = self.store.decode(release)
        self._mark("render", PASSED, f"{summary.chart}-{summary.chart_version} renders (server-side dry run)")
        return release

    def _render_despite_schema(self, helm: HelmClient) -> dict[str, t.Any] | None:
        """The schema refused the values (already a problem); render once more without the
        schema so the checks that need the resources (crds, rbac, ownership) still run, and
        one preflight lists every problem. helm < 3.16 lacks the flag: then they are skipped."""
        unchecked = replace(self.spec, skip_schema_validation=True)
        try:
            return helm.render(unchecked)
        except EngineError as exc:
            if exc.kind in (FORBIDDEN, RESOURCE_CONFLICT) or "no matches for kind" in exc.msg:
                try:
                    release = release_from_template(helm.template(unchecked))
                except EngineError:
                    return None
                self.server_render_error = exc
                return release
            return None

    def _render_client_side(self, helm: HelmClient, server_error: EngineError) -> dict[str, t.Any] | None:
        try:
            release = release_from_template(helm.template(self.spec))
        except EngineError as exc:
            self._render_problem(exc)
            if exc.kind == INVALID_VALUES and "schema" in (exc.stderr or exc.msg).lower() and not self.spec.skip_schema_validation:
                return self._render_despite_schema(helm)
            return None
        self.server_render_error = server_error
        self._mark("render", PASSED, f"the chart renders (helm template; the server-side dry run was refused: {server_error.msg})")
        return release

    def _render_problem(self, exc: EngineError) -> None:
        message = exc.msg
        if exc.kind == INVALID_VALUES and "schema" in (exc.stderr or exc.msg).lower():
            lines = [line.strip() for line in (exc.stderr or "").splitlines()]
            reasons = [line.strip(" -") for line in lines if line.startswith("- at ")]
            # helm names each chart whose schema refused the values on a line of its own.
            charts = [line[:-1] for line in lines if line.endswith(":") and " " not in line and not line.startswith("Error")]
            schema = f"values.schema.json of chart {', '.join(charts)}" if charts else "the chart's values.schema.json"
            message = f"the values do not match {schema}" + (f": {'; '.join(reasons)}" if reasons else f": {exc.msg}")
        self._problem("render", exc.kind, message)

    def _type_of(self, api_version: str, kind: str, shipped: dict[tuple[str, str], ResourceType]) -> ResourceType | None:
        resource = self.kube.served_resources(api_version).get(kind)
        if resource is not None:
            return ResourceType(resource["name"], bool(resource.get("namespaced")))
        return shipped.get((api_version, kind))

    def check_crds(self, release: dict[str, t.Any]) -> dict[tuple[str, str], ResourceType]:
        shipped = shipped_crds(release, skip_crds=self.spec.skip_crds)
        types: dict[tuple[str, str], ResourceType] = {}
        before = len(self.problems)
        for api_version, kind in sorted({(o.api_version, o.kind) for o in self.objects}):
            try:
                found = self._type_of(api_version, kind, shipped)
            except EngineError as exc:
                self._problem("crds", exc.kind, f"discovery of {api_version} failed: {exc.msg}")
                continue
            if found is None:
                self._problem("crds", RENDER_FAILED,
                              f"{kind} ({api_version}) is not served by the cluster and the chart does not ship its "
                              "CustomResourceDefinition in crds/; install the CRD first.",
                              api_version=api_version, resource_kind=kind)
                continue
            types[(api_version, kind)] = found
        if len(self.problems) == before:
            self._mark("crds", PASSED, f"all {len(types)} kind(s) are served or shipped with the chart")
        return types

    def _allowed(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        attributes = {"verb": verb, "group": group, "resource": resource}
        if namespace:
            attributes["namespace"] = namespace
        review = self.kube.post_json(SSAR_PATH, {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        })
        return bool(((review or {}).get("status") or {}).get("allowed"))

    def check_rbac(self, types: dict[tuple[str, str], ResourceType]) -> None:
        # (group, resource, namespace) -> (kind label, verbs); one problem per kind and namespace.
        wanted: dict[tuple[str, str, str | None], tuple[str, set[str]]] = {}

        def want(kind: str, group: str, resource: str, namespace: str | None, verbs: t.Iterable[str]) -> None:
            entry = wanted.setdefault((group, resource, namespace), (kind, set()))
            entry[1].update(verbs)

        for obj in self.objects:
            found = types.get((obj.api_version, obj.kind))
            if found is not None:
                want(obj.kind, obj.group, found.resource, obj.namespace if found.namespaced else None, RESOURCE_VERBS)
        want("Secret", "", "secrets", self.spec.namespace, STORAGE_VERBS)
        if self.namespace_exists is False and self.spec.create_namespace:
            want("Namespace", "", "namespaces", None, ("create",))
        before = len(self.problems)
        for (group, resource, namespace), (kind, verbs) in sorted(wanted.items(), key=lambda i: (i[0][0], i[0][1], i[0][2] or "")):
            try:
                denied = [v for v in sorted(verbs) if not self._allowed(v, group, resource, namespace)]
            except EngineError as exc:
                self._problem("rbac", exc.kind, f"the access review for {kind} failed: {exc.msg}")
                return
            if denied:
                where = f"in namespace {namespace!r}" if namespace else "(cluster-scoped)"
                resource_name = f"{group}/{resource}" if group else resource
                self._problem("rbac", FORBIDDEN, f"{kind} ({resource_name}) {where}: the identity may not {', '.join(denied)}.",
                              resource_kind=kind, resource=resource_name, namespace=namespace, verbs=denied)
        if len(self.problems) == before:
            self._mark("rbac", PASSED, f"the identity may {'/'.join(RESOURCE_VERBS)} all {len(wanted)} resource type(s)")

    def check_ownership(self, types: dict[tuple[str, str], ResourceType]) -> None:
        """Every rendered (non-hook) object that already exists must be this release's, or be
        adopted with take_ownership; helm refuses to install over anything else."""
        before = len(self.problems)
        unreadable = []
        for obj in self.objects:
            found = types.get((obj.api_version, obj.kind))
            if obj.hook or found is None:
                continue
            if found.namespaced and self.namespace_exists is False:
                continue  # nothing can exist in a namespace that does not
            try:
                live = self.kube.get_object(obj.api_version, obj.kind, obj.namespace if found.namespaced else None, obj.name)
            except EngineError as exc:
                if exc.kind == FORBIDDEN:
                    unreadable.append(obj.label())  # the rbac check reports the missing verb
                    continue
                self._problem("ownership", exc.kind, f"{obj.label()} cannot be read: {exc.msg}")
                continue
            if live is None:
                continue
            gaps = ownership_gaps(live, self.spec.release, self.spec.namespace)
            if not gaps:
                continue
            annotations = (live.get("metadata") or {}).get("annotations") or {}
            owner = annotations.get(RELEASE_NAME)
            entry = {
                "api_version": obj.api_version, "kind": obj.kind, "name": obj.name,
                "namespace": obj.namespace if found.namespaced else None,
                "owner": f"{annotations.get(RELEASE_NAMESPACE, '')}/{owner}" if owner else None,
                "missing": gaps,
            }
            if self.spec.take_ownership:
                self.adoptable.append(entry)
                continue
            held = f"release {entry['owner']}" if owner else "no release (created outside helm)"
            self._problem("ownership", RESOURCE_CONFLICT,
                          f"{obj.label()} exists and belongs to {held}; set take_ownership: true to adopt it.",
                          **{k: v for k, v in entry.items() if k != "kind"}, resource_kind=obj.kind)
        if len(self.problems) == before:
            detail = f"{len(self.adoptable)} existing resource(s) would be adopted" if self.adoptable else "no existing resource conflicts"
            if unreadable:
                detail += f"; not readable by the identity: {', '.join(unreadable)}"
            self._mark("ownership", PASSED, detail)


def summary(problems: list[dict[str, t.Any]]) -> str:
    """One message listing every problem, for ``msg``."""
    lines = [f"[{p['check']}/{p['kind']}] {p['message']}" for p in problems]
    return f"preflight found {len(problems)} problem(s): " + " | ".join(lines)


def failure(report: dict[str, t.Any]) -> EngineError:
    """The one failure of a run with problems: the first problem's kind, every problem listed."""
    problems = report["problems"]
    error = EngineError(problems[0]["kind"], summary(problems), details={"problems": len(problems)})
    error.extra.update(report)
    return error
