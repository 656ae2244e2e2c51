# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import HELM_UNSUPPORTED, EngineError, HelmError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import HelmClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm_version import HelmVersion, version_cache_path

HELM3 = "v3.22.0"
HELM4 = "v4.3.1"


# ---- HelmVersion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("v3.22.0", (3, 22, 0, "v3.22.0")),
        ("v4.3.1+g1b2c3d4\n", (4, 3, 1, "v4.3.1")),
        ("3.13.2", (3, 13, 2, "v3.13.2")),
        ('version.BuildInfo{Version:"v3.14.4", GitCommit:"81c902a1"}', (3, 14, 4, "v3.14.4")),
    ],
)
def test_version_parse(text, expected):
    version = HelmVersion.parse(text)
    assert (version.major, version.minor, version.patch, version.raw) == expected


@pytest.mark.parametrize("text", ["", "not a version", "v3.x", "helm: command not found"])
def test_version_parse_garbage_is_unsupported(text):
    with pytest.raises(EngineError) as caught:
        HelmVersion.parse(text)
    assert caught.value.kind == HELM_UNSUPPORTED


@pytest.mark.parametrize("text", ["v3.13.0", "v3.13.3", "v3.22.0", "v4.0.0", "v4.3.1"])
def test_supported_versions(text):
    HelmVersion.parse(text).check_supported()


@pytest.mark.parametrize("text", ["v2.17.0", "v3.0.0", "v3.12.3", "v5.0.0"])
def test_unsupported_versions(text):
    with pytest.raises(EngineError) as caught:
        HelmVersion.parse(text).check_supported()
    assert caught.value.kind == HELM_UNSUPPORTED
    assert text in caught.value.msg


# ---- the helm version cache -------------------------------------------------------------------


def test_the_version_is_asked_once_per_binary_and_again_when_it_changes(tmp_path, workspace, private_cache, runner_class):
    FakeRunner = runner_class  # noqa: N806
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    first_fake = FakeRunner(HELM3)
    assert HelmClient(first_fake, str(binary), workspace=workspace).version.raw == HELM3
    assert [argv[1] for argv in first_fake.calls] == ["version"]
    cached_fake = FakeRunner(HELM4)  # would answer 4: the cache must answer first
    assert HelmClient(cached_fake, str(binary), workspace=workspace).version.raw == HELM3
    assert cached_fake.calls == []
    binary.write_text("#!/bin/sh\n# rebuilt\n")  # another size and mtime: another binary
    rebuilt_fake = FakeRunner(HELM4)
    assert HelmClient(rebuilt_fake, str(binary), workspace=workspace).version.raw == HELM4
    assert [argv[1] for argv in rebuilt_fake.calls] == ["version"]


def test_an_unreadable_or_garbled_cache_only_costs_a_version_process(tmp_path, workspace, private_cache, runner_class):
    FakeRunner = runner_class  # noqa: N806
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    cache = version_cache_path()
    os.makedirs(os.path.dirname(cache))
    with open(cache, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    fake = FakeRunner(HELM4)
    assert HelmClient(fake, str(binary), workspace=workspace).version.raw == HELM4
    assert [argv[1] for argv in fake.calls] == ["version"]
    with open(cache, encoding="utf-8") as handle:
        assert HELM4 in handle.read()  # rewritten whole


def test_an_unsupported_cached_version_is_still_refused(tmp_path, workspace, private_cache, runner_class):
    FakeRunner = runner_class  # noqa: N806
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    with pytest.raises(HelmError) as caught:
        HelmClient(FakeRunner("v3.12.0"), str(binary), workspace=workspace).version  # noqa: B018
    assert caught.value.kind == "helm_unsupported"
    with pytest.raises(HelmError) as again:
        HelmClient(FakeRunner(HELM4), str(binary), workspace=workspace).version  # noqa: B018
    assert again.value.kind == "helm_unsupported"
