"""Where our no-op and status spend their time: cProfile on the module process (run directly,
as AnsiballZ would, on the demo chart), summarised for bench/RESULTS.md."""

from __future__ import annotations

import pstats
import re
import typing as t
from pathlib import Path

from bench import harness

# Time inside these functions is attributed to one cost each (cumulative, so nested calls of
# the same function are not counted twice).
CATEGORIES = (
    ("importing modules (all packages)", lambda f, name: name == "_find_and_load"),
    ("helm processes (start to exit)", lambda f, name: name == "run_process" and f.endswith("_helm.py")),
    ("Kubernetes API requests (our client)", lambda f, name: name == "_call" and f.endswith("_kube.py")),
    ("building the kubernetes client", lambda f, name: name == "__init__" and f.endswith("_kube.py")),
    ("YAML parsing", lambda f, name: name in ("load", "safe_load", "load_all", "safe_load_all") and "yaml" in f),
)


def _short(path: str) -> str:
    for marker in ("ansible_collections/ai_mesh/helm_engine/", "site-packages/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return re.sub(r"^.*/", "", path)


def summarize(profile: Path, top: int = 12) -> dict[str, t.Any]:
    stats = pstats.Stats(str(profile))
    raw = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = max(ct for (_, _, _, ct, _) in raw.values())
    categories = []
    for label, match in CATEGORIES:
        seconds = sum(v[3] for (f, _, name), v in raw.items() if match(f, name))
        categories.append((label, seconds))
    ours = sorted(((v[3], f"{_short(f)}:{line}({name})") for (f, line, name), v in raw.items()
                   if "helm_engine/plugins" in f), reverse=True)[:top]
    self_time = sorted(((v[2], f"{_short(f)}:{line}({name})", v[1]) for (f, line, name), v in raw.items()),
                       reverse=True)[:top]
    return {"total": total, "categories": categories, "ours": ours, "self": self_time}


def imports_by_package(importtime_log: str, top: int = 8) -> list[tuple[str, float]]:
    """Seconds of import (own time of each module, -X importtime) per top-level package."""
    totals: dict[str, float] = {}
    for line in importtime_log.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            name = match[2]
            if name.startswith("ansible_collections."):
                package = ".".join(name.split(".")[:3])
            elif name.startswith("ansible."):
                package = ".".join(name.split(".")[:2])
            else:
                package = name.split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(match[1]) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def profile_ops(cluster: harness.Cluster, helm: harness.Helm, workdir: Path, run_id: str) -> dict[str, dict[str, t.Any]]:
    """Install the demo chart with our module, then profile a no-op and a status (a warm-up
    run of each first, with import timing, so the disk cache is warm as in a playbook's steady
    state)."""
    ns = f"bench-{run_id}-{helm.label[-1]}-profile"
    common = {"name": "prof", "namespace": ns, "binary_path": helm.binary, "kubeconfig": cluster.kubeconfig}
    deploy = dict(common, chart_ref=str(harness.DEMO_CHART), release_values=harness.DEMO_V1, create_namespace=True,
                  wait=True, timeout=harness.TIMEOUT)
    out: dict[str, dict[str, t.Any]] = {}
    try:
        first = harness.run_module("helm_deploy", deploy, workdir)
        if first.get("failed"):
            raise RuntimeError(f"profiling: install failed: {first.get('msg')}")
        for op, module, args in (("no-op deploy", "helm_deploy", deploy), ("status", "helm_status", common)):
            importtime = workdir / f"{helm.label}-{module}.importtime"
            harness.run_module(module, args, workdir, importtime_to=importtime)
            target = workdir / f"{helm.label}-{module}.prof"
            result = harness.run_module(module, args, workdir, profile_to=target)
            summary = summarize(target)
            summary["duration"] = result.get("duration")
            summary["helm_processes"] = result.get("helm_processes")
            summary["kube_requests"] = result.get("kube_requests")
            summary["changed"] = result.get("changed")
            summary["imports"] = imports_by_package(importtime.read_text())
            out[op] = summary
    finally:
        cluster.kubectl_run("delete", "namespace", ns, "--wait=false", "--ignore-not-found")
    return out


def markdown(profiles: dict[str, dict[str, dict[str, t.Any]]], detail_helm: str) -> list[str]:
    """A cost table per helm major, then the top functions for one of them."""
    lines = [
        "cProfile of the module process run directly (as AnsiballZ runs it, without Ansible's own",
        "packaging), on the demo chart release, after one warm-up run. Wall-clock seconds; the",
        "categories overlap where one contains another (imports happen inside the client's construction).",
        "",
        "| helm | operation | whole process | " + " | ".join(label for label, _ in CATEGORIES)
        + " | helm processes | API requests (ours) | duration reported |",
        "|" + "---|" * (6 + len(CATEGORIES)),
    ]
    for helm_label, ops in sorted(profiles.items()):
        for op, s in ops.items():
            cells = [f"{sec:.3f} s ({sec / s['total'] * 100:.0f}%)" for _, sec in s["categories"]]
            lines.append(f"| {helm_label} | {op} | {s['total']:.3f} s | " + " | ".join(cells)
                         + f" | {s['helm_processes']} | {s['kube_requests']} | {s['duration']} s |")
    lines += ["", "Imports by package (`python -X importtime`, own time of each module summed; the warm-up run):", "",
              "| helm | operation | packages, slowest first |", "|---|---|---|"]
    for helm_label, ops in sorted(profiles.items()):
        for op, s in ops.items():
            lines.append(f"| {helm_label} | {op} | " + ", ".join(f"{pkg} {sec:.3f} s" for pkg, sec in s.get("imports", []))
                         + " |")
    detail = profiles.get(detail_helm) or {}
    for op, s in detail.items():
        lines += ["", f"{detail_helm}, {op}: our functions by cumulative time", "",
                  "| cumulative | function |", "|---|---|"]
        lines += [f"| {ct:.3f} s | `{name}` |" for ct, name in s["ours"]]
        lines += ["", f"{detail_helm}, {op}: functions by own time (all code)", "",
                  "| own time | calls | function |", "|---|---|---|"]
        lines += [f"| {tt:.3f} s | {calls} | `{name}` |" for tt, name, calls in s["self"]]
    return lines
