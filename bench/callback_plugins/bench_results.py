"""Writes each task result of a benchmark play as one JSON line (the file named by
BENCH_RESULTS_FILE): host, module, ok, changed, and what our modules report about their cost.
Enabled only by the benchmark (ANSIBLE_CALLBACKS_ENABLED=bench_results)."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_results
type: aggregate
short_description: one JSON line per task result, for the benchmark
description: [Writes host, module, ok, changed, msg, duration, helm_processes and kube_requests.]
requirements: [BENCH_RESULTS_FILE in the environment]
"""

KEYS = ("changed", "duration", "helm_processes", "kube_requests", "action")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_results"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, ok: bool) -> None:
        path = os.environ.get("BENCH_RESULTS_FILE")
        if not path:
            return
        res = result._result  # pylint: disable=protected-access
        line = {"host": result._host.get_name(), "module": result._task.action, "ok": ok,  # pylint: disable=protected-access
                "msg": str(res.get("msg", ""))[:500] if not ok else ""}
        line.update({k: res[k] for k in KEYS if k in res})
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self._write(result, True)

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._write(result, False)

    def v2_runner_on_unreachable(self, result) -> None:
        self._write(result, False)
