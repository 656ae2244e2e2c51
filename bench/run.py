"""`make bench`: raw helm, kubernetes.core 6.6.0 and ai_mesh.helm_engine side by side on the
local cluster, helm 3 and helm 4; writes bench/RESULTS.md (and the raw samples as JSON).

Settings (environment):
  BENCH_ROUNDS=3            timed rounds on the demo chart (A B C interleaved per operation)
  BENCH_RESOURCES=10,100,500  resources in one release (generated chart); empty: none
  BENCH_SCALES=1,20,50      releases in one play (generated chart of 10 ConfigMaps); empty: none
  BENCH_SCALE_ROUNDS=1      timed rounds per scale point
  BENCH_SCALE_OPS=install,noop,status,uninstall   operations at the releases scale
  BENCH_COUNT=1             one extra round that counts helm processes and API requests, for the
                            demo chart and the smallest and largest resource counts
  BENCH_COUNT_RELEASES=0    the same for the releases scale
  BENCH_TARGET_ROUNDS=3     alternating rounds of helm_releases' two targets (20 no-ops against the
                            kubernetes.core play, 50 installs against raw helm); 0: from the scale
  BENCH_BUDGET_MIN=40       scale points that would end the run past this many minutes are skipped,
                            and the demo chart gets fewer rounds past 55% of it (named in RESULTS.md)
  BENCH_FORKS=10            Ansible forks (and raw helm's parallel commands) for several releases
  BENCH_HELMS=helm3,helm4
  BENCH_PROFILE=1           cProfile our no-op and status
  BENCH_OUTPUT=bench/RESULTS.md   BENCH_SAMPLES=build/bench/samples.json
`python -m bench.run --report FILE` renders RESULTS.md again from saved samples.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

from bench import harness, kubernetes_core, profiling, report

CONTENDERS = report.CONTENDERS


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, file=sys.stderr, flush=True)


def env_list(name: str, default: str) -> list[str]:
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


def cluster_env() -> dict[str, str]:
    out = subprocess.run([str(harness.REPO / "tools" / "cluster.sh"), "env"], check=True, capture_output=True,
                         text=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines() if "=" in line)


def versions(cluster: harness.Cluster, helms: list[harness.Helm]) -> dict[str, str]:
    import ansible.release  # pylint: disable=import-outside-toplevel

    server = json.loads(cluster.kubectl_run("version", "-o", "json").stdout or "{}").get("serverVersion", {})
    commit = subprocess.run(["git", "-C", str(harness.REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(harness.REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    galaxy = (harness.REPO / "galaxy.yml").read_text()
    ours = next((line.split(":", 1)[1].strip() for line in galaxy.splitlines() if line.startswith("version:")), "?")
    out = {
        "ai_mesh.helm_engine": f"{ours} (git {commit}{', uncommitted edits' if dirty else ''})",
        "kubernetes.core": kubernetes_core.installed_version(kubernetes_core.CORE_DIR) or "?",
        "ansible-core": ansible.release.__version__,
        "Python": sys.version.split()[0],
        "kubernetes (Python client)": importlib.metadata.version("kubernetes"),
        "Kubernetes API server": f"{server.get('gitVersion', '?')} (kwok nodes)",
    }
    for h in helms:
        out[h.label] = h.version
    return out


def method_lines(rounds: int, scale_rounds: int, forks: int, counting: bool) -> list[str]:
    return [
        f"- Demo chart (`examples/monitoring-web-service/helm-chart`, the chart of `playbooks/demo.yml`, with its values):"
        f" {rounds} timed rounds, helm 3 and helm 4 alternating. In each round every operation runs for raw helm,"
        " kubernetes.core and ours in turn (A B C, then the next operation), each contender on its own release and"
        " namespace; figures are medians with min–max over the rounds.",
        "- Operations: install with wait, no-op (the same deploy again), upgrade with wait (new values that change the"
        " pod template, so the wait covers a rollout and the chart's hook Jobs), rollback with wait to revision 1,"
        " status (`helm status -o json`, `kubernetes.core.helm_info`, `helm_status`), uninstall with wait."
        " raw helm has no no-op (a repeated upgrade writes a revision) and kubernetes.core no rollback: n/a.",
        "- Play: wall time of the whole `ansible-playbook` run (one play, one task, local connection, default"
        " settings); for raw helm the helm command(s) alone.",
        "- Module process: wall time of each AnsiballZ Python process, logged by a bash wrapper set as"
        " `ansible_python_interpreter` (no extra process). In-module (ours): the `duration` our modules return"
        " (from the task context's creation to the result: without Python start-up and imports of the module file).",
        f"- Counting ({'one extra round per scenario' if counting else 'off'}): helm processes through a wrapper script"
        " as `binary_path`; Kubernetes API requests through `kubectl proxy -v=6` (a request per 'Filter accepting'"
        " line, watches included), with a kubeconfig that sends helm and the Python client there. These rounds are"
        " not timed.",
        "- helm_releases targets: apart from the scale points, 20 no-op releases in one task against the kubernetes.core"
        " play of 20 hosts, and 50 first installs (concurrency = forks) against 50 raw `helm install --wait` as many at a"
        " time, in alternating rounds (BENCH_TARGET_ROUNDS, uninstalled between rounds); medians with min–max.",
        f"- Scale: {scale_rounds} timed round(s) per point; N releases in one play with forks={forks} (raw helm: the same"
        " number of parallel commands), each release a generated chart of 10 ConfigMaps (releases N=1 is the"
        " resources N=10 run); one release of a generated chart of N ConfigMaps. Growth N^k: k between the two"
        " largest sizes (1 is linear).",
    ]


def run_rounds(bench: harness.Bench, scenario: harness.Scenario, contenders: t.Sequence[str],
               plans: t.Sequence[tuple[int, bool]], samples: list[dict[str, t.Any]]) -> None:
    """Rounds of one scenario on one helm major (namespaces prepared by the caller); each
    (round number, counting) in ``plans`` runs every operation, A B C per operation."""
    for round_no, count in plans:
        if count:
            bench.start_counting()
        try:
            broken: set[str] = set()
            if (scenario.name == "demo" or scenario.name.startswith("releases-")) and not count:
                samples.append(bench.floor(scenario, round_no))
            for op in scenario.ops:
                for c in contenders:
                    if not bench.supports(c, op) or c in broken:
                        continue
                    if c == "stack" and scenario.name.startswith("resources-"):
                        continue  # helm_releases is about many releases, not large ones
                    sample = bench.run(c, op, scenario, round_no, count)
                    samples.append(sample)
                    tag = "count" if count else "time"
                    log(f"{bench.helm.label} {scenario.name} r{round_no} {tag} {op:9} {c:5} "
                        f"{'ok ' if sample['ok'] else 'FAILED'} {sample['wall']:.2f}s"
                        + (f" module {harness.median(sample.get('module') or []) or 0:.2f}s" if c == "ours" else "")
                        + (f" helm={sample.get('helm_processes')} api={sample.get('api_requests')}" if count else "")
                        + (f" {sample['error'][:300]!r}" if not sample["ok"] else ""))
                    if not sample["ok"]:
                        broken.add(c)
            for c in broken:
                bench.force_cleanup(scenario, c)
        finally:
            if count:
                bench.stop_counting()


def run_scenario(bench: harness.Bench, scenario: harness.Scenario, contenders: t.Sequence[str],
                 samples: list[dict[str, t.Any]]) -> None:
    bench.prepare(scenario, contenders)
    try:
        plans = [(r, False) for r in range(scenario.rounds)] + ([(scenario.rounds, True)] if scenario.counting else [])
        run_rounds(bench, scenario, contenders, plans, samples)
    finally:
        bench.cleanup(scenario, contenders)


def run_demo(benches: list[harness.Bench], scenario: harness.Scenario, samples: list[dict[str, t.Any]],
             started: float, cap_min: float, notes: list[str]) -> int:
    """The demo chart's rounds, helm 3 and helm 4 alternating round by round, then a counting
    round each; fewer timed rounds (at least one) when the next one and the counting round
    would pass ``cap_min`` minutes of the run. Returns the timed rounds run."""
    for bench in benches:
        bench.prepare(scenario, CONTENDERS)
    try:
        demo_started = time.monotonic()
        done = 0
        for r in range(scenario.rounds):
            if done:
                per_round = (time.monotonic() - demo_started) / done
                spent = time.monotonic() - started
                if (spent + 2 * per_round) / 60 > cap_min:
                    notes.append(f"demo chart: {done} timed round(s) instead of {scenario.rounds}: a round took"
                                 f" {per_round / 60:.1f} min (both helm majors) and the demo's share of the budget is"
                                 f" {cap_min:.0f} min.")
                    log(notes[-1])
                    break
            for bench in benches:
                run_rounds(bench, scenario, CONTENDERS, [(r, False)], samples)
            done += 1
        if scenario.counting:
            for bench in benches:
                run_rounds(bench, scenario, CONTENDERS, [(done, True)], samples)
        return done
    finally:
        for bench in benches:
            bench.cleanup(scenario, CONTENDERS)


def run_stack_targets(bench: harness.Bench, chart: Path, rounds: int, samples: list[dict[str, t.Any]]) -> None:
    """helm_releases' two targets, apart from the scale points, whose one round of a few seconds
    is at the mercy of whatever else the machine does then: ``rounds`` alternating pairs each,
    20 no-op releases in one task against the kubernetes.core play of 20 hosts, and 50 installs
    (concurrency = forks) against as many raw helm installs; the report takes the medians."""
    noop = harness.Scenario(report.TARGET_NOOP, chart, {}, {"revision": "two"}, 20, rounds, ("noop",), False)
    install = harness.Scenario(report.TARGET_INSTALL, chart, {}, {"revision": "two"}, 50, rounds, ("install",), False)

    def timed(contender: str, op: str, scenario: harness.Scenario, round_no: int) -> bool:
        sample = bench.run(contender, op, scenario, round_no, False)
        samples.append(sample)
        log(f"{bench.helm.label} {scenario.name} r{round_no} time {op:9} {contender:5} "
            f"{'ok ' if sample['ok'] else 'FAILED'} {sample['wall']:.2f}s" + (f" {sample['error'][:300]!r}" if not sample["ok"] else ""))
        return bool(sample["ok"])

    def untimed(contender: str, op: str, scenario: harness.Scenario) -> bool:
        sample = bench.run(contender, op, scenario, -1, False)
        if not sample["ok"]:
            log(f"{bench.helm.label} {scenario.name} {op} {contender} FAILED {sample['error'][:300]!r}")
            bench.force_cleanup(scenario, contender)
        return bool(sample["ok"])

    bench.prepare(noop, ("kcore", "stack"))
    try:
        if untimed("kcore", "install", noop) and untimed("stack", "install", noop):
            for round_no in range(rounds):
                for contender in ("kcore", "stack"):
                    timed(contender, "noop", noop, round_no)
    finally:
        bench.cleanup(noop, ("kcore", "stack"))
    bench.prepare(install, ("raw", "stack"))
    try:
        for round_no in range(rounds):
            for contender in ("raw", "stack"):
                timed(contender, "install", install, round_no)
                untimed(contender, "uninstall", install)
    finally:
        bench.cleanup(install, ("raw", "stack"))


def estimate(took: dict[tuple[str, str], tuple[int, float, int]], helm: str, scenario: harness.Scenario) -> float:
    """Seconds a scale point will take, from the largest smaller point of the same kind already
    run (for releases, at first, the 10-resource release, which is one release of that chart),
    proportional to the operations run and growing with size as N^0.5 for resources (each play
    has a large fixed cost) and linearly for releases (each is a module process on 2 cores)."""
    kind, _, size_text = scenario.name.partition("-")
    if kind == "demo":
        return 0.0
    size = int(size_text)
    known = sorted(v for (h, name), v in took.items() if h == helm and name.startswith(kind + "-") and v[0] < size)
    if known:
        last_size, seconds, last_ops = known[-1]
    elif kind == "releases" and (helm, "resources-10") in took:
        _, seconds, last_ops = took[(helm, "resources-10")]
        last_size = 1
    else:
        return 0.0
    ops = len(scenario.ops) * (2 if scenario.counting else 1)
    exponent = 1.0 if kind == "releases" else 0.5
    return seconds * (size / max(last_size, 1)) ** exponent * ops / max(last_ops, 1)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        run = json.loads(Path(sys.argv[2]).read_text())
        run["notes"] = static_notes()  # text beside the code, not a measurement: the current one
        Path(os.environ.get("BENCH_OUTPUT", harness.BENCH / "RESULTS.md")).write_text(report.render(run))
        return 0
    started = time.monotonic()
    machine = harness.machine()
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    scale_rounds = int(os.environ.get("BENCH_SCALE_ROUNDS", "1"))
    resources = [int(x) for x in env_list("BENCH_RESOURCES", "10,100,500")]
    scales = [int(x) for x in env_list("BENCH_SCALES", "1,20,50")]
    counting = os.environ.get("BENCH_COUNT", "1") == "1"
    forks = int(os.environ.get("BENCH_FORKS", "10"))
    do_profile = os.environ.get("BENCH_PROFILE", "1") == "1"
    scale_ops = tuple(op for op in report.OPS if op in env_list("BENCH_SCALE_OPS", "install,noop,status,uninstall"))
    count_releases = os.environ.get("BENCH_COUNT_RELEASES", "0") == "1"
    budget = float(os.environ.get("BENCH_BUDGET_MIN", "40"))
    output = Path(os.environ.get("BENCH_OUTPUT", harness.BENCH / "RESULTS.md"))
    samples_path = Path(os.environ.get("BENCH_SAMPLES", harness.REPO / "build" / "bench" / "samples.json"))
    command = " ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith("BENCH_")) or "defaults"
    log(f"bench: load average {machine['load_start']}; settings: {command}")

    env = cluster_env()
    cluster = harness.Cluster(env["KUBECONFIG"], env["HELM_ENGINE_KUBECTL"])
    helms = []
    for label in env_list("BENCH_HELMS", "helm3,helm4"):
        binary = env["HELM_ENGINE_HELM3" if label == "helm3" else "HELM_ENGINE_HELM4"]
        version = subprocess.run([binary, "version", "--short"], capture_output=True, text=True, check=True).stdout.strip()
        helms.append(harness.Helm(label, binary, version))
    kcore = kubernetes_core.ensure()
    run_id = uuid.uuid4().hex[:5]
    workdir = harness.new_workdir()
    samples: list[dict[str, t.Any]] = []
    extra: dict[str, t.Any] = {"template_edit_detected": {}}
    profiles: dict[str, dict[str, t.Any]] = {}
    notes: list[str] = []
    benches = [harness.Bench(cluster, h, workdir / h.label, kcore, run_id, forks, log) for h in helms]
    scenarios = [harness.Scenario("demo", harness.DEMO_CHART, harness.DEMO_V1, harness.DEMO_V2, 1, rounds, report.OPS,
                                  counting)]
    for n in resources:
        chart = harness.generated_chart(workdir / "charts", n)
        # Requests are counted at the smallest and largest size (enough to see how they grow).
        scenarios.append(harness.Scenario(f"resources-{n}", chart, {}, {"revision": "two"}, 1, scale_rounds, report.OPS,
                                          counting and n in (min(resources), max(resources))))
    ten = harness.generated_chart(workdir / "charts", 10)
    for n in scales:
        if n == 1 and 10 in resources:
            continue  # the same run as resources-10: its samples are copied below
        scenarios.append(harness.Scenario(f"releases-{n}", ten, {}, {"revision": "two"}, n, scale_rounds, scale_ops,
                                          counting and count_releases))
    # Most telling first: if the time budget runs out, the points left out are middle and
    # largest sizes, never the demo chart or the extremes of the resource scale.
    def priority(scenario: harness.Scenario) -> tuple[int, int]:
        kind, _, size = scenario.name.partition("-")
        size_n = int(size or 0)
        if kind == "demo":
            return (0, 0)
        if kind == "resources" and size_n in (min(resources), max(resources)):
            return (1, size_n)
        return (2, size_n)
    scenarios.sort(key=priority)
    try:
        # Scenario by scenario, both helm majors each: if the time budget runs out, what is
        # left out is the largest scale points, for both majors alike.
        took: dict[tuple[str, str], tuple[int, float, int]] = {}  # (helm, scenario) -> (size, seconds, ops run)
        demo_rounds = run_demo(benches, scenarios[0], samples, started, budget * 0.55, notes) if rounds > 0 else 0
        for scenario in scenarios[1:]:
            for bench in benches:
                spent = (time.monotonic() - started) / 60
                guess = estimate(took, bench.helm.label, scenario) / 60
                if spent + guess > budget:
                    notes.append(f"{bench.helm.label} {scenario.name}: skipped: {spent:.1f} min spent, about {guess:.1f}"
                                 f" more needed, over the {budget:g} min budget (BENCH_BUDGET_MIN).")
                    log(notes[-1])
                    continue
                if scenario.rounds > 0:
                    t0 = time.monotonic()
                    run_scenario(bench, scenario, CONTENDERS, samples)
                    size = scenario.name.partition("-")[2]
                    took[(bench.helm.label, scenario.name)] = (int(size or 1), time.monotonic() - t0,
                                                               len(scenario.ops) * (2 if scenario.counting else 1))
        target_rounds = int(os.environ.get("BENCH_TARGET_ROUNDS", "3"))
        if target_rounds > 0:
            for bench in benches:
                run_stack_targets(bench, ten, target_rounds, samples)
        if 1 in scales and 10 in resources:
            samples += [dict(s, scenario="releases-1") for s in samples if s["scenario"] == "resources-10"]
        for bench in benches:
            helm = bench.helm
            log(f"{helm.label}: template edit check")
            extra["template_edit_detected"][helm.label] = harness.template_edit_detected(cluster, helm, workdir, run_id)
            log(f"{helm.label}: secret sweep of a 500-resource diff")
            extra.setdefault("secret_sweep", {})[helm.label] = harness.secret_sweep(cluster, helm, workdir, run_id)
            if os.environ.get("BENCH_DRIFT", "1") == "1":
                log(f"{helm.label}: drift corrected")
                extra.setdefault("drift_corrected", {})[helm.label] = harness.drift_correction(cluster, helm, workdir, run_id)
            if do_profile:
                log(f"{helm.label}: profiling no-op and status")
                profiles[helm.label] = profiling.profile_ops(cluster, helm, workdir, run_id)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    machine["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    cluster_dir = os.environ.get("HELM_ENGINE_CLUSTER_DIR")
    run = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "elapsed": time.monotonic() - started,
        "command": command,
        "machine": machine,
        "cluster": (f"private cluster ({cluster_dir}, port base {os.environ.get('HELM_ENGINE_PORT_BASE', '16400')})"
                    if cluster_dir else "the shared local cluster (tools/cluster.sh, default port base)")
                   + ", kube-apiserver, etcd, controller-manager and scheduler on this machine, kwok for the nodes",
        "versions": versions(cluster, helms),
        "helm_versions": {h.label: h.version for h in helms},
        "method": method_lines(demo_rounds, scale_rounds, forks, counting),
        "samples": samples,
        "extra": extra,
        "profile": profiling.markdown(profiles, helms[-1].label) if profiles else [],
        "notes": notes + static_notes(),
    }
    plot = report.scale_svg(samples, [h.label for h in helms])
    if plot:
        plot_path = output.parent / "scale.svg"
        plot_path.write_text(plot)
        run["plot"] = plot_path.name
    samples_path.parent.mkdir(parents=True, exist_ok=True)
    samples_path.write_text(json.dumps(run, indent=1))
    output.write_text(report.render(run))
    failed = [s for s in samples if not s["ok"]]
    log(f"bench: wrote {output} ({len(samples)} runs, {len(failed)} failed) in {(time.monotonic() - started) / 60:.1f} min")
    return 1 if failed else 0


def static_notes() -> list[str]:
    """What the figures need to be read right; kept beside the code that produces them."""
    path = harness.BENCH / "NOTES.md"
    if not path.exists():
        return []
    notes: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("- "):
            notes.append(line[2:].strip())
        elif line.startswith("  ") and notes:
            notes[-1] += " " + line.strip()
    return notes


if __name__ == "__main__":
    sys.exit(main())
