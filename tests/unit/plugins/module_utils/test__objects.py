# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._objects import (
    condition_is_true,
    conditions,
    metadata,
    parse_time,
)

UTC = timezone.utc


# ---- parse_time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-02T11:00:00.123456789Z", datetime(2024, 5, 2, 11, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-02T11:00:00.5Z", datetime(2024, 5, 2, 11, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-02T11:00:00Z", datetime(2024, 5, 2, 11, 0, 0, tzinfo=UTC)),
        ("2024-05-02T13:00:00.987654321+02:00", datetime(2024, 5, 2, 11, 0, 0, 987654, tzinfo=UTC)),
        ("2024-05-02T06:30:00-04:30", datetime(2024, 5, 2, 11, 0, 0, tzinfo=UTC)),
        ("2024-05-02T11:00:00", datetime(2024, 5, 2, 11, 0, 0, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_parse_time(text, expected):
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None


def test_parse_time_keeps_the_offset():
    parsed = parse_time("2024-05-02T13:00:00+02:00")
    assert parsed.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("text", [None, "", "yesterday", "2024-13-45T99:00:00Z", "2024-05-02T11:00:00+99:00"])
def test_parse_time_invalid(text):
    assert parse_time(text) is None


def test_kubernetes_and_helm_timestamps_read_alike():
    """The watcher's fast path and helm's nanosecond timestamps give the same instant."""
    assert parse_time("2024-05-02T11:00:00Z") == parse_time("2024-05-02T11:00:00.000000000Z")


# ---- metadata and conditions --------------------------------------------------------------


def test_conditions_by_type_and_their_truth():
    pod = {"metadata": {"name": "web-0"}, "status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        {"type": "PodScheduled", "status": "True"},
        "not a condition",
    ]}}
    assert conditions(pod)["Ready"]["reason"] == "ContainersNotReady"
    assert condition_is_true(pod, "PodScheduled") and not condition_is_true(pod, "Ready")
    assert not condition_is_true(pod, "Initialized")  # absent
    assert metadata(pod) == {"name": "web-0"}
    assert conditions({}) == {} and metadata({"metadata": None}) == {}
