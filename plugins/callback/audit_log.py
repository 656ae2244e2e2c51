# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: audit_log
type: notification
short_description: A tamper-evident, crash-safe audit log of every helm_engine operation
version_added: 0.1.0
description:
  - Appends one JSON record per line to O(log_path) for the start and the end of each playbook,
    before each task of this collection (C(task_start)), and for every result of a
    C(ai_mesh.helm_engine.*) module (also when called by its short name through the
    C(collections) keyword) and of every task of a role of this collection - ok, changed, failed,
    skipped, unreachable; check-mode runs are marked C(check_mode=true).
  - A record names the run (C(run_id)), playbook, play, task, host, controller user and, under
    AWX or Automation Controller, the job id and user; for helm_engine modules the release,
    namespace, action, revision before and after, chart and version, the sha256 digest of the
    user values (never the values), the resources added, changed and removed (kind/name), the
    duration, the number of helm processes, the error kind and message, and rollback and
    recovery details.
  - Only picked fields are logged, never C(invocation.module_args) as a whole, and every string
    goes through the redactor the modules use. Results of C(no_log) tasks are reduced to the task,
    host, module and status.
  - Each record is written with one C(write) under an exclusive C(flock) and C(fsync)ed, so runs
    writing one log at the same time are serialised. Each record carries the sha256 of the line
    before it (a chain from a C(genesis) record), so an edited, deleted or reordered record is
    detected by M(ai_mesh.helm_engine.audit_verify) or the playbook
    C(ai_mesh.helm_engine.audit_verify). A line torn by a killed writer is ended by the next
    writer and acknowledged with a C(chain_break) record; records before it stay intact.
  - When the file passes O(max_bytes), it is renamed to C(<log_path>.NNNNNN) and a new file
    starts with a C(genesis) record that carries the last hash of the previous file, so the chain
    verifies across files. Verify with the glob C(<log_path>*).
  - When a record cannot be written (missing or unwritable directory, full disk), a warning naming
    the task is shown for every record lost. With O(required=true), the callback also writes a
    C(task_start) record before every task of this collection and, when that write fails, ends
    the whole run with exit code 3 before the task is queued, so no helm process starts without
    an audit record. (Exceptions raised by callbacks are turned into warnings by Ansible, so the
    callback leaves through C(SystemExit), which Ansible lets pass; the task executor never
    sees the task.)
requirements:
  - Enabled with C(ANSIBLE_CALLBACKS_ENABLED=ai_mesh.helm_engine.audit_log) or C(callbacks_enabled) in C(ansible.cfg).
options:
  log_path:
    description: The audit log file. Missing parent directories are created with mode C(0700); the file has mode C(0600).
    type: path
    default: ~/.ansible/helm_engine/audit.log
    ini:
      - section: helm_engine_audit
        key: log_path
    env:
      - name: HELM_ENGINE_AUDIT_LOG
  required:
    description:
      - When V(true), the run stops (exit code 3) before the next helm_engine task whenever its
        C(task_start) record cannot be written. When V(false), lost records are only warned about.
    type: bool
    default: false
    ini:
      - section: helm_engine_audit
        key: required
    env:
      - name: HELM_ENGINE_AUDIT_REQUIRED
  max_bytes:
    description: The size at which the log file is rotated (10 MiB by default). V(0) never rotates.
    type: int
    default: 10485760
    ini:
      - section: helm_engine_audit
        key: max_bytes
    env:
      - name: HELM_ENGINE_AUDIT_MAX_BYTES
"""

import getpass
import os
import time
import typing as t
import uuid

from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._audit import AuditWriteError, AuditWriter
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor

COLLECTION = "ai_mesh.helm_engine"
_COLLECTION_ROLES_DIR = os.sep + os.path.join("ansible_collections", "ai_mesh", "helm_engine", "roles") + os.sep

# Exit code of a run stopped because a required audit record could not be written (ansible-playbook
# itself uses 0, 1, 2, 4, 5, 8, 99, 250 and 255).
EXIT_AUDIT_REQUIRED = 3

# Error messages are for a reader of the log, not a copy of helm's output.
MAX_MESSAGE = 2000

# Extra vars AWX / Automation Controller inject into every job, in order of preference.
AWX_JOB_ID_VARS = ("awx_job_id", "tower_job_id")
AWX_USER_VARS = ("awx_user_name", "tower_user_name")


def _controller_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER variable, as in some containers
        return str(os.getuid())


def resolved_module(task: t.Any) -> str | None:
    """The task's action as a FQCN, without provoking core's warning for templated actions."""
    resolved = getattr(task, "_resolved_action", None)
    if resolved:
        return resolved
    action = getattr(task, "action", None)
    if not action or "{{" in action:
        return None
    try:
        return task.resolved_action or action
    except Exception:  # an action that does not resolve is not ours either
        return action


def collection_role(task: t.Any) -> str | None:
    """The FQCN of the role the task comes from, when it is a role of this collection."""
    role = getattr(task, "_role", None)
    if role is None:
        return None
    role_collection = getattr(role, "_role_collection", None)
    role_path = getattr(role, "_role_path", "") or ""
    if role_collection == COLLECTION or _COLLECTION_ROLES_DIR in role_path:
        return f"{COLLECTION}.{getattr(role, '_role_name', None) or role.get_name(include_role_fqcn=False)}"
    return None


def is_ours(module: str | None, role: str | None) -> bool:
    return bool(role) or bool(module and module.startswith(COLLECTION + "."))


# Its results carry one outcome per release, each recorded like a helm_deploy result.
MULTI_RELEASE_MODULE = "ai_mesh.helm_engine.helm_releases"
# Objects recorded per list of a result (drifted, cleaned, left behind): a release of hundreds still fits a line.
MAX_DRIFT = 50


def _pick(source: t.Mapping[str, t.Any], *keys: str) -> dict[str, t.Any]:
    return {key: source[key] for key in keys if source.get(key) is not None}


def changes_summary(changes: t.Any) -> dict[str, list[str]]:
    """``{"added": ["Deployment/web", ...], "changed": [...], "removed": [...]}``: kind/name only."""
    summary: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    for change in changes if isinstance(changes, list) else []:
        if isinstance(change, dict) and change.get("change") in summary:
            summary[change["change"]].append(f"{change.get('kind')}/{change.get('name')}")
    return summary


def redactor_for(result: t.Mapping[str, t.Any]) -> Redactor:
    """The modules' redactor, primed with whatever secrets the (already redacted) arguments still show."""
    args = (result.get("invocation") or {}).get("module_args") or {}
    sensitive = args.get("sensitive_values") if isinstance(args.get("sensitive_values"), list) else []
    redactor = Redactor(sensitive_paths=[str(p) for p in sensitive])
    # helm_releases carries values per release and in its defaults.
    releases = args.get("releases") if isinstance(args.get("releases"), list) else []
    for source in [args, args.get("defaults"), *releases]:
        if not isinstance(source, dict):
            continue
        for name in ("release_values", "values"):
            if isinstance(source.get(name), dict):
                redactor.add_values(source[name])
    for name in ("api_key", "token", "password"):
        if isinstance(args.get(name), str):
            redactor.add_secret(args[name])
    return redactor


def error_of(result: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    error = result.get("error") if isinstance(result.get("error"), dict) else {}
    message = error.get("message") or result.get("msg") or ""
    return {"kind": error.get("kind"), "message": str(message)[:MAX_MESSAGE]}


def summarize_helm_result(result: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The fields of a helm_engine module result the log keeps; unknown modules get what they have."""
    args = (result.get("invocation") or {}).get("module_args") or {}
    release = result.get("release") if isinstance(result.get("release"), dict) else {}
    record: dict[str, t.Any] = {
        "action": result.get("action"),
        "release": release.get("name") or args.get("name"),
        "namespace": release.get("namespace") or args.get("namespace"),
        "revision_before": result.get("previous_revision"),
        "revision_after": release.get("revision", result.get("revision")),
        "status_after": release.get("status"),
        "chart": release.get("chart"),
        "chart_version": release.get("chart_version"),
        # The digest only from results: invocation args are redacted, a digest of them would lie.
        "values_digest": result.get("values_digest") or release.get("values_digest"),
        "duration": result.get("duration"),
        "helm_processes": result.get("helm_processes"),
        "helm_version": result.get("helm_version"),
    }
    if "changes" in result:
        record["changes"] = changes_summary(result["changes"])
    if "from_revision" in result or "to_revision" in result:
        left = result.get("left") if isinstance(result.get("left"), dict) else {}
        record["rollback"] = dict(
            _pick(result, "from_revision", "to_revision"),
            left=_pick(left, "revision", "status", "chart", "chart_version", "values_digest", "manifest_digest"),
        )
    if isinstance(result.get("drift"), list) and result["drift"]:
        # What drifted (and, with action correct_drift or an upgrade, was put back): no values.
        record["drift"] = [_pick(item, "kind", "namespace", "name", "reason", "paths")
                           for item in result["drift"][:MAX_DRIFT] if isinstance(item, dict)]
    for key in ("cleaned", "left_behind"):
        # What an uninstall's cleanup deleted, and what it left: names and reasons, never content.
        if isinstance(result.get(key), list) and result[key]:
            record[key] = [_pick(item, "kind", "namespace", "name", "reason")
                           for item in result[key][:MAX_DRIFT] if isinstance(item, dict)]
    if isinstance(result.get("recovery"), dict):
        record["recovery"] = _pick(result["recovery"], "stuck_revision", "stuck_status", "action", "to_revision",
                                   "performed")
    return {key: value for key, value in record.items() if value is not None}


class CallbackModule(CallbackBase):
    """Writes the audit trail of helm_engine operations; see DOCUMENTATION."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "ai_mesh.helm_engine.audit_log"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display: t.Any = None) -> None:
        super().__init__(display=display)
        self.run_id = uuid.uuid4().hex
        self.controller_user = _controller_user()
        self.playbook: str | None = None
        self.play: str | None = None
        self.awx: dict[str, str] = {}
        self.writer: AuditWriter | None = None
        self.required = False
        self.records_lost = 0
        self._task_started: dict[str, float] = {}

    def set_options(self, task_keys: t.Any = None, var_options: t.Any = None, direct: t.Any = None) -> None:
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self.writer = AuditWriter(os.path.expanduser(self.get_option("log_path")), self.get_option("max_bytes") or 0)
        self.required = bool(self.get_option("required"))

    # ---- writing ---------------------------------------------------------------------------

    def _base(self, event: str) -> dict[str, t.Any]:
        record = {"event": event, "run_id": self.run_id, "playbook": self.playbook, "play": self.play,
                  "controller_user": self.controller_user}
        record.update(self.awx)
        return {key: value for key, value in record.items() if value is not None}

    def _write(self, record: dict[str, t.Any], about: str) -> bool:
        if self.writer is None:  # set_options was never called: not enabled the normal way
            self.set_options()
        try:
            self.writer.append(record)
            return True
        except AuditWriteError as exc:
            self.records_lost += 1
            consequence = ("the run stops before the next helm_engine task" if self.required
                           else "this operation has no audit record")
            self._display.warning(f"helm_engine audit log NOT written for {about}: {exc}; {consequence}.")
            return False

    # ---- playbook and play -----------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: t.Any) -> None:
        file_name = getattr(playbook, "_file_name", None)
        self.playbook = os.path.abspath(file_name) if file_name else None
        self.awx = self._awx_identity(getattr(playbook, "_loader", None))
        record = self._base("playbook_start")
        record["check_mode"] = bool(context.CLIARGS.get("check", False))
        self._write(record, f"the start of playbook {self.playbook}")

    def v2_playbook_on_play_start(self, play: t.Any) -> None:
        self.play = play.get_name() or None

    @staticmethod
    def _awx_identity(loader: t.Any) -> dict[str, str]:
        """Job id and user from the extra vars AWX passes (``-e @.../extravars``), as Ansible parses them."""
        if loader is None:
            return {}
        try:
            extra_vars = load_extra_vars(loader) or {}
        except Exception:  # unreadable extra vars fail the run elsewhere; the log just lacks the job id
            return {}
        identity = {}
        for field, names in (("awx_job_id", AWX_JOB_ID_VARS), ("awx_user", AWX_USER_VARS)):
            value = next((extra_vars[name] for name in names if extra_vars.get(name) not in (None, "")), None)
            if value is not None:
                identity[field] = str(value)
        return identity

    def v2_playbook_on_stats(self, stats: t.Any) -> None:
        record = self._base("playbook_end")
        record["hosts"] = {host: stats.summarize(host) for host in sorted(stats.processed)}
        record["records_lost"] = self.records_lost
        self._write(record, f"the end of playbook {self.playbook}")

    # ---- tasks -----------------------------------------------------------------------------

    def v2_playbook_on_task_start(self, task: t.Any, is_conditional: bool) -> None:
        self._task_start(task)

    def v2_playbook_on_handler_task_start(self, task: t.Any) -> None:
        self._task_start(task)

    def _task_start(self, task: t.Any) -> None:
        module, role = resolved_module(task), collection_role(task)
        if not is_ours(module, role):
            return
        self._task_started[task._uuid] = time.monotonic()
        record = self._base("task_start")
        record.update(task=Redactor().redact_text(task.get_name()), module=module, check_mode=bool(task.check_mode))
        if role:
            record["role"] = role
        if not self._write(record, f"task {task.get_name()!r}") and self.required:
            # Callback exceptions become warnings; SystemExit is not caught, so the task is never queued.
            self._display.error(f"helm_engine audit log is required (HELM_ENGINE_AUDIT_REQUIRED) and cannot be"
                                f" written: stopping before task {task.get_name()!r}.")
            raise SystemExit(EXIT_AUDIT_REQUIRED)

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._result(result, "failed", ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result: t.Any) -> None:
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result: t.Any) -> None:
        self._result(result, "unreachable")

    def v2_runner_item_on_ok(self, result: t.Any) -> None:
        self._result(result, "changed" if result._result.get("changed") else "ok", item=True)

    def v2_runner_item_on_failed(self, result: t.Any) -> None:
        self._result(result, "failed", item=True)

    def v2_runner_item_on_skipped(self, result: t.Any) -> None:
        self._result(result, "skipped", item=True)

    def _result(self, result: t.Any, status: str, *, item: bool = False, ignore_errors: bool = False) -> None:
        task, data = result._task, result._result
        module, role = resolved_module(task), collection_role(task)
        if not is_ours(module, role):
            return
        if not item and isinstance(data.get("results"), list):
            return  # a loop's summary: each item had its own record
        record = self.result_record(task, result._host.get_name(), data, status, module, role)
        if item:
            record["loop_item"] = True  # not the item itself: a loop label can carry a secret
        if ignore_errors:
            record["ignore_errors"] = True
        self._write(record, f"task {task.get_name()!r} on {record['host']}")
        if module == MULTI_RELEASE_MODULE and not record.get("no_log"):
            for release_record in self.release_records(record, data):
                self._write(release_record, f"task {task.get_name()!r} on {record['host']}")

    def release_records(self, task_record: dict[str, t.Any], data: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
        """helm_releases: one record per release, as a helm_deploy task's, after the task's own."""
        records = []
        redactor = redactor_for(data)
        for outcome in data.get("releases") if isinstance(data.get("releases"), list) else []:
            if not isinstance(outcome, dict):
                continue
            release = dict(outcome.get("release") or {}, name=outcome.get("name"), namespace=outcome.get("namespace"))
            if outcome.get("revision") is not None:
                release["revision"] = outcome["revision"]
            status = "failed" if outcome.get("error") else "skipped" if outcome.get("skipped") else "ok"
            record = self._base("release_result")
            record.update({key: task_record[key] for key in ("task", "host", "module", "check_mode") if key in task_record})
            record.update(status=status, changed=bool(outcome.get("changed")), failed=status == "failed")
            record.update(summarize_helm_result(dict(outcome, release=release)))
            if outcome.get("error"):
                record["error"] = error_of({"error": outcome["error"]})
            if outcome.get("skipped"):
                record["skip_reason"] = str(outcome["skipped"])[:MAX_MESSAGE]
            records.append(redactor.redact_tree(record))
        return records

    def result_record(self, task: t.Any, host: str, data: t.Mapping[str, t.Any], status: str,
                      module: str | None, role: str | None) -> dict[str, t.Any]:
        record = self._base("task_result")
        record.update(task=task.get_name(), host=host, module=module, status=status,
                      check_mode=bool(task.check_mode),
                      changed=bool(data.get("changed")), failed=status in ("failed", "unreachable"))
        if role:
            record["role"] = role
        started = self._task_started.get(task._uuid)
        if started is not None:
            record["task_seconds"] = round(time.monotonic() - started, 3)
        no_log = bool(data.get("_ansible_no_log")) or task.no_log is True or "censored" in data
        if no_log:
            record["no_log"] = True  # what the task did stays hidden, as the user asked
            return Redactor().redact_tree(record)
        redactor = redactor_for(data)
        if module and module.startswith(COLLECTION + "."):
            record.update(summarize_helm_result(data))
        if status in ("failed", "unreachable"):
            record["error"] = error_of(data)
        elif status == "skipped" and data.get("skip_reason"):
            record["skip_reason"] = str(data["skip_reason"])[:MAX_MESSAGE]
        return redactor.redact_tree(record)
