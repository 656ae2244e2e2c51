# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Several releases in one task (helm_releases): each item is helm_deploy's options, merged over
``defaults`` and the task's connection, and runs through helm_deploy's own engine (DeployManager:
the same lock, no-op decision, drift, fail-fast, recovery, cleanup and redaction), in groups
ordered by ``needs`` (see _graph.py), a few at a time inside a group.

A release that fails stops what needs it (skipped, with the reason); the others go on; the task
fails at the end naming what failed, what was skipped and what was rolled back.
"""

from __future__ import annotations

import copy
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    DEPLOY_ARG_SPEC,
    DEPLOY_EXCLUSIVE,
    HELM_ARG_SPEC,
    argument_spec,
    read_text_file,
    redacted_invocation,
    register_secrets,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._deploy import DeployManager
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import EngineError, InputError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._graph import Key, Node, blocked_by, groups, parse_need
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import ending_children_on_signal
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import Manager, TaskContext

MAX_RELEASES = 200
MAX_CONCURRENCY = 50
# The connection options: the task's are every release's, unless a release sets its own.
CONNECTION_OPTIONS = tuple(AUTH_ARG_SPEC) + tuple(HELM_ARG_SPEC)
ITEM_ARG_SPEC: dict[str, dict[str, t.Any]] = dict(
    argument_spec(**DEPLOY_ARG_SPEC),
    needs={"type": "list", "elements": "str", "default": []},
)


def _partial(spec: dict[str, t.Any]) -> dict[str, t.Any]:
    """The spec for one layer of a release's options (its own, or defaults): nothing required,
    no default and no environment fallback, so what is not given stays None and the layers merge."""
    partial = copy.deepcopy(spec)
    for option in partial.values():
        for key in ("default", "required", "fallback"):
            option.pop(key, None)
    return partial


def _checked(raw: t.Any, spec: dict[str, t.Any], where: str, *, exclusive: t.Sequence[t.Sequence[str]] = ()) -> dict[str, t.Any]:
    """``raw`` validated as Ansible validates a module's arguments (types, choices, aliases)."""
    if not isinstance(raw, dict):
        raise InputError(f"{where} must be a dict of helm_deploy's options, got {type(raw).__name__}.", option="releases")
    result = ArgumentSpecValidator(spec, mutually_exclusive=list(exclusive)).validate(raw)
    if result.error_messages:
        raise InputError(f"{where}: {result.error_messages[0]}", option="releases")
    return result.validated_parameters


class ReleaseItem:
    """One release of the task, its options merged and validated."""

    def __init__(self, index: int, params: dict[str, t.Any]) -> None:
        self.index = index
        self.params = params
        self.name = validate.release_name(params["name"], f"releases[{index}].name")
        self.namespace = validate.namespace(params["namespace"], f"releases[{index}].namespace")
        needs = []
        for need in params.get("needs") or []:
            validate.argument(need, f"releases[{index}].needs")
            space, name = parse_need(need, self.namespace)
            needs.append((validate.namespace(space, f"releases[{index}].needs"),
                          validate.release_name(name, f"releases[{index}].needs")))
        self.node = Node(index, self.namespace, self.name, params["state"] == "present", needs)


def release_items(params: dict[str, t.Any]) -> list[ReleaseItem]:
    """The task's releases, each its own options over ``defaults`` over the task's connection."""
    releases = params.get("releases") or []
    if not releases:
        raise InputError("releases is empty: name at least one release.", option="releases")
    if len(releases) > MAX_RELEASES:
        raise InputError(f"releases has {len(releases)} items; at most {MAX_RELEASES}.", option="releases")
    partial = _partial(ITEM_ARG_SPEC)
    defaults = _checked(params.get("defaults") or {}, partial, "defaults")
    connection = {option: params.get(option) for option in CONNECTION_OPTIONS}
    items = []
    for index, raw in enumerate(releases):
        own = _checked(raw, partial, f"releases[{index}]")
        merged = {k: v for k, v in connection.items() if v is not None}
        merged.update({k: v for k, v in defaults.items() if v is not None})
        merged.update({k: v for k, v in own.items() if v is not None})
        full = _checked(merged, copy.deepcopy(ITEM_ARG_SPEC), f"releases[{index}]", exclusive=DEPLOY_EXCLUSIVE)
        if full.get("wait_timeout") is not None:
            full["timeout"] = full["wait_timeout"]  # kubernetes.core's older name, as helm_deploy takes it
        items.append(ReleaseItem(index, full))
    return items


class ItemContext(TaskContext):
    """The context of one release of the task: its options, name, connection and helm client;
    the task's module, redactor and workspace; Kubernetes clients shared per connection."""

    def __init__(self, task: TaskContext, item: ReleaseItem, kube_clients: dict[tuple[str | None, str | None], KubeClient],
                 lock: threading.Lock) -> None:  # pylint: disable=super-init-not-called
        self.module = task.module
        self.check_mode = task.check_mode
        self.started = time.monotonic()
        self.redactor = task.redactor
        self._values_params = ("release_values",)
        self.workspace = task.workspace
        self._params = item.params
        self.children = []
        self._kube_clients = kube_clients
        self._kube_lock = lock
        self.warnings: list[str] = []
        timeout = validate.duration_seconds(item.params.get("timeout"), f"releases[{item.index}].timeout")
        self._bind(item.params, needs_helm=True, timeout=timeout)

    @property
    def params(self) -> dict[str, t.Any]:
        return self._params

    @property
    def diff(self) -> bool:
        return bool(getattr(self.module, "_diff", False))

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            context = None if self._kubeconfig_is_generated() else self.auth.context
            with self._kube_lock:
                key = (self.kubeconfig, context)
                if key not in self._kube_clients:
                    self._kube_clients[key] = KubeClient(self.kubeconfig, context)
                self._kube = self._kube_clients[key]
        return self._kube


class ReleasesManager(Manager):
    """Validates the whole list, orders it, then runs it group by group; see the module docstring."""

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        self.items: list[ReleaseItem] = []
        self.order: list[list[Node]] = []
        self.concurrency = 4
        self.kube_clients: dict[tuple[str | None, str | None], KubeClient] = {}
        self.kube_lock = threading.Lock()

    def validate(self) -> None:
        concurrency = self.params.get("concurrency")
        if concurrency is None or not 1 <= concurrency <= MAX_CONCURRENCY:
            raise InputError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}.", option="concurrency")
        self.concurrency = concurrency
        self.items = release_items(self.params)
        for item in self.items:
            # Every secret of every release is known before any release runs or anything is shown.
            validate.values_nesting(item.params, ["release_values"], read_text_file)
            register_secrets(self.context.redactor, item.params, ["release_values"])
        self.order = groups([item.node for item in self.items])

    def prepare(self) -> None:
        # Each release's context validates its own connection and finds its helm before anything runs.
        self.contexts = {item.index: ItemContext(self.context, item, self.kube_clients, self.kube_lock) for item in self.items}
        self.context.children = list(self.contexts.values())

    def execute(self) -> dict[str, t.Any]:
        by_index = {item.index: item for item in self.items}
        nodes = [item.node for item in self.items]
        outcomes: dict[int, dict[str, t.Any]] = {}
        stopped: set[Key] = set()  # failed or skipped
        with ending_children_on_signal():
            for group in self.order:
                runnable = []
                for node in group:
                    blockers = blocked_by(node, nodes, stopped)
                    if blockers:
                        stopped.add(node.key)
                        outcomes[node.index] = self.skipped(by_index[node.index], blockers)
                    else:
                        runnable.append(by_index[node.index])
                if not runnable:
                    continue
                with ThreadPoolExecutor(max_workers=min(self.concurrency, len(runnable))) as pool:
                    for item, outcome in zip(runnable, pool.map(self.run_one, runnable)):
                        outcomes[item.index] = outcome
                        if outcome.get("error"):
                            stopped.add(item.node.key)
        return self.result([outcomes[item.index] for item in self.items])

    def run_one(self, item: ReleaseItem) -> dict[str, t.Any]:
        context = self.contexts[item.index]
        started = time.monotonic()
        try:
            fields = DeployManager(context).run()
            error = None
        except EngineError as exc:
            fields = dict(exc.extra)
            error = exc
        outcome: dict[str, t.Any] = {
            "name": item.name,
            "namespace": item.namespace,
            "state": item.params["state"],
            "action": fields.get("action", "none"),
            "changed": bool(fields.get("changed")),
            "previous_revision": fields.get("previous_revision"),
            "revision": (fields.get("release") or {}).get("revision") if item.params["state"] == "present" else None,
            "changes": fields.get("changes", []),
            "drift": fields.get("drift", []),
            "started": round(started - self.context.started, 3),
            "duration": round(time.monotonic() - started, 3),
            "helm_processes": context.helm_usage()[1],
            "commands": context.helm_usage()[0],
        }
        for key in ("release", "left_behind", "cleaned", "recovery", "timeline", "diff"):
            if key in fields:
                outcome[key] = fields[key]
        if context.warnings:
            outcome["warnings"] = list(context.warnings)
        if error is not None:
            outcome["error"] = error.to_result()["error"]
            outcome["rolled_back"] = self.rolled_back(item, fields)
        return outcome

    @staticmethod
    def rolled_back(item: ReleaseItem, fields: dict[str, t.Any]) -> bool:
        """With atomic, helm put the previous revision back (or removed a failed first install)."""
        if not item.params.get("atomic"):
            return False
        release = fields.get("release") or {}
        previous = fields.get("previous_revision")
        if previous is None:
            return not release or release.get("status") == "uninstalled"
        return release.get("status") == "deployed" and release.get("revision") != previous

    @staticmethod
    def skipped(item: ReleaseItem, blockers: list[Key]) -> dict[str, t.Any]:
        what = "needs" if item.node.present else "is needed by"
        return {"name": item.name, "namespace": item.namespace, "state": item.params["state"], "action": "skipped",
                "changed": False, "previous_revision": None, "revision": None, "changes": [], "drift": [],
                "skipped": f"{what} {', '.join(f'{n}/{m}' for n, m in blockers)}, which failed or was skipped"}

    def result(self, outcomes: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {
            "changed": any(o["changed"] for o in outcomes),
            "releases": outcomes,
            "order": [[node.label for node in group] for group in self.order],
        }
        if self.context.diff:
            result["diff"] = [dict(entry, before_header=f"{o['namespace']}/{o['name']}: {entry.get('before_header', '')}",
                                   after_header=f"{o['namespace']}/{o['name']}: {entry.get('after_header', '')}")
                              for o in outcomes for entry in o.pop("diff", [])]
        for outcome in outcomes:
            outcome.pop("diff", None)
            for warning in outcome.get("warnings", []):
                self.context.warn(f"{outcome['namespace']}/{outcome['name']}: {warning}")
        failed = [o for o in outcomes if o.get("error")]
        if failed:
            raise self.failure(outcomes, failed, result)
        return result

    @staticmethod
    def failure(outcomes: list[dict[str, t.Any]], failed: list[dict[str, t.Any]], result: dict[str, t.Any]) -> EngineError:
        def label(o: dict[str, t.Any]) -> str:
            return f"{o['namespace']}/{o['name']}"

        skipped = [o for o in outcomes if o.get("skipped")]
        rolled_back = [o for o in failed if o.get("rolled_back")]
        message = "failed: " + "; ".join(f"{label(o)} ({o['error']['kind']}: {o['error']['message']})" for o in failed)
        if skipped:
            message += "; skipped: " + ", ".join(label(o) for o in skipped)
        if rolled_back:
            message += "; rolled back: " + ", ".join(label(o) for o in rolled_back)
        first = failed[0]["error"]
        error = EngineError(first["kind"], f"{len(failed)} of {len(outcomes)} release(s) {message}.",
                            details={"failed": [label(o) for o in failed], "skipped": [label(o) for o in skipped],
                                     "rolled_back": [label(o) for o in rolled_back]})
        error.extra.update(result)
        return error


class ReleasesContext(TaskContext):
    """The task's context of helm_releases: no release of its own (each has an ItemContext)."""

    def __init__(self, module: t.Any, **context_args: t.Any) -> None:
        super().__init__(module, one_release=False, **context_args)

    @staticmethod
    def shown_invocation(params: dict[str, t.Any], redactor: t.Any, values_params: t.Sequence[str] = ()) -> dict[str, t.Any]:
        return releases_invocation(params, redactor)


def releases_invocation(params: dict[str, t.Any], redactor: t.Any) -> dict[str, t.Any]:
    """module_args with every release's values and secrets redacted, as helm_deploy's are."""
    args = redacted_invocation(params, redactor)["module_args"]
    for key in ("defaults",):
        if isinstance(args.get(key), dict):
            args[key] = redacted_invocation(args[key], redactor, ["release_values", "values"])["module_args"]
    if isinstance(args.get("releases"), list):
        args["releases"] = [redacted_invocation(item, redactor, ["release_values", "values"])["module_args"]
                            if isinstance(item, dict) else item for item in args["releases"]]
    return {"module_args": args}
