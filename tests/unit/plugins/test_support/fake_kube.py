# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one fake Kubernetes cluster of the unit tests.

``FakeKube`` is the collection's real ``KubeClient`` with its transport replaced: every method
(the release store's reads and writes, discovery, lists in pages, request counting) runs as in
production, and only ``_call``, the REST boundary, is answered by an in-memory ``FakeApi``.
So a test that passes here exercises the same request paths the cluster sees.

``FakeApi`` keeps objects by REST path; a GET on a collection lists what lies directly below it
(``labelSelector`` with ``k=v``, ``k`` and ``!k`` terms is honoured); PATCH merges, POST
creates (409 when it exists, a new ``uid``), PUT replaces and DELETE removes, both checking
``resourceVersion`` and ``uid`` preconditions (409). Plain-text answers (a container's log) are
kept apart, by path. ``hooks`` answer or fail chosen requests before the store does.
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import BUILTIN_RESOURCES, KubeClient, api_error
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import parse_manifest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import decode_storage, storage_secret_name
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._storage import ReleaseStore
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import storage_secret

# A hook sees (method, path, query, body); it returns an answer, raises, or returns None to let
# the store answer.
Hook = t.Callable[[str, str, t.Dict[str, str], t.Any], t.Any]

SERVER_VERSION = "v1.36.3"


class ApiStatus(Exception):
    """An API error as the kubernetes client raises it: ``status`` and ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def object_path(api_version: str, kind: str, namespace: str | None, name: str) -> str:
    """The REST path of a built-in kind's object, as KubeClient.object_path builds it."""
    plural, namespaced = BUILTIN_RESOURCES[(api_version, kind)]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced and namespace:
        base += f"/namespaces/{namespace}"
    return f"{base}/{plural}/{name}"


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    """Equality (``k=v``) and existence (``k``, ``!k``) terms of a label selector."""
    for term in filter(None, (selector or "").split(",")):
        key, equals, value = term.partition("=")
        if not equals:  # "k": the label exists; "!k": it does not
            if (key.lstrip("!") in labels) == key.startswith("!"):
                return False
        elif labels.get(key) != value:
            return False
    return True


def stored_form(obj: dict[str, t.Any]) -> dict[str, t.Any]:
    """What the API server keeps of an object it is given: a Secret's stringData as data."""
    if obj.get("kind") == "Secret" and isinstance(obj.get("stringData"), dict):
        data = dict(obj.get("data") or {})
        data.update({k: base64.b64encode(str(v).encode()).decode() for k, v in obj.pop("stringData").items()})
        obj["data"] = data
    return obj


def _merge(target: dict[str, t.Any], patch: dict[str, t.Any]) -> dict[str, t.Any]:
    """JSON merge patch (RFC 7386): null deletes a key, objects merge, the rest replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class FakeApi:
    """In-memory API server state shared by every FakeKube a test builds."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, t.Any]] = {}
        self.texts: dict[str, str] = {}  # plain-text answers by path (a pod's /log)
        self.requests: list[tuple[str, str]] = []
        self.reads: list[tuple[str, dict[str, str]]] = []  # (path, query) of every GET
        self.writes: list[tuple[str, str, t.Any]] = []  # (method, path, body) of every write
        self.applies: list[tuple[str, bool]] = []  # (path, dry run) of every server-side apply
        self.hooks: list[Hook] = []
        self.server_version = SERVER_VERSION
        # (apiVersion, APIResource) the cluster serves besides the built-in kinds (CRDs).
        self.served: list[tuple[str, dict[str, t.Any]]] = []
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)

    # ---- building the cluster -------------------------------------------------------------

    def put(self, path: str, obj: dict[str, t.Any]) -> dict[str, t.Any]:
        stored = stored_form(copy.deepcopy(obj))
        meta = stored.setdefault("metadata", {})
        meta.setdefault("name", path.rsplit("/", 1)[-1])
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[path] = stored
        return stored

    def put_text(self, path: str, text: str) -> None:
        """A plain-text answer at ``path``, as a container's log: ``.../pods/<pod>/log``."""
        self.texts[path] = text

    def add_release(self, document: dict[str, t.Any], labels: dict[str, str] | None = None) -> None:
        """A revision as helm stores it: its Secret, payload and labels."""
        secret = storage_secret(document, labels)
        self.put(self.release_path(document["name"], document["namespace"], document["version"]), secret)

    def set_releases(self, documents: t.Sequence[dict[str, t.Any]], labels: dict[str, str] | None = None) -> None:
        """The release history is exactly these revisions (``labels`` on the latest)."""
        for path in [p for p in self.objects if "/secrets/sh.helm.release.v1." in p]:
            del self.objects[path]
        for index, document in enumerate(documents):
            self.add_release(document, labels if index == len(documents) - 1 else None)

    def put_object(self, obj: dict[str, t.Any]) -> dict[str, t.Any]:
        """An object of a built-in kind, stored where the API serves it."""
        meta = obj.get("metadata") or {}
        return self.put(object_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]), obj)

    def put_live(self, kind: str, name: str, obj: dict[str, t.Any] | None = None, namespace: str = "apps") -> dict[str, t.Any]:
        """``obj`` (status, spec, labels...) as the live object ``kind``/``name`` of a built-in
        kind: apiVersion, kind, name and namespace filled in."""
        api_version = next(version for version, known in BUILTIN_RESOURCES if known == kind)
        meta = dict((obj or {}).get("metadata") or {}, name=name)
        if BUILTIN_RESOURCES[(api_version, kind)][1]:
            meta["namespace"] = namespace
        return self.put_object(dict(obj or {}, apiVersion=api_version, kind=kind, metadata=meta))

    def script_releases(self, histories: t.Sequence[t.Sequence[dict[str, t.Any]]]) -> None:
        """Each read of the release history first replaces it with the next of ``histories``
        (the last one stays): a release that moves while a module polls it."""
        remaining = [list(h) for h in histories]

        def hook(method: str, path: str, _query: dict[str, str], _body: t.Any) -> None:
            if method == "GET" and path.endswith("/secrets") and remaining:
                self.set_releases(remaining.pop(0))

        self.hooks.append(hook)

    @staticmethod
    def release_path(name: str, namespace: str, revision: int) -> str:
        return f"/api/v1/namespaces/{namespace}/secrets/{storage_secret_name(name, revision)}"

    def labels_of_release(self, name: str, namespace: str, revision: int) -> dict[str, str]:
        return dict(self.objects[self.release_path(name, namespace, revision)]["metadata"].get("labels") or {})

    def releases(self, name: str = "web", namespace: str = "apps") -> list[dict[str, t.Any]]:
        """The stored revisions of a release, decoded, oldest first."""
        prefix = f"/api/v1/namespaces/{namespace}/secrets/sh.helm.release.v1.{name}.v"
        documents = [decode_storage(base64.b64decode(obj["data"]["release"]))
                     for path, obj in self.objects.items() if path.startswith(prefix)]
        return sorted(documents, key=lambda d: d["version"])

    def roll_back(self, target: int, name: str = "web", namespace: str = "apps") -> None:
        """What ``helm rollback`` stores: the deployed revision superseded, the target's copy
        deployed as a new revision."""
        history = self.releases(name, namespace)
        for document in history:
            if document["info"]["status"] == "deployed":
                document["info"]["status"] = "superseded"
        copied = copy.deepcopy(next(d for d in history if d["version"] == target))
        copied["version"] = max(d["version"] for d in history) + 1
        copied["info"].update(status="deployed", description=f"Rollback to {target}")
        self.set_releases(history + [copied])

    def marked_failed(self) -> list[tuple[int, str]]:
        """(revision, description) of every revision this collection rewrote as failed."""
        found = []
        for method, path, body in self.writes:
            if method == "PATCH" and "/secrets/sh.helm.release.v1." in path and (body or {}).get("data"):
                document = decode_storage(base64.b64decode(body["data"]["release"]))
                found.append((document["version"], document["info"]["description"]))
        return found

    def fail(self, method: str, path_suffix: str, status: int = 500, reason: str = "boom") -> None:
        """From now on, ``method`` on a path ending in ``path_suffix`` fails with ``status``."""

        def hook(seen_method: str, path: str, _query: dict[str, str], _body: t.Any) -> None:
            if seen_method == method and path.endswith(path_suffix):
                raise ApiStatus(status, reason)

        self.hooks.append(hook)

    def label_patches(self) -> list[tuple[int, str, str]]:
        """(revision, key, value) of every label this collection set on a release's Secret."""
        found = []
        for method, path, body in self.writes:
            if method == "PATCH" and "/secrets/sh.helm.release.v1." in path and not (body or {}).get("data"):
                revision = int(path.rsplit(".v", 1)[1])
                found += [(revision, key, value) for key, value in ((body.get("metadata") or {}).get("labels") or {}).items()]
        return found

    def lease_writes(self) -> list[str]:
        return [method for method, path, _body in self.writes if "/leases" in path]

    def count(self, method: str, fragment: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and fragment in p)

    # ---- serving --------------------------------------------------------------------------

    def serve(self, method: str, path: str, query: dict[str, str] | None, body: t.Any,
              content_type: str = "application/json") -> t.Any:
        query = dict(query or {})
        self.requests.append((method, path))
        if method == "GET":
            self.reads.append((path, dict(query)))
        else:
            self.writes.append((method, path, copy.deepcopy(body)))
        for hook in self.hooks:
            answer = hook(method, path, query, body)
            if answer is not None:
                return copy.deepcopy(answer)
        if method == "GET":
            return self._get(path, query)
        if method == "PATCH" and content_type == "application/apply-patch+yaml":
            return self._apply(path, body, dry_run=query.get("dryRun") == "All")
        if method == "PATCH":
            return self._patch(path, body)
        if method == "POST":
            return self._create(path, body)
        if method == "PUT":
            return self._replace(path, body)
        if method == "DELETE":
            return self._delete(path, body)
        raise ApiStatus(405, f"{method} not allowed")

    def _get(self, path: str, query: dict[str, str]) -> t.Any:
        if path == "/version":
            return {"gitVersion": self.server_version}
        if path in self.texts:
            return self.texts[path]
        if re.fullmatch(r"/api/v1|/apis/[^/]+/[^/]+", path):
            return self._discovery(path)
        if path in self.objects:
            return copy.deepcopy(self.objects[path])
        prefix = path.rstrip("/") + "/"
        items = [copy.deepcopy(obj) for key, obj in sorted(self.objects.items())
                 if key.startswith(prefix) and "/" not in key[len(prefix):]
                 and _matches((obj.get("metadata") or {}).get("labels") or {}, query.get("labelSelector"))]
        if items or self._is_collection(path):
            return {"kind": "List", "metadata": {}, "items": items}
        raise ApiStatus(404, "Not Found")

    def _discovery(self, path: str) -> dict[str, t.Any]:
        """An APIResourceList: the built-in kinds of that group/version, and ``served`` ones."""
        api_version = "v1" if path == "/api/v1" else path[len("/apis/"):]
        resources = [{"kind": kind, "name": plural, "namespaced": namespaced}
                     for (version, kind), (plural, namespaced) in BUILTIN_RESOURCES.items() if version == api_version]
        resources += [dict(r) for version, r in self.served if version == api_version]
        if not resources:
            raise ApiStatus(404, "Not Found")
        return {"kind": "APIResourceList", "groupVersion": api_version, "resources": resources}

    @staticmethod
    def _is_collection(path: str) -> bool:
        """A plural resource path (namespaced or not): lists of nothing are empty, not 404."""
        parts = path.strip("/").split("/")
        return len(parts) >= 3 and (len(parts) % 2 == 1 if parts[0] == "api" else len(parts) % 2 == 0)

    def _patch(self, path: str, body: dict[str, t.Any]) -> t.Any:
        if path not in self.objects:
            raise ApiStatus(404, "Not Found")
        stored = _merge(self.objects[path], body)
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(stored)

    def _apply(self, path: str, body: dict[str, t.Any], *, dry_run: bool) -> t.Any:
        """Server-side apply, as far as a test needs it: the object is created when missing, its
        fields set otherwise (merged like a merge patch); a dry run stores nothing."""
        self.applies.append((path, dry_run))
        if path not in self.objects:
            created = stored_form(copy.deepcopy(body))
            return created if dry_run else copy.deepcopy(self.put(path, created))
        merged = stored_form(_merge(copy.deepcopy(self.objects[path]), copy.deepcopy(body)))
        if dry_run:
            return merged
        self.objects[path] = merged
        merged["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(merged)

    def deploy(self, document: dict[str, t.Any]) -> None:
        """The live objects of a revision, as helm leaves them (its manifest, nothing changed)."""
        for (api_version, kind, namespace, name), obj in parse_manifest(document.get("manifest") or "",
                                                                         document["namespace"]).items():
            namespaced = BUILTIN_RESOURCES.get((api_version, kind), ("", True))[1]
            self.put_object(dict(obj, metadata=dict(obj.get("metadata") or {}, name=name,
                                                    **({"namespace": namespace} if namespaced else {}))))

    def _create(self, path: str, body: dict[str, t.Any]) -> t.Any:
        name = (body.get("metadata") or {}).get("name")
        target = f"{path}/{name}"
        if target in self.objects:
            raise ApiStatus(409, "AlreadyExists")
        # The API server gives every object it creates a uid of its own: a lease deleted and
        # created again is not the one that was read.
        metadata = dict(body.get("metadata") or {}, uid=f"uid-{name}-{next(self._uids)}")
        return copy.deepcopy(self.put(target, dict(body, metadata=metadata)))

    def _check_preconditions(self, path: str, expected: dict[str, t.Any]) -> None:
        stored = self.objects[path]["metadata"]
        for key in ("uid", "resourceVersion"):
            if expected.get(key) and expected[key] != stored.get(key):
                raise ApiStatus(409, "Conflict: the object has been modified")

    def _replace(self, path: str, body: dict[str, t.Any]) -> t.Any:
        if path not in self.objects:
            raise ApiStatus(404, "Not Found")
        self._check_preconditions(path, body.get("metadata") or {})
        uid = self.objects[path]["metadata"]["uid"]
        stored = self.put(path, body)
        stored["metadata"]["uid"] = uid
        return copy.deepcopy(stored)

    def _delete(self, path: str, body: t.Any) -> t.Any:
        if path not in self.objects:
            raise ApiStatus(404, "Not Found")
        self._check_preconditions(path, ((body or {}).get("preconditions") or {}))
        return self.objects.pop(path)


class FakeKube(KubeClient):
    """``KubeClient`` over a ``FakeApi``: ``FakeKube.bind(api)`` makes the class a drop-in for
    ``_task.KubeClient`` (which modules build with a kubeconfig and a context)."""

    api: FakeApi = FakeApi()
    built: t.ClassVar[list[tuple[str | None, str | None]]] = []

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:  # pylint: disable=super-init-not-called
        # Nothing of the kubernetes library: the transport is the fake API.
        type(self).built.append((kubeconfig, context))
        self.request_count = 0
        self._server_version = None
        import threading

        self._server_version_lock = threading.Lock()

        self._count_lock = threading.Lock()

    @classmethod
    def bind(cls, api: FakeApi) -> type[FakeKube]:
        """A FakeKube class whose instances all serve ``api`` (one per test)."""
        return type("BoundFakeKube", (cls,), {"api": api, "built": []})

    def _call(self, method: str, path: str, *, text: bool = False, query: dict[str, str] | None = None,
              body: t.Any = None, content_type: str = "application/json") -> t.Any:
        with self._count_lock:
            self.request_count += 1
        try:
            return self.api.serve(method, path, query, body, content_type)
        except ApiStatus as exc:
            raise api_error(exc, f"{method} {path}") from None


def kube_client(api: FakeApi) -> FakeKube:
    """The real KubeClient over a fake cluster."""
    return FakeKube.bind(api)()


def release_store(api: FakeApi, redactor: Redactor | None = None) -> ReleaseStore:
    """The real release store over a fake cluster."""
    return ReleaseStore(kube_client(api), redactor or Redactor())
