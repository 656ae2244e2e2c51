# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The benchmark's statistics, target checks and report (bench/report.py), without a cluster."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report  # noqa: E402  pylint: disable=wrong-import-position


def sample(op, contender, wall, *, helm="helm4", scenario="demo", kind="timing", ok=True, module=None, process=None,
           helm_processes=None, api_requests=None):
    return {"helm": helm, "scenario": scenario, "op": op, "contender": contender, "round": 0, "kind": kind, "ok": ok,
            "wall": wall, "module": module or [], "process": process or [], "helm_processes": helm_processes,
            "api_requests": api_requests, "error": ""}


def test_stat_is_median_min_max_of_present_values():
    assert report.stat([3.0, None, 1.0, 2.0, 10.0]) == report.Stat(2.5, 1.0, 10.0, 4)
    assert report.stat([None]) is None
    assert report.fmt_seconds(report.stat([1.0, 2.0, 4.0])) == "2.00 s (1.00–4.00)"
    assert report.fmt_seconds(report.stat([1.5])) == "1.50 s"
    assert report.fmt_count(report.stat([4, 4])) == "4"
    assert report.fmt_ratio(report.ratio(report.stat([1.0]), report.stat([4.0]))) == "0.25×"
    assert report.ratio(report.stat([1.0]), None) is None


def test_summaries_keep_timed_and_counted_rounds_apart_and_skip_failures():
    samples = [
        sample("noop", "ours", 2.0, module=[0.5, 0.7, 0.9]),
        sample("noop", "ours", 4.0, module=[0.3]),
        sample("noop", "ours", 99.0, ok=False),
        sample("noop", "ours", 50.0, kind="count", helm_processes=2, api_requests=10),
    ]
    s = report.summarize(samples, "helm4", "demo", "noop", "ours")
    assert s["wall"] == report.Stat(3.0, 2.0, 4.0, 2)
    # one figure per run: the median of its releases, then the median over runs
    assert s["module"] == report.Stat(0.5, 0.3, 0.7, 2)
    assert s["helm_processes"].median == 2 and s["api_requests"].median == 10
    assert s["failed"] == 1 and s["runs"] == 2


def test_growth_exponent():
    assert report.growth_exponent([(10, 1.0), (50, 5.0)]) == pytest.approx(1.0)
    assert report.growth_exponent([(1, 9.0), (10, 1.0), (50, 1.0)]) == pytest.approx(0.0)
    assert report.growth_exponent([(10, 1.0), (100, 100.0)]) == pytest.approx(2.0)
    assert report.growth_exponent([(10, 1.0)]) is None


def targets_by_name(samples, **extra):
    return {tg.name.split(" (measured")[0]: tg for tg in report.check_targets(samples, "helm4", extra)}


def test_targets_met_missed_and_not_measured():
    samples = [
        sample("noop", "ours", 7.0, scenario="releases-20"),
        sample("noop", "kcore", 10.0, scenario="releases-20"),
        sample("status", "ours", 9.0, scenario="releases-20"),
        sample("status", "kcore", 10.0, scenario="releases-20"),
        sample("noop", "ours", 1.0, module=[0.2]),
        sample("status", "ours", 1.0, module=[0.15]),
        sample("install", "ours", 5.0, module=[3.6]),
        sample("install", "raw", 3.0),
    ]
    tg = targets_by_name(samples, template_edit_detected={"helm4": True})
    assert tg["no-op: 20-release play"].met is True  # 0.70 ≤ 0.7
    assert tg["status: 20-release play"].met is False  # 0.90 > 0.8
    assert tg["status: 20-release play"].margin == "0.10 over (+12%)"
    assert tg["no-op: in-module time (demo chart)"].met is True
    assert tg["status: in-module time (demo chart)"].met is False
    assert tg["install --wait: in-module time / raw helm"].met is False  # 1.20× over the 1.10× limit
    assert tg["no-op: template edit still detected"].met is True
    assert tg["upgrade --wait: in-module time / raw helm"].met is None
    assert tg["status: in-module time, 500 resources"].met is None


def test_play_ratio_falls_back_to_the_largest_scale_and_says_so():
    samples = [sample("noop", "ours", 5.0, scenario="releases-50"), sample("noop", "kcore", 10.0, scenario="releases-50"),
               sample("noop", "ours", 1.0, scenario="releases-10"), sample("noop", "kcore", 1.0, scenario="releases-10")]
    names = [tg.name for tg in report.check_targets(samples, "helm4") if tg.met is not None]
    assert "no-op: 20-release play (measured at 50 releases, not 20)" in names


def test_linear_growth_and_requests_per_resource():
    samples = []
    for n, wall, requests in ((10, 1.0, 12), (100, 2.0, 12), (500, 30.0, 520)):
        samples.append(sample("status", "ours", wall, scenario=f"resources-{n}", module=[wall / 2]))
        samples.append(sample("status", "ours", wall, scenario=f"resources-{n}", kind="count", api_requests=requests))
    tg = {t.name.split(" (")[0]: t for t in report.check_targets(samples, "helm4")}
    assert tg["resources: time grows no faster than linearly"].met is False  # 2 s -> 30 s for 5x the size
    assert tg["status: no request per resource"].met is False  # about one request per extra resource
    assert tg["status: in-module time, 500 resources"].met is False


def test_render_has_every_section():
    run = {
        "command": "BENCH_ROUNDS=1", "date": "2026-12-02 08:00 UTC", "elapsed": 60.0,
        "machine": {"cpus": 2, "cpu_model": "cpu", "memory_gib": 4.0, "load_start": "0.1", "load_end": "0.2"},
        "cluster": "c", "versions": {"helm4": "v4.3.1"}, "helm_versions": {"helm4": "v4.3.1"}, "method": ["- m"],
        "samples": [sample("install", "raw", 3.0), sample("install", "ours", 4.0, module=[3.0]),
                    sample("install", "kcore", 5.0, process=[4.0]), sample("ping", "ansible", 1.0, process=[0.2]),
                    sample("install", "ours", 9.0, scenario="resources-500", module=[8.0])],
        "extra": {}, "profile": ["profile line"], "notes": ["a note"],
    }
    text = report.render(run)
    for part in ("# Benchmark results", "load average at start: 0.1", "## Targets (issues 12, 19 and 21)", "## helm4 (v4.3.1): the demo chart",
                 "| install --wait | 3.00 s | 5.00 s | 4.00 s | 0.80× | n/a | 4.00 s | n/a | 3.00 s | 1.00× |",
                 "Ansible's own floor", "play outside the module process", "N resources in one release", "## Where the time goes", "profile line", "- a note"):
        assert part in text, part


def test_a_release_play_target_says_what_is_left_beyond_ansibles_floor():
    samples = [
        sample("noop", "ours", 10.0, scenario="releases-20"),
        sample("noop", "kcore", 11.0, scenario="releases-20"),
        sample("ping", "ansible", 8.0, scenario="releases-20"),
    ]
    target = targets_by_name(samples)["no-op: 20-release play"]
    assert target.met is False
    assert "0.91×: 10.00 s vs 11.00 s" in target.measured
    # (10 - 8) / (11 - 8): what the two modules add to Ansible's own cost
    assert "beyond Ansible's floor (8.00 s for a ping play of as many hosts): 0.67×" in target.measured


def test_the_targets_of_many_releases_in_one_task():
    samples = [
        sample("noop", "stack", 1.5, scenario="releases-20"), sample("noop", "kcore", 10.0, scenario="releases-20"),
        sample("install", "stack", 40.0, scenario="releases-50"), sample("install", "raw", 30.0, scenario="releases-50"),
    ]
    tg = targets_by_name(samples)
    assert tg["helm_releases: 20 no-op releases in one task"].met is True
    assert tg["helm_releases: 20 no-op releases in one task"].measured == "0.15×: 1.50 s vs 10.00 s"
    assert tg["helm_releases: 50 installs (concurrency 10)"].met is False  # 1.33x
    assert tg["no-op with drift check: in-module time (demo chart)"].measured == "not measured"


def test_the_targets_of_many_releases_prefer_their_own_alternating_rounds():
    """The medians of the target section win over the one round of the scale points."""
    samples = [
        sample("noop", "stack", 3.0, scenario="releases-20"), sample("noop", "kcore", 10.0, scenario="releases-20"),
        sample("install", "stack", 40.0, scenario="releases-50"), sample("install", "raw", 30.0, scenario="releases-50"),
    ]
    for stack, kcore in ((1.2, 8.0), (2.5, 7.0), (1.4, 9.0)):
        samples += [sample("noop", "stack", stack, scenario=report.TARGET_NOOP),
                    sample("noop", "kcore", kcore, scenario=report.TARGET_NOOP)]
    for stack, raw in ((6.0, 5.5), (6.2, 5.0), (5.9, 5.6)):
        samples += [sample("install", "stack", stack, scenario=report.TARGET_INSTALL),
                    sample("install", "raw", raw, scenario=report.TARGET_INSTALL)]
    tg = targets_by_name(samples)
    noop = tg["helm_releases: 20 no-op releases in one task"]
    assert (noop.met, noop.measured) == (True, "0.17×: 1.40 s (1.20–2.50) vs 8.00 s (7.00–9.00)")
    install = tg["helm_releases: 50 installs (concurrency 10)"]
    assert (install.met, install.measured) == (True, "1.09×: 6.00 s (5.90–6.20) vs 5.50 s (5.00–5.60)")


def test_the_drift_section_and_the_plot():
    samples = [sample(op, c, wall, scenario=f"releases-{n}") for n, wall in ((1, 2.0), (20, 8.0), (50, 18.0))
               for op in ("install", "noop") for c in ("raw", "kcore", "ours", "stack") if not (c == "raw" and op == "noop")]
    svg = report.scale_svg(samples, ["helm4"])
    assert svg.startswith("<svg") and svg.count("<polyline") == 7  # install: 4 contenders, no-op: 3
    assert "helm_releases (one task)" in svg
    run = {
        "command": "x", "date": "d", "elapsed": 1.0, "cluster": "c", "versions": {}, "helm_versions": {}, "method": [],
        "machine": {"cpus": 2, "cpu_model": "cpu", "memory_gib": 4.0, "load_start": "0", "load_end": "0"},
        "samples": samples + [sample("noop", "ours", 1.0, module=[0.06])],
        "extra": {"drift_corrected": {"helm4": {"module": [0.3, 0.4, 0.5], "requests": [20, 20, 21], "corrected": 3,
                                                "noop_after": 3, "rounds": 3}}},
        "plot": "scale.svg",
    }
    text = report.render(run)
    assert "| helm4 | drift corrected | 0.40 s (0.30–0.50) | 20 (20–21) | 3 of 3 rounds corrected, the next run a no-op 3 times |" in text
    assert "![wall time against the number of releases](scale.svg)" in text
    assert report.scale_svg([sample("install", "raw", 1.0)], ["helm4"]) == ""


def test_the_secret_sweep_section():
    run = {
        "command": "x", "date": "d", "elapsed": 1.0, "cluster": "c", "versions": {}, "helm_versions": {}, "method": [],
        "machine": {"cpus": 2, "cpu_model": "cpu", "memory_gib": 4.0, "load_start": "0", "load_end": "0"},
        "samples": [sample("noop", "ours", 1.0, module=[0.06])],
        "extra": {"secret_sweep": {"helm4": {"seconds": [0.002, 0.003, 0.009], "bytes": 409600, "resources": 500,
                                             "module": 1.25}}},
    }
    text = report.render(run)
    assert "| helm4 | 500 | 400 KiB | 3.0 ms (max 9.0) | 1.25 s |" in text
    assert "## Secret sweep" in text
