"""Time to roll back a doomed upgrade: fail-fast against helm's own --atomic, helm 3 and helm 4.

An upgrade of the sample chart whose pods crash-loop (kwok marker helm-engine.test/crash) runs
with `timeout: 5m` and atomic, once through helm_deploy (fail_fast on, its default) and once as
plain `helm upgrade --wait --atomic` (helm 4: --rollback-on-failure). The time is from the start
of the upgrade until it returns with the previous revision deployed again; both are checked.

    python -m bench.doomed [--out bench/FAIL_FAST.md] [--helms helm3,helm4] [--timeout 5m]

`make bench` runs it after the main harness. Plain helm waits out its timeout, so the run takes
about timeout + 1 minute per helm major.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "tests" / "charts" / "sample"
COLLECTIONS = REPO / "build" / "collections"


def cluster_env() -> dict[str, str]:
    out = subprocess.run([str(REPO / "tools" / "cluster.sh"), "env"], check=True, capture_output=True, text=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines() if "=" in line)


def helm_json(helm: str, kubeconfig: str, *args: str) -> object:
    out = subprocess.run([helm, *args, "--kubeconfig", kubeconfig, "-o", "json"], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def history(helm: str, kubeconfig: str, namespace: str) -> list[dict]:
    return helm_json(helm, kubeconfig, "history", "web", "-n", namespace)  # type: ignore[return-value]


def install_good(helm: str, kubeconfig: str, namespace: str) -> None:
    subprocess.run([helm, "upgrade", "--install", "web", str(CHART), "-n", namespace, "--create-namespace",
                    "--kubeconfig", kubeconfig, "--set", "replicaCount=1", "--wait", "--timeout", "2m"],
                   check=True, capture_output=True)


def ours(helm: str, kubeconfig: str, namespace: str, timeout: str, workdir: Path) -> tuple[float, dict]:
    args = {"ANSIBLE_MODULE_ARGS": {
        "name": "web", "namespace": namespace, "chart_ref": str(CHART), "binary_path": helm, "kubeconfig": kubeconfig,
        "release_values": {"replicaCount": 1, "crashLoop": True}, "wait": True, "atomic": True, "timeout": timeout,
        "_ansible_tmpdir": str(workdir), "_ansible_remote_tmp": str(workdir)}}
    args_file = workdir / "args.json"
    args_file.write_text(json.dumps(args))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "plugins" / "modules" / "helm_deploy.py"), str(args_file)],
                          capture_output=True, text=True, env=env, cwd=workdir)
    elapsed = time.monotonic() - started
    result = json.loads(proc.stdout)
    return elapsed, result


def plain(helm: str, kubeconfig: str, namespace: str, timeout: str, major: int) -> tuple[float, int]:
    atomic = "--rollback-on-failure" if major >= 4 else "--atomic"
    started = time.monotonic()
    proc = subprocess.run([helm, "upgrade", "web", str(CHART), "-n", namespace, "--kubeconfig", kubeconfig,
                           "--set", "replicaCount=1", "--set", "crashLoop=true", "--wait", "--timeout", timeout, atomic],
                          capture_output=True, text=True)
    return time.monotonic() - started, proc.returncode


def rolled_back(entries: list[dict]) -> bool:
    return entries[-1]["status"] == "deployed" and entries[-1]["description"].startswith("Rollback to 1") \
        and entries[-2]["status"] == "failed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "FAIL_FAST.md")
    parser.add_argument("--helms", default=os.environ.get("BENCH_HELMS", "helm3,helm4"))
    parser.add_argument("--timeout", default="5m")
    options = parser.parse_args()
    env = cluster_env()
    kubeconfig = env["KUBECONFIG"]
    rows = []
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-doomed-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    for name in [h.strip() for h in options.helms.split(",") if h.strip()]:
        helm = env["HELM_ENGINE_HELM3" if name == "helm3" else "HELM_ENGINE_HELM4"]
        major = 3 if name == "helm3" else 4
        row = {"helm": name}
        for contender in ("fail-fast", "plain"):
            namespace = f"bench-doomed-{uuid.uuid4().hex[:8]}"
            try:
                install_good(helm, kubeconfig, namespace)
                if contender == "fail-fast":
                    seconds, result = ours(helm, kubeconfig, namespace, options.timeout, workdir)
                    kind = (result.get("error") or {}).get("kind")
                    row["fail-fast"] = seconds
                    row["fail-fast kind"] = kind
                    row["cause"] = ", ".join(f"{r['kind']}/{r['name']} {r['reason']}"
                                             for r in (result.get("error") or {}).get("resources") or [])
                else:
                    seconds, rc = plain(helm, kubeconfig, namespace, options.timeout, major)
                    row["plain"] = seconds
                    row["plain rc"] = rc
                row[f"{contender} rolled back"] = rolled_back(history(helm, kubeconfig, namespace))
            finally:
                subprocess.run([env["HELM_ENGINE_KUBECTL"], "--kubeconfig", kubeconfig, "delete", "namespace", namespace,
                                "--wait=false"], capture_output=True, check=False)
            print(f"{name} {contender}: {seconds:.1f}s", file=sys.stderr, flush=True)
        rows.append(row)
    load = os.getloadavg()
    lines = [
        "# Time to roll back a doomed upgrade",
        "",
        f"Generated by `python -m bench.doomed` (part of `make bench`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};",
        f"{os.cpu_count()} cores, load average {load[0]:.1f} at the end. An upgrade whose pods crash-loop, with",
        f"`timeout: {options.timeout}` and atomic; seconds from its start until it returned with revision 1 deployed again.",
        "",
        "| helm | fail-fast (helm_deploy) | plain helm --atomic / --rollback-on-failure | ratio | both rolled back | cause reported |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ok = row.get("fail-fast rolled back") and row.get("plain rolled back") and row.get("fail-fast kind") == "rollout_failed"
        lines.append(f"| {row['helm']} | {row['fail-fast']:.1f} s | {row['plain']:.1f} s | "
                     f"{row['fail-fast'] / row['plain']:.2f}x | {'yes' if ok else 'NO'} | {row.get('cause') or '-'} |")
    lines.append("")
    options.out.write_text("\n".join(lines))
    print(f"wrote {options.out}", file=sys.stderr)
    return 0 if all(r.get("fail-fast rolled back") and r.get("plain rolled back") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
