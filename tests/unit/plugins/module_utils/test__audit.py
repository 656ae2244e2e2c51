# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit log format: writer (chain, torn lines, rotation, concurrency) and verifier."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._audit import (
    CHAIN_BREAK,
    GENESIS,
    GENESIS_PREV,
    AuditWriteError,
    AuditWriter,
    expand_paths,
    line_hash,
    rotated_paths,
    verify,
    verify_files,
)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def write_records(path: Path, count: int, **writer_args) -> AuditWriter:
    writer = AuditWriter(str(path), **writer_args)
    for index in range(count):
        writer.append({"event": "task_result", "index": index})
    return writer


def test_a_new_log_starts_with_a_genesis_and_chains_every_line(tmp_path):
    log = tmp_path / "sub" / "audit.log"
    write_records(log, 3)
    lines = lines_of(log)
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == [GENESIS, "task_result", "task_result", "task_result"]
    assert [r["seq"] for r in records] == [0, 1, 2, 3]
    assert records[0]["prev"] == GENESIS_PREV
    for before, record in zip(lines, records[1:]):
        assert record["prev"] == line_hash(before)
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    result = verify(str(log))
    assert result.ok and result.records == 4 and result.last_seq == 3
    assert result.last_hash == line_hash(lines[-1])


def test_each_record_is_canonical_json_on_one_line(tmp_path):
    log = tmp_path / "audit.log"
    AuditWriter(str(log)).append({"event": "x", "b": "ü\nline", "a": 1})
    raw = lines_of(log)[1]
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert "ü" in raw.decode()


@pytest.mark.parametrize("edit, bad_line, words", [
    # line numbers: 1 genesis, 2..6 records index 0..4
    ("edit_field", 3, "line 3 was changed"),
    ("delete", 3, "missing (deleted)"),
    ("swap", 3, "out of order"),
    ("torn_tail", 6, "the last line is not a whole record"),
    ("delete_first", 1, "does not start with a genesis"),
    ("garbage_middle", 4, "line 4 is not a whole record"),
])
def test_the_verifier_names_the_first_bad_line(tmp_path, edit, bad_line, words):
    log = tmp_path / "audit.log"
    write_records(log, 5)
    lines = lines_of(log)
    if edit == "edit_field":
        lines[2] = lines[2].replace(b'"index":1', b'"index":9')
    elif edit == "delete":
        del lines[2]
    elif edit == "swap":
        lines[2], lines[3] = lines[3], lines[2]
    elif edit == "torn_tail":
        lines[5] = lines[5][: len(lines[5]) // 2]
    elif edit == "delete_first":
        del lines[0]
    elif edit == "garbage_middle":
        lines[3] = lines[3][:-5]
    data = b"\n".join(lines) + (b"" if edit == "torn_tail" else b"\n")
    log.write_bytes(data)
    result = verify(str(log))
    assert not result.ok
    assert (result.first_bad_file, result.first_bad_line) == (str(log), bad_line), result.reason
    assert words in result.reason


def test_a_torn_line_is_closed_and_acknowledged_by_the_next_writer(tmp_path):
    log = tmp_path / "audit.log"
    writer = write_records(log, 2)
    before = log.read_bytes()
    torn = b'{"event":"task_result","index":2,"pr'
    with open(log, "ab") as handle:
        handle.write(torn)  # a writer killed in the middle of its write
    assert verify(str(log)).first_bad_line == 4

    writer.append({"event": "task_result", "index": 3})
    data = log.read_bytes()
    assert data.startswith(before + torn + b"\n"), "earlier records and the torn bytes stay as they were"
    lines = data.splitlines()
    brk, after = json.loads(lines[4]), json.loads(lines[5])
    assert brk["event"] == CHAIN_BREAK and brk["torn"] == {"bytes": len(torn), "sha256": line_hash(torn)}
    assert brk["prev"] == line_hash(lines[2]) and brk["seq"] == 3
    assert after["prev"] == line_hash(lines[4]) and after["seq"] == 4
    result = verify(str(log))
    assert result.ok, result.reason
    assert result.breaks == [{"file": str(log), "line": 4, "bytes": len(torn)}]


def test_a_whole_record_that_lost_only_its_newline_is_continued(tmp_path):
    log = tmp_path / "audit.log"
    writer = write_records(log, 2)
    log.write_bytes(log.read_bytes()[:-1])
    writer.append({"event": "task_result", "index": 2})
    result = verify(str(log))
    assert result.ok and result.records == 4 and result.breaks == []


def test_an_unacknowledged_torn_line_in_the_middle_is_an_error(tmp_path):
    log = tmp_path / "audit.log"
    write_records(log, 3)
    lines = lines_of(log)
    lines.insert(2, b'{"event":"tor')
    log.write_bytes(b"\n".join(lines) + b"\n")
    result = verify(str(log))
    assert not result.ok and result.first_bad_line == 3


def test_rotation_carries_the_chain_into_the_next_file(tmp_path):
    log = tmp_path / "audit.log"
    write_records(log, 12, max_bytes=400)
    rotated = rotated_paths(str(log))
    assert len(rotated) >= 2
    assert expand_paths(str(tmp_path / "audit.log*")) == rotated + [str(log)]
    for previous, current in zip(rotated, rotated[1:] + [str(log)]):
        genesis = json.loads(Path(current).read_bytes().splitlines()[0])
        assert genesis["event"] == GENESIS and genesis["previous_file"] == os.path.basename(previous)
        assert genesis["prev"] == line_hash(Path(previous).read_bytes().splitlines()[-1])
    result = verify(str(tmp_path / "audit.log*"))
    assert result.ok, result.reason
    # 12 records + one genesis per file
    assert result.records == 12 + len(rotated) + 1
    for path in rotated:
        assert os.path.getsize(path) <= 400 or len(Path(path).read_bytes().splitlines()) <= 2


def test_a_truncated_rotated_file_is_named(tmp_path):
    log = tmp_path / "audit.log"
    write_records(log, 12, max_bytes=400)
    first = rotated_paths(str(log))[0]
    lines = Path(first).read_bytes().splitlines(keepends=True)
    Path(first).write_bytes(b"".join(lines[:-1]))
    result = verify(str(tmp_path / "audit.log*"))
    assert not result.ok
    assert result.first_bad_file == first and result.first_bad_line == len(lines)
    assert "truncated" in result.reason


def test_a_missing_rotated_file_breaks_the_chain(tmp_path):
    log = tmp_path / "audit.log"
    write_records(log, 12, max_bytes=400)
    rotated = rotated_paths(str(log))
    os.unlink(rotated[1])
    result = verify(str(tmp_path / "audit.log*"))
    assert not result.ok and result.first_bad_file == rotated[0]


def test_no_file_is_not_ok(tmp_path):
    result = verify(str(tmp_path / "nothing*"))
    assert not result.ok and result.records == 0 and "no audit log" in result.reason


def test_an_unwritable_location_raises_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(AuditWriteError, match="cannot open audit log"):
        AuditWriter(str(tmp_path / "a-file" / "audit.log")).append({"event": "x"})


def test_a_full_disk_raises_and_the_next_writer_repairs(tmp_path, monkeypatch):
    log = tmp_path / "audit.log"
    writer = write_records(log, 2)
    real_write = os.write

    def short_write(fd, data):
        return real_write(fd, data[: len(data) // 2])  # ENOSPC after half the line

    monkeypatch.setattr(os, "write", short_write)
    with pytest.raises(AuditWriteError, match="short write"):
        writer.append({"event": "task_result", "index": 2})
    monkeypatch.setattr(os, "write", real_write)
    writer.append({"event": "task_result", "index": 3})
    result = verify(str(log))
    assert result.ok and len(result.breaks) == 1


def _hammer(path: str, worker: int, count: int) -> None:
    writer = AuditWriter(path, max_bytes=4000)
    for index in range(count):
        writer.append({"event": "task_result", "worker": worker, "index": index})


def test_concurrent_writers_form_one_valid_chain_across_rotations(tmp_path):
    log = str(tmp_path / "audit.log")
    processes = [multiprocessing.Process(target=_hammer, args=(log, worker, 60)) for worker in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    paths = expand_paths(log + "*")
    result = verify_files(paths)
    assert result.ok, (result.first_bad_file, result.first_bad_line, result.reason)
    seen = set()
    for path in paths:
        for line in Path(path).read_bytes().splitlines():
            record = json.loads(line)
            if record["event"] == "task_result":
                seen.add((record["worker"], record["index"]))
    assert seen == {(w, i) for w in range(4) for i in range(60)}
