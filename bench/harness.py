"""The measuring side of `make bench`: the three contenders, the instruments, the charts.

Instruments (all outside the code under test):
  - wall time of each whole ``ansible-playbook`` run, or of the raw helm command(s);
  - module process time: the play's ``ansible_python_interpreter`` is a bash wrapper that logs
    when each module process starts and ends ($EPOCHREALTIME, no extra process);
  - our modules' own ``duration`` (and ``helm_processes``), read from each task result by the
    ``bench_results`` callback;
  - counting rounds only (so the counters never slow a timed run): helm through a wrapper
    script that logs each invocation, and the Kubernetes API through ``kubectl proxy -v=6``
    (one "Filter accepting" log line per request, watches included) with a kubeconfig that
    points every client (helm, the kubernetes Python client) at it.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
COLLECTIONS = REPO / "build" / "collections"
DEMO_CHART = REPO / "examples" / "monitoring-web-service" / "helm-chart"
TIMEOUT = "300s"

# The demo's values (playbooks/demo.yml), and an upgrade that changes the pod template, so
# that --wait waits for a rollout.
DEMO_V1 = {"replicaCount": 2, "config": {"logLevel": "info"}, "secret": {"apiToken": "demo-not-a-real-token"}}
DEMO_V2 = {"replicaCount": 2, "config": {"logLevel": "debug"}, "secret": {"apiToken": "demo-not-a-real-token"},
           "podLabels": {"bench-revision": "two"}}

CONFIGMAPS_TEMPLATE = """\
{{- range $i := until (int .Values.count) }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-cm-{{ $i }}
  labels:
    app.kubernetes.io/instance: {{ $.Release.Name }}
data:
  index: "{{ $i }}"
  revision: {{ $.Values.revision | quote }}
{{- end }}
"""


def generated_chart(root: Path, count: int) -> Path:
    """A chart that renders ``count`` ConfigMaps; ``revision`` in the values changes them all."""
    chart = root / f"configmaps-{count}"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: configmaps-{count}\nversion: 0.1.0\nappVersion: '1'\n")
    (chart / "values.yaml").write_text(f"count: {count}\nrevision: one\n")
    (chart / "templates" / "configmaps.yaml").write_text(CONFIGMAPS_TEMPLATE)
    return chart


@dataclass
class Scenario:
    name: str  # demo, releases-N, resources-N
    chart: Path
    v1: dict[str, t.Any]
    v2: dict[str, t.Any]
    releases: int
    rounds: int
    ops: tuple[str, ...]
    counting: bool


@dataclass
class Helm:
    label: str  # helm3, helm4
    binary: str
    version: str = ""


@dataclass
class Cluster:
    kubeconfig: str
    kubectl: str

    def kubectl_run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, *args],
                              capture_output=True, text=True, check=check)


class ApiCounter:
    """``kubectl proxy -v=6`` on a free port: clients talk plain HTTP to it and it logs each
    request before forwarding it with the cluster's own credentials."""

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        self.log = workdir / "proxy.log"
        self.kubeconfig = workdir / "proxy-kubeconfig"
        self._out = open(self.log, "w", encoding="utf-8")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "proxy", "--port=0", "-v=6"],
            stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        port = None
        while port is None and time.monotonic() < deadline:
            match = re.search(r"Starting to serve on 127\.0\.0\.1:(\d+)", self.log.read_text())
            if match:
                port = int(match[1])
            else:
                time.sleep(0.1)
        if port is None:
            self.stop()
            raise RuntimeError(f"kubectl proxy did not start: {self.log.read_text()[-2000:]}")
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "bench",
            "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "bench", "user": {}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench", "namespace": "default"}}],
        }))

    def count(self) -> int:
        time.sleep(0.2)  # the proxy logs a request as it forwards it; let the last lines land
        return self.log.read_text(errors="replace").count("Filter accepting")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


class Bench:
    """Runs one operation of one contender on one scenario, timed or counted; returns a sample."""

    def __init__(self, cluster: Cluster, helm: Helm, workdir: Path, kcore_collections: Path, run_id: str,
                 forks: int, log: t.Callable[[str], None]) -> None:
        self.cluster = cluster
        self.helm = helm
        self.workdir = workdir
        self.run_id = run_id
        self.forks = forks
        self.say = log
        self.bin = workdir / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.module_times = workdir / "module-times"
        self.helm_log = workdir / "helm-invocations"
        self.results = workdir / "results.jsonl"
        self.python = self.bin / "python-timed"
        self.python.write_text(
            "#!/bin/bash\n"
            "# The module process, timed from outside: start and end in one line.\n"
            f"s=$EPOCHREALTIME\n{sys.executable} \"$@\"\nrc=$?\n"
            f"echo \"$s $EPOCHREALTIME\" >> {self.module_times}\nexit $rc\n")
        self.counting_helm = self.bin / f"{helm.label}-counting"
        self.counting_helm.write_text(f"#!/bin/sh\necho x >> {self.helm_log}\nexec {helm.binary} \"$@\"\n")
        for script in (self.python, self.counting_helm):
            script.chmod(0o755)
        self.ansible_env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(COLLECTIONS), str(kcore_collections)]),
            ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
            ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="bench_results",
            BENCH_RESULTS_FILE=str(self.results),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            ANSIBLE_HOST_KEY_CHECKING="0",
            ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-local"),
            PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        )
        self.counter: ApiCounter | None = None
        self.values_dir = workdir / "values"
        self.values_dir.mkdir(exist_ok=True)

    # -- naming ---------------------------------------------------------------------------
    def namespace(self, scenario: Scenario, contender: str) -> str:
        return f"bench-{self.run_id}-{self.helm.label[-1]}-{scenario.name}-{contender}"

    @staticmethod
    def release(i: int) -> str:
        return f"r{i}"

    def prepare(self, scenario: Scenario, contenders: t.Sequence[str]) -> None:
        for c in contenders:
            self.cluster.kubectl_run("create", "namespace", self.namespace(scenario, c))

    def cleanup(self, scenario: Scenario, contenders: t.Sequence[str]) -> None:
        for c in contenders:
            self.cluster.kubectl_run("delete", "namespace", self.namespace(scenario, c), "--wait=false",
                                     "--ignore-not-found")

    # -- counting mode ----------------------------------------------------------------------
    def start_counting(self) -> None:
        self.counter = ApiCounter(self.cluster, self.workdir)

    def stop_counting(self) -> None:
        if self.counter:
            self.counter.stop()
            self.counter = None

    def _helm_and_kubeconfig(self, counting: bool) -> tuple[str, str]:
        if counting:
            assert self.counter is not None
            return str(self.counting_helm), str(self.counter.kubeconfig)
        return self.helm.binary, self.cluster.kubeconfig

    # -- contenders -------------------------------------------------------------------------
    @staticmethod
    def supports(contender: str, op: str) -> bool:
        if contender == "raw":
            return op != "noop"  # helm has no no-op: a repeated upgrade writes a revision
        if contender == "kcore":
            return op != "rollback"  # kubernetes.core has no rollback module
        if contender == "stack":
            return op in ("install", "noop", "upgrade", "uninstall")  # helm_releases deploys and removes
        return True

    def _task(self, contender: str, op: str, scenario: Scenario, helm: str, kubeconfig: str) -> tuple[str, dict]:
        values = scenario.v2 if op == "upgrade" else scenario.v1
        if contender == "ours":
            common = {"name": "{{ rel }}", "namespace": "{{ ns }}", "binary_path": helm, "kubeconfig": kubeconfig}
            if op in ("install", "noop", "upgrade"):
                return "ai_mesh.helm_engine.helm_deploy", dict(common, chart_ref=str(scenario.chart), release_values=values,
                                                               wait=True, timeout=TIMEOUT)
            if op == "rollback":
                return "ai_mesh.helm_engine.helm_rollback", dict(common, revision=1, wait=True, timeout=TIMEOUT)
            if op == "status":
                return "ai_mesh.helm_engine.helm_status", common
            return "ai_mesh.helm_engine.helm_deploy", dict(common, state="absent", wait=True, timeout=TIMEOUT)
        common = {"name": "{{ rel }}", "release_namespace": "{{ ns }}", "binary_path": helm, "kubeconfig": kubeconfig}
        if op in ("install", "noop", "upgrade"):
            return "kubernetes.core.helm", dict(common, chart_ref=str(scenario.chart), release_values=values, wait=True,
                                                timeout=TIMEOUT)
        if op == "status":
            return "kubernetes.core.helm_info", common
        return "kubernetes.core.helm", dict(common, release_state="absent", wait=True, timeout=TIMEOUT)

    def _raw_argv(self, op: str, scenario: Scenario, i: int, helm: str, kubeconfig: str) -> list[str]:
        rel, ns = self.release(i), self.namespace(scenario, "raw")
        base = [helm, "--kubeconfig", kubeconfig, "-n", ns]
        if op in ("install", "upgrade"):
            values = self.values_dir / f"{scenario.name}-{op}.json"
            if not values.exists():
                values.write_text(json.dumps(scenario.v2 if op == "upgrade" else scenario.v1))
            return base + [op, rel, str(scenario.chart), "-f", str(values), "--wait", "--timeout", TIMEOUT]
        if op == "rollback":
            return base + ["rollback", rel, "1", "--wait", "--timeout", TIMEOUT]
        if op == "status":
            return base + ["status", rel, "-o", "json"]
        return base + ["uninstall", rel, "--wait", "--timeout", TIMEOUT]

    def run(self, contender: str, op: str, scenario: Scenario, round_no: int, counting: bool) -> dict[str, t.Any]:
        helm, kubeconfig = self._helm_and_kubeconfig(counting)
        for f in (self.module_times, self.helm_log, self.results):
            f.unlink(missing_ok=True)
        before = self.counter.count() if counting and self.counter else 0
        sample: dict[str, t.Any] = {"helm": self.helm.label, "scenario": scenario.name, "op": op, "contender": contender,
                                    "round": round_no, "kind": "count" if counting else "timing", "releases": scenario.releases}
        forks = max(1, min(self.forks, scenario.releases))
        if contender == "raw":
            sample.update(self._run_raw(op, scenario, helm, kubeconfig, forks))
        elif contender == "stack":
            sample.update(self._run_stack(op, scenario, helm, kubeconfig, forks))
        else:
            sample.update(self._run_play(contender, op, scenario, helm, kubeconfig, forks))
        if counting:
            sample["helm_processes"] = len(self.helm_log.read_text().splitlines()) if self.helm_log.exists() else 0
            sample["api_requests"] = (self.counter.count() - before) if self.counter else None
        return sample

    def _run_raw(self, op: str, scenario: Scenario, helm: str, kubeconfig: str, forks: int) -> dict[str, t.Any]:
        argvs = [self._raw_argv(op, scenario, i, helm, kubeconfig) for i in range(scenario.releases)]

        def one(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
            t0 = time.monotonic()
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            return time.monotonic() - t0, proc

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(forks) as pool:
            done = list(pool.map(one, argvs))
        wall = time.monotonic() - started
        failed = [p for _, p in done if p.returncode != 0]
        return {"ok": not failed, "wall": wall, "process": [d for d, _ in done],
                "error": failed[0].stderr[-500:] if failed else ""}

    def _run_stack(self, op: str, scenario: Scenario, helm: str, kubeconfig: str, forks: int) -> dict[str, t.Any]:
        """Every release of the scenario in one helm_releases task on one host, ``forks`` at once."""
        values = scenario.v2 if op == "upgrade" else scenario.v1
        defaults = {"namespace": self.namespace(scenario, "stack"), "chart_ref": str(scenario.chart), "release_values": values,
                    "wait": True, "timeout": TIMEOUT, "state": "absent" if op == "uninstall" else "present"}
        args = {"binary_path": helm, "kubeconfig": kubeconfig, "concurrency": forks, "defaults": defaults,
                "releases": [{"name": self.release(i)} for i in range(scenario.releases)]}
        play = [{"name": f"stack {op}", "hosts": "all", "gather_facts": False,
                 "tasks": [{"name": op, "ai_mesh.helm_engine.helm_releases": args}]}]
        return dict(self._play(play, scenario, "stack", 1, ours=True, hosts=1))

    def _run_play(self, contender: str, op: str, scenario: Scenario, helm: str, kubeconfig: str, forks: int) -> dict[str, t.Any]:
        module, args = self._task(contender, op, scenario, helm, kubeconfig)
        play = [{"name": f"{contender} {op}", "hosts": "all", "gather_facts": False,
                 "tasks": [{"name": op, module: args}]}]
        return dict(self._play(play, scenario, contender, forks, ours=contender == "ours"))

    def _play(self, play: list[dict[str, t.Any]], scenario: Scenario, contender: str, forks: int, *, ours: bool = False,
              hosts: int | None = None) -> dict[str, t.Any]:
        hosts = scenario.releases if hosts is None else hosts
        playbook = self.workdir / "play.yml"
        playbook.write_text(json.dumps(play, indent=1))
        inventory = self.workdir / "inventory.ini"
        ns = self.namespace(scenario, contender)
        inventory.write_text("".join(
            f"h{i} ansible_connection=local ansible_python_interpreter={self.python} rel={self.release(i)} ns={ns}\n"
            for i in range(hosts)))
        env = dict(self.ansible_env, ANSIBLE_FORKS=str(forks))
        started = time.monotonic()
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)],
                              capture_output=True, text=True, env=env, cwd=self.workdir, check=False)
        wall = time.monotonic() - started
        lines = [json.loads(x) for x in self.results.read_text().splitlines()] if self.results.exists() else []
        spans = []
        if self.module_times.exists():
            for line in self.module_times.read_text().splitlines():
                start, end = (float(x) for x in line.split())
                spans.append(end - start)
        ok = proc.returncode == 0 and len(lines) == hosts and all(x["ok"] for x in lines)
        error = ""
        if not ok:
            failed = [x for x in lines if not x["ok"]]
            error = failed[0]["msg"] if failed else (proc.stdout + proc.stderr)[-800:]
        return {
            "ok": ok, "wall": wall, "process": spans,
            "module": [x["duration"] for x in lines if "duration" in x] if ours else [],
            "changed": sum(1 for x in lines if x.get("changed")),
            "reported_helm_processes": [x["helm_processes"] for x in lines if "helm_processes" in x],
            "error": error,
        }

    def floor(self, scenario: Scenario, round_no: int) -> dict[str, t.Any]:
        """Ansible's own cost: the same kind of play with one ansible.builtin.ping task."""
        for f in (self.module_times, self.results):
            f.unlink(missing_ok=True)
        play = [{"name": "floor", "hosts": "all", "gather_facts": False, "tasks": [{"name": "ping", "ansible.builtin.ping": {}}]}]
        result = self._play(play, scenario, "floor", max(1, min(self.forks, scenario.releases)))
        return dict(result, helm=self.helm.label, scenario=scenario.name, op="ping", contender="ansible", round=round_no,
                    kind="timing", releases=1)

    def force_cleanup(self, scenario: Scenario, contender: str) -> None:
        """After a failed round: uninstall whatever is left, so the next round starts clean."""
        ns = self.namespace(scenario, contender)
        for i in range(scenario.releases):
            subprocess.run([self.helm.binary, "--kubeconfig", self.cluster.kubeconfig, "-n", ns, "uninstall",
                            self.release(i), "--wait", "--timeout", "120s"], capture_output=True, check=False)


def run_module(module: str, args: dict[str, t.Any], workdir: Path, *, check: bool = False, diff: bool = False,
               profile_to: Path | None = None, importtime_to: Path | None = None) -> dict[str, t.Any]:
    """One of our modules run directly (what AnsiballZ does, minus the packaging), optionally
    under cProfile or with Python's import timing (-X importtime, written to a file)."""
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff, _ansible_tmpdir=str(workdir),
                                           _ansible_remote_tmp=str(workdir))}
    args_file = workdir / "module-args.json"
    args_file.write_text(json.dumps(payload))
    argv = [sys.executable]
    if importtime_to is not None:
        argv += ["-X", "importtime"]
    if profile_to is not None:
        argv += ["-m", "cProfile", "-o", str(profile_to)]
    argv += [str(REPO / "plugins" / "modules" / f"{module}.py"), str(args_file)]
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=workdir, check=False)
    args_file.unlink()
    if importtime_to is not None:
        importtime_to.write_text(proc.stderr)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {"failed": True, "msg": f"no JSON from {module}: {proc.stdout[-500:]} {proc.stderr[-1000:]}"}


def template_edit_detected(cluster: Cluster, helm: Helm, workdir: Path, run_id: str) -> bool:
    """The no-op must stay honest: an edited template of an unchanged chart version is a change."""
    chart_root = workdir / "edit"
    if chart_root.exists():
        shutil.rmtree(chart_root)
    chart = generated_chart(chart_root, 3)
    ns = f"bench-{run_id}-{helm.label[-1]}-edit"
    common = {"name": "edit", "namespace": ns, "binary_path": helm.binary, "kubeconfig": cluster.kubeconfig}
    deploy = dict(common, chart_ref=str(chart), create_namespace=True, wait=True, timeout=TIMEOUT)
    try:
        first = run_module("helm_deploy", deploy, workdir)
        if first.get("failed"):
            raise RuntimeError(f"template edit check: install failed: {first.get('msg')}")
        same = run_module("helm_deploy", deploy, workdir, check=True)
        template = chart / "templates" / "configmaps.yaml"
        template.write_text(template.read_text().replace('index: "{{ $i }}"', 'index: "{{ $i }}"\n  edited: "yes"'))
        edited = run_module("helm_deploy", deploy, workdir, check=True)
        return same.get("changed") is False and edited.get("changed") is True
    finally:
        cluster.kubectl_run("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def drift_correction(cluster: Cluster, helm: Helm, workdir: Path, run_id: str, rounds: int = 3) -> dict[str, t.Any]:
    """The demo chart deployed; then, each round, a key of its ConfigMap patched and its Service
    deleted with kubectl, and the same helm_deploy task again: its in-module time and requests,
    whether it corrected the drift, and whether the run after it was a no-op."""
    ns = f"bench-{run_id}-{helm.label[-1]}-drift"
    deploy = {"name": "web", "namespace": ns, "chart_ref": str(DEMO_CHART), "release_values": DEMO_V1, "binary_path": helm.binary,
              "kubeconfig": cluster.kubeconfig, "create_namespace": True, "wait": True, "timeout": TIMEOUT}
    found: dict[str, t.Any] = {"module": [], "requests": [], "corrected": 0, "noop_after": 0, "rounds": rounds}
    try:
        first = run_module("helm_deploy", deploy, workdir)
        if first.get("failed"):
            raise RuntimeError(f"drift bench: install failed: {first.get('msg')}")
        configmap = next(c["name"] for c in first["changes"] if c["kind"] == "ConfigMap")
        service = next(c["name"] for c in first["changes"] if c["kind"] == "Service")
        for _ in range(rounds):
            cluster.kubectl_run("-n", ns, "patch", "configmap", configmap, "-p", json.dumps({"data": {"LOG_LEVEL": "debug"}}),
                                check=True)
            cluster.kubectl_run("-n", ns, "delete", "service", service, check=True)
            corrected = run_module("helm_deploy", deploy, workdir)
            found["module"].append(corrected.get("duration"))
            found["requests"].append(corrected.get("kube_requests"))
            found["corrected"] += corrected.get("action") == "correct_drift" and len(corrected.get("drift") or []) == 2
            found["noop_after"] += run_module("helm_deploy", deploy, workdir).get("action") == "none"
        return found
    finally:
        cluster.kubectl_run("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def secret_sweep(cluster: Cluster, helm: Helm, workdir: Path, run_id: str, resources: int = 500,
                 rounds: int = 30) -> dict[str, t.Any]:
    """What the last redaction sweep of a result (Redactor.redact_tree, run by the result builder
    on every result) costs on a large one: helm_deploy's check-mode plan with --diff of a chart of
    ``resources`` ConfigMaps, its values holding a password; the sweep is timed here, over that
    very result, with the module's redactor rebuilt from the same values."""
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor

    values = {"count": resources, "auth": {"password": f"bench-sweep-{run_id}-S3cret"}}
    chart = generated_chart(workdir / "sweep", resources)
    deploy = {"name": "sweep", "namespace": f"bench-{run_id}-{helm.label[-1]}-sweep", "chart_ref": str(chart),
              "release_values": values, "binary_path": helm.binary, "kubeconfig": cluster.kubeconfig, "create_namespace": True}
    result = run_module("helm_deploy", deploy, workdir, check=True, diff=True)
    if result.get("failed") or not result.get("diff"):
        raise RuntimeError(f"sweep bench: no planned diff: {result.get('msg')}")
    redactor = Redactor()
    redactor.add_values(values)
    seconds = []
    for _ in range(rounds):
        began = time.perf_counter()
        redactor.redact_tree(result)
        seconds.append(time.perf_counter() - began)
    return {"seconds": seconds, "bytes": len(json.dumps(result)), "resources": len(result.get("changes") or []),
            "module": result.get("duration")}


def median(values: t.Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def machine() -> dict[str, t.Any]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": mem_kib / 1024 / 1024,
            "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="helm-engine-bench-"))
