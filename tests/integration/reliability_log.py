"""Records what the reliability cases injected and what they found, for docs/reliability.md.

A case says what it is with ``@pytest.mark.reliability(category, fault)`` and reports what it
measured through the ``reliability`` fixture::

    @pytest.mark.reliability("interruption", "helm SIGKILLed mid-install")
    def test_x(reliability, ...):
        before = history_snapshot(kubectl, namespace, "web")
        ...                                   # inject the fault, converge again
        reliability.check_nothing_lost(kubectl, namespace, "web", before)

Every such case, and every case of test_behaviour_hostile_inputs.py (category "hostile input"), is
appended as one JSON line to the run's log when it ends, with its outcome. The log of the
latest run is build/reliability/latest.jsonl (HELM_ENGINE_RELIABILITY_LOG overrides it);
tools/reliability_report.py turns it into docs/reliability.md. xdist workers append to the same
file: each record is one short write to a file opened with O_APPEND.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import typing as t
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_LOG = REPO / "build" / "reliability" / "latest.jsonl"
HOSTILE_INPUT_MODULE = "test_behaviour_hostile_inputs"


def log_path() -> Path:
    return Path(os.environ.get("HELM_ENGINE_RELIABILITY_LOG") or DEFAULT_LOG)


def history_snapshot(kubectl: t.Callable[..., t.Any], namespace: str, release: str) -> dict[int, dict[str, t.Any]]:
    """Every stored revision of a release: status, and the values and manifest helm keeps."""
    out = kubectl("-n", namespace, "get", "secrets", "-l", f"owner=helm,name={release}", "-o", "json").stdout
    revisions = {}
    for item in json.loads(out)["items"]:
        record = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(item["data"]["release"]))))
        revisions[int(record["version"])] = {
            "status": record["info"]["status"],
            "config": record.get("config") or {},
            "manifest": record.get("manifest") or "",
        }
    return revisions


def last_good(snapshot: dict[int, dict[str, t.Any]]) -> int | None:
    good = [rev for rev, data in snapshot.items() if data["status"] in ("deployed", "superseded")]
    return max(good) if good else None


class Recorder:
    """What one case measured; written to the log when the case ends."""

    def __init__(self) -> None:
        self.revisions_lost = 0
        self.checked = False
        self.details: dict[str, t.Any] = {}

    def note(self, **details: t.Any) -> None:
        self.details.update(details)

    def check_nothing_lost(self, kubectl: t.Callable[..., t.Any], namespace: str, release: str,
                           before: dict[int, dict[str, t.Any]]) -> dict[int, dict[str, t.Any]]:
        """Asserts no revision of `before` disappeared and the last good one is unchanged."""
        after = history_snapshot(kubectl, namespace, release)
        lost = sorted(set(before) - set(after))
        good = last_good(before)
        altered = good is not None and good in after and (
            after[good]["config"] != before[good]["config"] or after[good]["manifest"] != before[good]["manifest"])
        self.revisions_lost += len(lost) + (1 if altered else 0)
        self.checked = True
        assert not lost, f"revisions lost from history: {lost}"
        assert not altered, f"the last good revision {good} changed its values or manifest"
        return after


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Recorder:
    recorder = Recorder()
    request.node.stash[_RECORDER] = recorder
    return recorder


_RECORDER = pytest.StashKey[Recorder]()
_OUTCOME = pytest.StashKey[str]()


def _case_of(item: pytest.Item) -> tuple[str, str] | None:
    marker = item.get_closest_marker("reliability")
    if marker is not None:
        category = marker.args[0] if marker.args else marker.kwargs["category"]
        fault = marker.args[1] if len(marker.args) > 1 else marker.kwargs["fault"]
        return category, fault
    if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] == HOSTILE_INPUT_MODULE:
        callspec_id = getattr(getattr(item, "callspec", None), "id", "")
        case = "-".join(part for part in callspec_id.split("-") if part not in ("helm3", "helm4"))
        name = item.originalname or item.name
        return "hostile input", f"{name}[{case}]" if case else name
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability(category, fault): a fault or concurrency case for docs/reliability.md")
    # The controller (or a run without xdist) starts the log afresh; workers only append.
    if not hasattr(config, "workerinput"):
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> t.Iterator[None]:
    report = yield
    if report.when == "call" or report.outcome != "passed":
        previous = item.stash.get(_OUTCOME, "passed")
        if previous == "passed":
            item.stash[_OUTCOME] = report.outcome
    return report


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    case = _case_of(item)
    if case is None:
        return
    recorder = item.stash.get(_RECORDER, None)
    callspec_id = getattr(getattr(item, "callspec", None), "id", "")
    helm = "helm 4" if "helm4" in callspec_id else "helm 3" if "helm3" in callspec_id else None
    record = {
        "category": case[0],
        "fault": case[1],
        "test": item.nodeid,
        "helm": helm,
        "outcome": item.stash.get(_OUTCOME, "not run"),
        "revisions_lost": recorder.revisions_lost if recorder and recorder.checked else None,
        "details": recorder.details if recorder else {},
    }
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
