# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit_verify module: its result for intact, broken and rotated logs, and the playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._audit import AuditWriter
from ansible_collections.ai_mesh.helm_engine.plugins.modules import audit_verify

REPO = Path(__file__).resolve().parents[4]


def run_module(capsys, path: str, check: bool = False) -> dict[str, t.Any]:
    with patch_module_args({"path": path, "_ansible_check_mode": check}), pytest.raises(SystemExit):
        audit_verify.main()
    return json.loads(capsys.readouterr().out)


def write_log(path: Path, count: int, **writer_args: t.Any) -> None:
    writer = AuditWriter(str(path), **writer_args)
    for index in range(count):
        writer.append({"event": "task_result", "index": index})


def test_an_intact_log(tmp_path, capsys):
    log = tmp_path / "audit.log"
    write_log(log, 4)
    result = run_module(capsys, str(log))
    assert result["ok"] is True and result["changed"] is False and not result.get("failed")
    assert result["records"] == 5 and result["files"] == [str(log)]
    assert result["first_bad_line"] is None and result["first_bad_file"] is None and result["reason"] is None
    assert result["last_seq"] == 4 and len(result["last_hash"]) == 64


def test_an_edited_record_is_reported_not_failed(tmp_path, capsys):
    log = tmp_path / "audit.log"
    write_log(log, 4)
    log.write_bytes(log.read_bytes().replace(b'"index":1', b'"index":7'))
    result = run_module(capsys, str(log), check=True)
    assert result["ok"] is False and not result.get("failed")
    assert (result["first_bad_file"], result["first_bad_line"]) == (str(log), 3)
    assert result["records"] == 2


def test_a_glob_with_a_home_relative_path_covers_the_rotated_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    log = tmp_path / "logs" / "audit.log"
    write_log(log, 10, max_bytes=400)
    result = run_module(capsys, "~/logs/audit.log*")
    assert result["ok"] is True, result["reason"]
    assert len(result["files"]) > 1 and result["files"][-1] == str(log)


def test_nothing_matched(tmp_path, capsys):
    result = run_module(capsys, str(tmp_path / "none.log*"))
    assert result["ok"] is False and result["records"] == 0 and result["files"] == []
    assert result["first_bad_file"] is None and "no audit log" in result["reason"]


def playbook(log_glob: str) -> subprocess.CompletedProcess:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    # Under ansible-test units, PYTHONPATH holds a module-only stub of ansible; the CLI needs the real one.
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(bindir / "ansible-playbook"), "ai_mesh.helm_engine.audit_verify",
                           "-e", f"audit_log={log_glob}", "-e", f"ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, env=env)


def test_the_playbook_passes_an_intact_log_and_names_the_first_bad_line(tmp_path):
    log = tmp_path / "audit.log"
    write_log(log, 3)
    good = playbook(str(log) + "*")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "audit log intact: 4 records in 1 file(s)" in good.stdout

    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([lines[0], lines[2], lines[1], lines[3]]))  # a swapped pair
    bad = playbook(str(log) + "*")
    assert bad.returncode != 0
    assert f"audit log NOT intact: {log} line 2" in " ".join(bad.stdout.split())
