#!/usr/bin/env python3
"""Benchmarks on the local cluster, for helm 3 and helm 4 (`make bench`).

Measures, with the demo chart:
  - a no-op helm_deploy: helm processes and module seconds
  - helm_status: module seconds (what the module reports) and seconds as an Ansible task
  - helm_rollback with wait: module seconds
Prints one JSON document; nothing here asserts, the figures are for the README and the issues.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "tests" / "charts" / "sample"
COLLECTIONS = REPO / "build" / "collections"


def cluster_env() -> dict[str, str]:
    out = subprocess.run([str(REPO / "tools" / "cluster.sh"), "env"], check=True, capture_output=True, text=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())


def run_module(module: str, args: dict, workdir: Path) -> tuple[dict, float]:
    args_file = workdir / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "plugins" / "modules" / f"{module}.py"), str(args_file)],
                          capture_output=True, text=True, env=env)
    wall = time.monotonic() - started
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit(f"{module} failed: {result.get('msg')}")
    return result, wall


def status_as_task(common: dict, runs: int, workdir: Path) -> float:
    """Seconds per helm_status task inside ansible-playbook (between two timestamps)."""
    playbook = workdir / "status.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"ansible.builtin.set_fact": {"t0": "{{ lookup('pipe', 'date +%s.%N') }}"}},
            {"ai_mesh.helm_engine.helm_status": common, "loop": list(range(runs))},
            {"ansible.builtin.set_fact": {"t1": "{{ lookup('pipe', 'date +%s.%N') }}"}},
            {"ansible.builtin.debug": {"msg": "ELAPSED {{ (t1 | float) - (t0 | float) }}"}},
        ],
    }]))
    bindir = Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)],
                          capture_output=True, text=True, env=env, check=True)
    elapsed = float(proc.stdout.split("ELAPSED ")[1].split('"')[0])
    return elapsed / runs


def bench(helm_name: str, helm: str, kubeconfig: str, kubectl: str) -> dict:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    common = {"name": "bench", "namespace": namespace, "kubeconfig": kubeconfig}
    deploy = dict(common, binary_path=helm, chart_ref=str(CHART), create_namespace=True, wait=True, timeout="60s")
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            run_module("helm_deploy", dict(deploy, release_values={"message": "v1"}), workdir)
            noop = [run_module("helm_deploy", dict(deploy, release_values={"message": "v1"}), workdir) for _ in range(5)]
            figures["noop_deploy"] = {
                "helm_processes": noop[0][0]["helm_processes"],
                "module_seconds_median": statistics.median(r["duration"] for r, _ in noop),
                "process_seconds_median": round(statistics.median(w for _, w in noop), 3),
            }
            status = [run_module("helm_status", common, workdir) for _ in range(10)]
            figures["status"] = {
                "module_seconds_median": statistics.median(r["duration"] for r, _ in status),
                "module_seconds_max": max(r["duration"] for r, _ in status),
                "process_seconds_median": round(statistics.median(w for _, w in status), 3),
                "helm_processes": status[0][0]["helm_processes"],
                "ansible_task_seconds": round(status_as_task(common, 10, workdir), 3),
            }
            run_module("helm_deploy", dict(deploy, release_values={"message": "v2"}), workdir)
            rollback, wall = run_module("helm_rollback", dict(common, binary_path=helm, wait=True, timeout="60s", revision=1), workdir)
            figures["rollback_with_wait"] = {"module_seconds": rollback["duration"], "process_seconds": round(wall, 3),
                                             "helm_processes": rollback["helm_processes"]}
        finally:
            subprocess.run([kubectl, "--kubeconfig", kubeconfig, "delete", "namespace", namespace, "--wait=false"],
                           capture_output=True)
    return figures


def main() -> None:
    env = cluster_env()
    results = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()}
    for name in ("helm3", "helm4"):
        helm = env["HELM_ENGINE_HELM3" if name == "helm3" else "HELM_ENGINE_HELM4"]
        results[name] = bench(name, helm, env["KUBECONFIG"], env["HELM_ENGINE_KUBECTL"])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
