# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A task's parameters turned into policies: drift and its ignore rules."""

from __future__ import annotations

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import MAX_IGNORE_RULES, drift_policy
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import INVALID_ARGUMENTS, InputError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import DriftPolicy, IgnoreRule


def test_drift_defaults_to_correct_without_rules():
    assert drift_policy({}) == DriftPolicy("correct", ())
    assert drift_policy({"drift": "detect"}).checks and not drift_policy({"drift": "ignore"}).checks


def test_ignore_rules_keep_kind_name_and_pointers():
    policy = drift_policy({"drift_ignore": [{"kind": "Deployment", "paths": ["/spec/replicas"]},
                                            {"name": "web", "paths": ["", "/data/a~1b"]}]})
    assert policy.rules == (IgnoreRule("Deployment", None, ("/spec/replicas",)), IgnoreRule(None, "web", ("", "/data/a~1b")))
    rule = policy.rules[0]
    assert rule.covers("Deployment", "any", "/spec/replicas") and rule.covers("Deployment", "any", "/spec/replicas/x")
    assert not rule.covers("Deployment", "any", "/spec/replicasX") and not rule.covers("StatefulSet", "a", "/spec/replicas")
    assert policy.rules[1].covers("Secret", "web", "/anything")


@pytest.mark.parametrize("items, needle", [
    ([{"kind": "Deployment"}], "paths must be a non-empty list"),
    ([{"paths": []}], "paths must be a non-empty list"),
    ([{"paths": "/spec/replicas"}], "paths must be a non-empty list"),
    ([{"paths": ["spec/replicas"]}], "is not a JSON pointer"),
    ([{"paths": ["/spec\nreplicas"]}], "is not a JSON pointer"),
    ([{"paths": [3]}], "is not a JSON pointer"),
    ([{"kind": "", "paths": ["/a"]}], "drift_ignore[0].kind is empty"),
    ([{"kind": "Deploy\tment", "paths": ["/a"]}], "control character"),
    ([{"paths": ["/a"], "namespace": "x"}], "unknown keys (namespace)"),
    ([{"paths": ["/a"]}] * (MAX_IGNORE_RULES + 1), f"at most {MAX_IGNORE_RULES}"),
])
def test_bad_ignore_rules_are_refused_with_the_option(items, needle):
    with pytest.raises(InputError) as caught:
        drift_policy({"drift_ignore": items})
    assert caught.value.kind == INVALID_ARGUMENTS and caught.value.details == {"option": "drift_ignore"}
    assert needle in caught.value.msg
