"""Statistics, target checks and the Markdown of bench/RESULTS.md.

Pure functions over the samples the harness records (no cluster, no subprocess), so the unit
tests can check them. A sample is a dict:

    {"helm": "helm4", "scenario": "demo", "op": "install", "contender": "ours", "round": 0,
     "kind": "timing" | "count", "ok": True, "wall": 3.2, "module": [1.1, ...],
     "process": [1.4, ...], "helm_processes": 2, "api_requests": 17, "error": ""}

``wall`` is the whole ansible-playbook run (or the helm command for raw helm), ``module`` what
our modules report as ``duration`` (one per release), ``process`` the wall time of each module
process (the AnsiballZ Python process, measured by the interpreter wrapper), ``helm_processes``
and ``api_requests`` come from the counting rounds only.
"""

from __future__ import annotations

import math
import statistics
import typing as t

CONTENDERS = ("raw", "kcore", "ours", "stack")
CONTENDER_NAMES = {"raw": "raw helm CLI", "kcore": "kubernetes.core 6.6.0", "ours": "ai_mesh.helm_engine",
                   "stack": "helm_releases (one task)"}
OPS = ("install", "noop", "upgrade", "rollback", "status", "uninstall")
OP_NAMES = {
    "install": "install --wait", "noop": "no-op deploy", "upgrade": "upgrade --wait",
    "rollback": "rollback --wait", "status": "status", "uninstall": "uninstall --wait",
}
WAITED_OPS = ("install", "upgrade", "rollback")

Sample = t.Dict[str, t.Any]


class Stat(t.NamedTuple):
    median: float
    low: float
    high: float
    n: int


def stat(values: t.Iterable[float | None]) -> Stat | None:
    """Median with min and max of the values that exist; None when there are none."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return Stat(statistics.median(present), min(present), max(present), len(present))


def fmt_seconds(value: Stat | None) -> str:
    """'1.23 s (1.10–1.40)'; the range is left out for a single run."""
    if value is None:
        return "n/a"
    if value.n == 1 or value.low == value.high:
        return f"{value.median:.2f} s"
    return f"{value.median:.2f} s ({value.low:.2f}–{value.high:.2f})"


def fmt_ms(value: Stat | None) -> str:
    """'1.2 ms (max 1.9)', for what is too quick for seconds."""
    if value is None:
        return "n/a"
    return f"{value.median * 1000:.1f} ms (max {value.high * 1000:.1f})"


def fmt_count(value: Stat | None) -> str:
    if value is None:
        return "n/a"
    if value.low == value.high:
        return f"{value.median:g}"
    return f"{value.median:g} ({value.low:g}–{value.high:g})"


def ratio(numerator: Stat | None, denominator: Stat | None) -> float | None:
    if numerator is None or denominator is None or denominator.median <= 0:
        return None
    return numerator.median / denominator.median


def _minus(value: Stat, floor: Stat) -> Stat:
    """A median less a floor's median, for 'what is left beyond Ansible's own cost'."""
    return Stat(max(value.median - floor.median, 0.0), value.low, value.high, value.n)


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def select(samples: t.Iterable[Sample], **match: t.Any) -> list[Sample]:
    return [s for s in samples if all(s.get(k) == v for k, v in match.items())]


def _ok(samples: list[Sample], kind: str) -> list[Sample]:
    return [s for s in samples if s.get("kind") == kind and s.get("ok")]


def per_run_median(sample: Sample, key: str) -> float | None:
    """One figure per run: the median over the run's releases (one value per module process)."""
    values = sample.get(key) or []
    return statistics.median(values) if values else None


def summarize(samples: list[Sample], helm: str, scenario: str, op: str, contender: str) -> dict[str, t.Any]:
    chosen = select(samples, helm=helm, scenario=scenario, op=op, contender=contender)
    timing = _ok(chosen, "timing")
    counting = _ok(chosen, "count")
    return {
        "wall": stat(s["wall"] for s in timing),
        "module": stat(per_run_median(s, "module") for s in timing),
        "process": stat(per_run_median(s, "process") for s in timing),
        "helm_processes": stat(s.get("helm_processes") for s in counting),
        "api_requests": stat(s.get("api_requests") for s in counting),
        "failed": len([s for s in chosen if not s.get("ok")]),
        "runs": len(timing),
    }


def in_module(summary: dict[str, t.Any], contender: str) -> Stat | None:
    """The time spent inside the tool: our reported duration, kubernetes.core's module process,
    the raw helm command itself."""
    if contender == "ours":
        return summary["module"]
    if contender == "kcore":
        return summary["process"]
    return summary["wall"]


def growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """k in time ~ N^k between the two largest sizes measured (1.0 is linear, below it is the
    fixed cost being amortised, above it is worse than linear)."""
    usable = sorted((n, v) for n, v in points if v and v > 0)
    if len(usable) < 2:
        return None
    (n1, v1), (n2, v2) = usable[-2], usable[-1]
    if n2 == n1:
        return None
    return math.log(v2 / v1) / math.log(n2 / n1)


class Target(t.NamedTuple):
    helm: str
    name: str
    limit: str
    measured: str
    met: bool | None  # None: not measured
    margin: str


def _margin(value: float, limit: float, unit: str = "") -> str:
    """How far a figure is from its limit, in the limit's unit and in percent."""
    diff = value - limit
    pct = diff / limit * 100 if limit else float("inf")
    word = "over" if diff > 0 else "under"
    return f"{abs(diff):.2f}{unit} {word} ({pct:+.0f}%)"


# helm_releases' targets, measured in alternating rounds of their own (bench/run.py run_stack_targets).
TARGET_NOOP = "target-noop-20"
TARGET_INSTALL = "target-install-50"


def _scale_key(scenario: str) -> tuple[str, int] | None:
    kind, _, size = scenario.partition("-")
    if kind in ("releases", "resources") and size.isdigit():
        return kind, int(size)
    return None


def scales(samples: list[Sample], helm: str, kind: str) -> list[int]:
    found = set()
    for s in select(samples, helm=helm):
        key = _scale_key(s["scenario"])
        if key and key[0] == kind:
            found.add(key[1])
    return sorted(found)


def check_targets(samples: list[Sample], helm: str, extra: dict[str, t.Any] | None = None) -> list[Target]:
    """The targets of issue 12, each met or not and by how much."""
    extra = extra or {}
    out: list[Target] = []

    def add(name: str, limit: str, value: float | None, bound: float, shown: str, unit: str = "") -> None:
        if value is None:
            out.append(Target(helm, name, limit, "not measured", None, ""))
        else:
            out.append(Target(helm, name, limit, shown, value <= bound, _margin(value, bound, unit)))

    releases = scales(samples, helm, "releases")
    many = 20 if 20 in releases else (max(releases) if releases and max(releases) > 1 else None)

    def play_ratio(op: str, bound: float, label: str) -> None:
        if many is None:
            out.append(Target(helm, label, f"≤ {bound}× kubernetes.core", "not measured", None, ""))
            return
        ours = summarize(samples, helm, f"releases-{many}", op, "ours")["wall"]
        theirs = summarize(samples, helm, f"releases-{many}", op, "kcore")["wall"]
        r = ratio(ours, theirs)
        note = "" if many == 20 else f" (measured at {many} releases, not 20)"
        floor = summarize(samples, helm, f"releases-{many}", "ping", "ansible")["wall"]
        beyond = (f"; beyond Ansible's floor ({fmt_seconds(floor)} for a ping play of as many hosts):"
                  f" {fmt_ratio(ratio(_minus(ours, floor), _minus(theirs, floor)))}") if floor and ours and theirs else ""
        add(label + note, f"≤ {bound}× kubernetes.core", r, bound,
            f"{fmt_ratio(r)}: {fmt_seconds(ours)} vs {fmt_seconds(theirs)}{beyond}")

    play_ratio("noop", 0.7, "no-op: 20-release play")
    edit = extra.get("template_edit_detected", {}).get(helm)
    out.append(Target(helm, "no-op: template edit still detected", "changed", "not measured" if edit is None
                      else ("detected" if edit else "NOT detected"), edit, ""))
    noop = summarize(samples, helm, "demo", "noop", "ours")["module"]
    add("no-op: in-module time (demo chart)", "< 0.25 s", noop.median if noop else None, 0.25, fmt_seconds(noop), " s")
    status = summarize(samples, helm, "demo", "status", "ours")["module"]
    add("status: in-module time (demo chart)", "< 0.1 s", status.median if status else None, 0.1, fmt_seconds(status), " s")
    big = summarize(samples, helm, "resources-500", "status", "ours")["module"]
    add("status: in-module time, 500 resources", "< 1 s", big.median if big else None, 1.0, fmt_seconds(big), " s")
    play_ratio("status", 0.8, "status: 20-release play")
    for op in WAITED_OPS:
        ours = summarize(samples, helm, "demo", op, "ours")["module"]
        raw = summarize(samples, helm, "demo", op, "raw")["wall"]
        r = ratio(ours, raw)
        add(f"{OP_NAMES[op]}: in-module time / raw helm", "≤ 1.10×", r, 1.10,
            f"{fmt_ratio(r)}: {fmt_seconds(ours)} vs {fmt_seconds(raw)}")
    for kind in ("releases", "resources"):
        sizes = scales(samples, helm, kind)
        worst: tuple[float, str] | None = None
        for op in OPS:
            points = []
            for n in sizes:
                w = summarize(samples, helm, f"{kind}-{n}", op, "ours")["wall"]
                if w is not None:
                    points.append((n, w.median))
            k = growth_exponent(points)
            if k is not None and (worst is None or k > worst[0]):
                worst = (k, op)
        label = f"{kind}: time grows no faster than linearly ({', '.join(map(str, sizes)) or 'none'})"
        if worst is None:
            out.append(Target(helm, label, "exponent ≤ 1.0", "not measured", None, ""))
        else:
            add(label, "exponent ≤ 1.0", worst[0], 1.0, f"worst: {worst[1]}, N^{worst[0]:.2f}")
    # Issue 19: every no-op checks the live objects for drift (drift=correct by default).
    add("no-op with drift check: in-module time (demo chart)", "< 0.15 s", noop.median if noop else None, 0.15,
        fmt_seconds(noop), " s")
    big_noop = summarize(samples, helm, "resources-500", "noop", "ours")["module"]
    add("no-op with drift check: in-module time, 500 resources", "< 1 s", big_noop.median if big_noop else None, 1.0,
        fmt_seconds(big_noop), " s")
    # Issue 21: many releases in one helm_releases task, from the alternating rounds of its own
    # section (bench/run.py run_stack_targets), else from the one round of the scale points.
    def stack_target(scenario: str, fallback: str, op: str, other: str) -> tuple[t.Any, t.Any]:
        chosen = scenario if select(samples, helm=helm, scenario=scenario) else fallback
        return (summarize(samples, helm, chosen, op, "stack")["wall"], summarize(samples, helm, chosen, op, other)["wall"])

    stack_noop, kcore_noop = stack_target(TARGET_NOOP, "releases-20", "noop", "kcore")
    r = ratio(stack_noop, kcore_noop)
    add("helm_releases: 20 no-op releases in one task", "≤ 0.2× the kubernetes.core play of 20 hosts", r, 0.2,
        f"{fmt_ratio(r)}: {fmt_seconds(stack_noop)} vs {fmt_seconds(kcore_noop)}")
    stack_install, raw_install = stack_target(TARGET_INSTALL, "releases-50", "install", "raw")
    r = ratio(stack_install, raw_install)
    add("helm_releases: 50 installs (concurrency 10)", "≤ 1.2× 50 raw helm installs, 10 at a time", r, 1.2,
        f"{fmt_ratio(r)}: {fmt_seconds(stack_install)} vs {fmt_seconds(raw_install)}")
    sizes = scales(samples, helm, "resources")
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        for op, label in (("noop", "no-op with drift check: requests grow with kinds, not resources"),):
            a = summarize(samples, helm, f"resources-{lo}", op, "ours")["api_requests"]
            b = summarize(samples, helm, f"resources-{hi}", op, "ours")["api_requests"]
            if a and b:
                add(label, "< 0.01 extra request per resource", (b.median - a.median) / (hi - lo), 0.01,
                    f"{a.median:g} requests at {lo} resources, {b.median:g} at {hi}", "")
            else:
                out.append(Target(helm, label, "< 0.01 extra request per resource", "not measured", None, ""))
        a = summarize(samples, helm, f"resources-{lo}", "status", "ours")["api_requests"]
        b = summarize(samples, helm, f"resources-{hi}", "status", "ours")["api_requests"]
        if a and b:
            per_resource = (b.median - a.median) / (hi - lo)
            add("status: no request per resource", "< 0.1 extra request per resource", per_resource, 0.1,
                f"{a.median:g} requests at {lo} resources, {b.median:g} at {hi}", "")
        else:
            out.append(Target(helm, "status: no request per resource", "< 0.1 extra request per resource",
                              "not measured", None, ""))
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def op_table(samples: list[Sample], helm: str, scenario: str) -> list[str]:
    """One row per operation: whole-run wall time, in-module time, ratios, helm processes and
    API requests of each contender."""
    header = ["operation", "raw helm: wall", "kubernetes.core: play", "ours: play", "ours / k.core (play)",
              "helm_releases: play", "k.core: module process", "ours: module process", "ours: in-module (duration)",
              "ours in-module / raw", "helm processes raw / k.core / ours / helm_releases",
              "API requests raw / k.core / ours / helm_releases"]
    rows = []
    for op in OPS:
        s = {c: summarize(samples, helm, scenario, op, c) for c in CONTENDERS}
        if not any(s[c]["runs"] or s[c]["failed"] for c in CONTENDERS):
            continue
        failed = [f"{c} {s[c]['failed']} failed" for c in CONTENDERS if s[c]["failed"]]
        rows.append([
            OP_NAMES[op] + (f" ({'; '.join(failed)})" if failed else ""),
            fmt_seconds(s["raw"]["wall"]),
            fmt_seconds(s["kcore"]["wall"]),
            fmt_seconds(s["ours"]["wall"]),
            fmt_ratio(ratio(s["ours"]["wall"], s["kcore"]["wall"])),
            fmt_seconds(s["stack"]["wall"]),
            fmt_seconds(s["kcore"]["process"]),
            fmt_seconds(s["ours"]["process"]),
            fmt_seconds(s["ours"]["module"]),
            fmt_ratio(ratio(s["ours"]["module"], s["raw"]["wall"])),
            " / ".join(fmt_count(s[c]["helm_processes"]) for c in CONTENDERS),
            " / ".join(fmt_count(s[c]["api_requests"]) for c in CONTENDERS),
        ])
    return _table(header, rows)


def scale_table(samples: list[Sample], helm: str, kind: str) -> list[str]:
    """Median wall time per size for each contender and operation, with the growth exponent
    between the two largest sizes."""
    sizes = scales(samples, helm, kind)
    if not sizes:
        return []
    header = ["operation", "contender"] + [f"N={n}" for n in sizes] + ["ours in-module per size (median per release)",
                                                                       "growth N^k (largest two)"]
    rows = []
    for op in OPS:
        for c in CONTENDERS:
            points, cells, inner = [], [], []
            for n in sizes:
                s = summarize(samples, helm, f"{kind}-{n}", op, c)
                w = s["wall"]
                cells.append(fmt_seconds(w) if not s["failed"] else f"{fmt_seconds(w)} ({s['failed']} failed)")
                if w is not None:
                    points.append((n, w.median))
                inner.append(fmt_seconds(s["module"]) if c == "ours" else "")
            if not points and not any("failed" in x for x in cells):
                continue
            k = growth_exponent(points)
            row = [OP_NAMES[op], CONTENDER_NAMES[c]] + cells + [" / ".join(inner) if c == "ours" else "",
                                                                "n/a" if k is None else f"{k:.2f}"]
            rows.append(row)
    return _table(header, rows)


def count_table(samples: list[Sample], helm: str, kind: str) -> list[str]:
    """API requests and helm processes per size (counting rounds), ours against the others."""
    sizes = scales(samples, helm, kind)
    rows = []
    for op in OPS:
        for c in CONTENDERS:
            cells = []
            for n in sizes:
                s = summarize(samples, helm, f"{kind}-{n}", op, c)
                cells.append(f"{fmt_count(s['api_requests'])} / {fmt_count(s['helm_processes'])}")
            if all(x == "n/a / n/a" for x in cells):
                continue
            rows.append([OP_NAMES[op], CONTENDER_NAMES[c]] + cells)
    if not rows:
        return []
    return _table(["operation", "contender"] + [f"N={n}: API requests / helm processes" for n in sizes], rows)


def breakdown_table(samples: list[Sample], helm: str) -> list[str]:
    """Where a play's time goes, from the timed rounds on the demo chart: Ansible's own floor (a
    one-ping play and its module process), the module process beyond a ping's, and for ours
    the Python start-up and imports (module process minus the reported duration)."""
    floor = summarize(samples, helm, "demo", "ping", "ansible")
    if floor["wall"] is None:
        return []
    rows = []
    for op in OPS:
        for c in ("kcore", "ours"):
            s = summarize(samples, helm, "demo", op, c)
            if s["wall"] is None:
                continue
            play, proc = s["wall"].median, (s["process"].median if s["process"] else None)
            outside = play - proc if proc is not None else None
            beyond = proc - floor["process"].median if proc is not None and floor["process"] else None
            startup = proc - s["module"].median if c == "ours" and proc is not None and s["module"] else None
            rows.append([OP_NAMES[op], CONTENDER_NAMES[c], f"{play:.2f} s",
                         "n/a" if outside is None else f"{outside:.2f} s",
                         "n/a" if proc is None else f"{proc:.2f} s",
                         "n/a" if beyond is None else f"{beyond:.2f} s",
                         "" if startup is None else f"{startup:.2f} s",
                         f"{s['module'].median:.2f} s" if c == "ours" and s["module"] else ""])
    header = ["operation", "contender", "play", "play outside the module process", "module process",
              "module process beyond a ping's", "start-up and imports (ours)", "in-module (ours)"]
    return [f"{helm}: Ansible's floor is {fmt_seconds(floor['wall'])} for a one-ping play, of which the ping's module"
            f" process is {fmt_seconds(floor['process'])} (medians of the timed rounds).", "",
            *_table(header, rows)]


def targets_table(targets: list[Target]) -> list[str]:
    rows = []
    for tg in targets:
        verdict = "not measured" if tg.met is None else ("**met**" if tg.met else "**missed**")
        rows.append([tg.helm, tg.name, tg.limit, tg.measured, verdict, tg.margin])
    return _table(["helm", "target", "limit", "measured", "verdict", "margin"], rows)


PLOT_COLOURS = {"raw": "#444444", "kcore": "#d95f02", "ours": "#1b9e77", "stack": "#7570b3"}


def scale_svg(samples: list[Sample], helms: list[str]) -> str:
    """Wall time against the number of releases, one panel per helm major and operation (install,
    no-op), a line per contender; empty when the releases scale was not measured."""
    panels = [(h, op) for h in helms for op in ("install", "noop") if len(scales(samples, h, "releases")) >= 2]
    if not panels:
        return ""
    width, height, pad = 360, 260, 48
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * len(panels)}" height="{height + 40}" '
             'font-family="sans-serif" font-size="11">', '<rect width="100%" height="100%" fill="white"/>']
    for index, (helm, op) in enumerate(panels):
        x0 = index * width
        sizes = scales(samples, helm, "releases")
        lines = {}
        for c in CONTENDERS:
            points = [(n, summarize(samples, helm, f"releases-{n}", op, c)["wall"]) for n in sizes]
            points = [(n, w.median) for n, w in points if w is not None]
            if len(points) >= 2:
                lines[c] = points
        top = max((w for points in lines.values() for _, w in points), default=1.0) * 1.1
        right = max(sizes)

        def xy(n: float, w: float) -> tuple[float, float]:
            return (x0 + pad + (width - 1.5 * pad) * n / right, height - pad + 10 - (height - 1.5 * pad) * w / top)

        parts.append(f'<text x="{x0 + width / 2}" y="16" text-anchor="middle" font-weight="bold">'
                     f'{helm}: {OP_NAMES[op]}, wall time (s) by releases</text>')
        ox, oy = xy(0, 0)
        ex, _ = xy(right, 0)
        _, ty = xy(0, top)
        parts.append(f'<line x1="{ox}" y1="{oy}" x2="{ex}" y2="{oy}" stroke="black"/>')
        parts.append(f'<line x1="{ox}" y1="{oy}" x2="{ox}" y2="{ty}" stroke="black"/>')
        for n in sizes:
            px, _ = xy(n, 0)
            parts.append(f'<text x="{px}" y="{oy + 14}" text-anchor="middle">{n}</text>')
        for fraction in (0.5, 1.0):
            _, py = xy(0, top * fraction / 1.1)
            parts.append(f'<text x="{ox - 4}" y="{py + 4}" text-anchor="end">{top * fraction / 1.1:.0f}</text>')
        for row, (c, points) in enumerate(lines.items()):
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(n, w) for n, w in points))
            parts.append(f'<polyline points="{path}" fill="none" stroke="{PLOT_COLOURS[c]}" stroke-width="2"/>')
            parts.append(f'<text x="{x0 + pad + 6}" y="{34 + 13 * row}" fill="{PLOT_COLOURS[c]}">{CONTENDER_NAMES[c]}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def render(run: dict[str, t.Any]) -> str:
    """The whole RESULTS.md from what the harness recorded in ``run``."""
    samples: list[Sample] = run["samples"]
    machine = run["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` ({run['command']}) on {run['date']}; the run took {run['elapsed'] / 60:.1f} min.",
        "Do not edit by hand: the next run rewrites this file.",
        "",
        "## Machine and versions",
        "",
        f"- {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']:.1f} GiB memory",
        f"- load average at start: {machine['load_start']}; at the end: {machine['load_end']}",
        f"- cluster: {run['cluster']}",
    ]
    lines += [f"- {name}: {version}" for name, version in run["versions"].items()]
    lines += [
        "",
        "## How it was measured",
        "",
        *run["method"],
        "",
    ]
    helms = sorted({s["helm"] for s in samples})
    extra = run.get("extra", {})
    all_targets = [tg for h in helms for tg in check_targets(samples, h, extra)]
    lines += ["## Targets (issues 12, 19 and 21)", ""]
    lines += targets_table(all_targets)
    met = sum(1 for tg in all_targets if tg.met)
    missed = sum(1 for tg in all_targets if tg.met is False)
    lines += ["", f"{met} met, {missed} missed, {len(all_targets) - met - missed} not measured.", ""]
    for h in helms:
        version = run["helm_versions"].get(h, h)
        lines += [f"## {h} ({version}): the demo chart", ""]
        lines += op_table(samples, h, "demo")
        floor = summarize(samples, h, "demo", "ping", "ansible")
        if floor["wall"] is not None:
            lines += ["", f"Ansible's own floor: the same play with one `ansible.builtin.ping` task takes "
                      f"{fmt_seconds(floor['wall'])}, its module process {fmt_seconds(floor['process'])}."]
        lines += [""]
        for kind, title in (("releases", "releases in one play (generated chart, 10 ConfigMaps each)"),
                            ("resources", "resources in one release (generated chart of ConfigMaps)")):
            table = scale_table(samples, h, kind)
            if table:
                lines += [f"### {h}: N {title}", "", *table, ""]
                counts = count_table(samples, h, kind)
                if counts:
                    lines += [*counts, ""]
    drift = extra.get("drift_corrected") or {}
    if drift:
        lines += ["## Drift", "", "A no-op checks the live objects of the release against its revision (drift=correct, the",
                  "default): its cost is in the no-op rows above. Drift corrected: the demo chart deployed, then a key of its",
                  "ConfigMap patched and its Service deleted with kubectl, then the same helm_deploy task again (it applies",
                  "the two objects back; no helm process), rounds of that:", ""]
        rows = []
        for h in helms:
            d = drift.get(h) or {}
            noop_module = summarize(samples, h, "demo", "noop", "ours")["module"]
            counted = select(samples, helm=h, scenario="demo", op="noop", contender="ours", kind="count")
            rows.append([h, "no-op with drift check", fmt_seconds(noop_module),
                         fmt_count(stat(s.get("api_requests") for s in counted)), ""])
            rows.append([h, "drift corrected", fmt_seconds(stat(d.get("module") or [])), fmt_count(stat(d.get("requests") or [])),
                         f"{d.get('corrected', 0)} of {d.get('rounds', 0)} rounds corrected, the next run a no-op"
                         f" {d.get('noop_after', 0)} times"])
        lines += _table(["helm", "what", "in-module time", "API requests", "checked"], rows) + [""]
    sweep = extra.get("secret_sweep") or {}
    if sweep:
        lines += ["## Secret sweep", "", "Every result passes through one last redaction sweep (Redactor.redact_tree) before it",
                  "leaves the module. Its cost on a large result: helm_deploy's check-mode plan with --diff of a chart of 500",
                  "ConfigMaps, values holding a password, the sweep timed over that very result:", ""]
        rows = [[h, str(sweep[h].get("resources")), f"{sweep[h].get('bytes', 0) / 1024:.0f} KiB",
                 fmt_ms(stat(sweep[h].get("seconds") or [])), fmt_seconds(stat([sweep[h]["module"]] if sweep[h].get("module") else []))]
                for h in helms if h in sweep]
        lines += _table(["helm", "resources in the plan", "result (JSON)", "sweep: median (max)", "the module's in-module time"],
                        rows) + [""]
    if run.get("plot"):
        lines += ["## Many releases", "", f"![wall time against the number of releases]({run['plot']})", ""]
    profile = run.get("profile") or []
    breakdowns = [line for h in helms for line in (breakdown_table(samples, h) + [""])]
    if profile or any(breakdowns):
        lines += ["## Where the time goes", ""]
        lines += [*run.get("analysis", []), ""] if run.get("analysis") else []
        lines += ["### The play, split", "", *breakdowns]
        if profile:
            lines += ["### Inside our module process (cProfile)", "", *profile, ""]
    notes = run.get("notes") or []
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines).rstrip() + "\n"
