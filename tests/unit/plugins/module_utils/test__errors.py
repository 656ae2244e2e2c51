# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The error layer: stable kinds, and the one shape every failure takes in a result."""

from __future__ import annotations

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _errors
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CHART_NOT_FOUND,
    INVALID_ARGUMENTS,
    KINDS,
    KUBECONFIG_INVALID,
    TIMEOUT,
    EngineError,
    HelmError,
    InputError,
    KubeError,
)


def test_kinds_are_the_module_constants_without_duplicates():
    constants = {value for name, value in vars(_errors).items() if name.isupper() and isinstance(value, str)}
    assert set(KINDS) == constants
    assert len(KINDS) == len(set(KINDS))
    assert all(kind == kind.lower() and " " not in kind for kind in KINDS)


@pytest.mark.parametrize("cls", [EngineError, HelmError, KubeError])
@pytest.mark.parametrize("kind", ["", "Timeout", "time_out", "unknown"])
def test_unknown_kind_is_refused(cls, kind):
    with pytest.raises(ValueError, match="unknown error kind"):
        cls(kind, "message")


def test_input_error_refuses_an_unknown_kind_too():
    with pytest.raises(ValueError):
        InputError("message", kind="bad_input")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_accepted(kind):
    assert EngineError(kind, "m").kind == kind


def test_to_result_minimal():
    error = EngineError(CHART_NOT_FOUND, "chart web not found")
    assert error.to_result() == {"msg": "chart web not found", "error": {"kind": CHART_NOT_FOUND, "message": "chart web not found"}}
    assert str(error) == "chart web not found"


def test_to_result_full():
    error = HelmError(TIMEOUT, "timed out", command=["helm", "upgrade", "--", "web"], rc=1, stdout="ignored",
                      stderr="Error: timed out", details={"pending": {"revision": 3}})
    error.extra["changed"] = True
    error.extra["release"] = {"revision": 3}
    assert error.to_result() == {
        "msg": "timed out",
        "changed": True,
        "release": {"revision": 3},
        "error": {
            "kind": TIMEOUT,
            "message": "timed out",
            "rc": 1,
            "stderr": "Error: timed out",
            "command": "helm upgrade -- web",
            "pending": {"revision": 3},
        },
    }


def test_rc_zero_is_kept_and_empty_fields_are_left_out():
    error = EngineError(TIMEOUT, "m", command=[], rc=0, stderr="")
    assert error.to_result()["error"] == {"kind": TIMEOUT, "message": "m", "rc": 0}


def test_input_error_carries_its_option():
    error = InputError("name 'Web' is not a valid release name", option="name")
    assert isinstance(error, EngineError)
    assert (error.kind, error.details) == (INVALID_ARGUMENTS, {"option": "name"})
    assert error.to_result()["error"] == {"kind": INVALID_ARGUMENTS, "message": error.msg, "option": "name"}


def test_input_error_kind_and_no_option():
    error = InputError("no kubeconfig", kind=KUBECONFIG_INVALID)
    assert (error.kind, error.details) == (KUBECONFIG_INVALID, {})
    assert "option" not in error.to_result()["error"]


def test_subclasses_are_engine_errors():
    for cls in (HelmError, KubeError, InputError):
        assert issubclass(cls, EngineError)
