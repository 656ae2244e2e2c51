# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The audit log file format: a hash chain of JSON lines, its writer and its verifier.

Used by the ``audit_log`` callback (writer) and the ``audit_verify`` module (verifier); standard
library only, because the module runs on managed hosts.

Format, one JSON object per line, keys sorted, no spaces (so a record has one byte form)::

    {"event":"genesis","prev":"000…","seq":0,"ts":"…","v":1}
    {"event":"playbook_start","prev":"<sha256 of line 1>","seq":1,…}

- ``prev`` is the sha256 (hex) of the previous record's line, without its newline. The first
  record of a chain (``genesis``) has 64 zeros; the genesis of a rotated-to file carries the hash
  of the last record of the file before, so one chain runs across files.
- ``seq`` counts records along the chain; a gap means a deleted record, a step back a reordered
  or duplicated one.
- A line torn by a killed writer is never appended to: the next writer ends it with a newline
  and writes a ``chain_break`` record naming the torn bytes (length and sha256), chained to the
  last whole record. The verifier accepts a torn line only when such a record acknowledges it.

The chain is tamper-evident, not tamper-proof: whoever can rewrite the whole tail of the file
can rebuild the chain, and dropping the last records of the newest file cannot be told from a
shorter log. Keep ``last_hash`` from a verification elsewhere to detect the latter.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import time
import typing as t

FORMAT_VERSION = 1
GENESIS_PREV = "0" * 64
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

GENESIS = "genesis"
CHAIN_BREAK = "chain_break"

# The tail is read backwards in blocks of this size until a newline shows where the last line starts.
_TAIL_BLOCK = 65536
# A rotation renames the file under the writer's lock; writers that opened the old name retry.
_OPEN_ATTEMPTS = 20


class AuditWriteError(Exception):
    """The record could not be written completely; the reason is in the message."""


def canonical_json(data: t.Any) -> bytes:
    """The one byte form of a record: sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def utc_timestamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000000):06d}Z"


def parse_record(line: bytes) -> dict[str, t.Any] | None:
    """The record on a line, or None when the line is not a whole record of this format."""
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    if not isinstance(record, dict) or not isinstance(record.get("seq"), int) or not isinstance(record.get("prev"), str):
        return None
    return record


# ---- writer ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Tail:
    """What a writer must know about the end of the file before it appends."""

    last_line: bytes | None  # the last whole record's line, None for an empty file
    last_record: dict[str, t.Any] | None
    torn: bytes = b""  # bytes after the last newline that are not a whole record


def _read_tail(fd: int, size: int) -> _Tail:
    if size == 0:
        return _Tail(None, None)
    end = size
    buffer = b""
    # Walk back until the buffer holds the newline before the last whole line (or the file start).
    while True:
        start = max(0, end - _TAIL_BLOCK)
        buffer = os.pread(fd, end - start, start) + buffer
        end = start
        body = buffer[:-1] if buffer.endswith(b"\n") else buffer
        if b"\n" in body or start == 0:
            if not buffer.endswith(b"\n"):
                # An unterminated last line: a whole record that only lost its newline, or a torn one.
                fragment = buffer.rsplit(b"\n", 1)[-1]
                record = parse_record(fragment)
                if record is not None:
                    return _Tail(fragment, record)
                before = buffer[: len(buffer) - len(fragment)]
                if b"\n" not in before[:-1] and start > 0:
                    continue  # the whole line before the fragment is not in the buffer yet
                previous = before[:-1].rsplit(b"\n", 1)[-1] or None
                return _Tail(previous, parse_record(previous) if previous else None, torn=fragment)
            last = body.rsplit(b"\n", 1)[-1]
            return _Tail(last, parse_record(last))


def _next_link(tail: _Tail) -> tuple[str, int]:
    """(prev, seq) for the record that follows the tail."""
    if tail.last_line is None:
        return GENESIS_PREV, 0
    seq = tail.last_record["seq"] + 1 if tail.last_record else 0
    return line_hash(tail.last_line), seq


def _encode(record: dict[str, t.Any], prev: str, seq: int) -> tuple[bytes, str]:
    line = canonical_json(dict(record, v=FORMAT_VERSION, prev=prev, seq=seq))
    return line + b"\n", line_hash(line)


_ROTATED = re.compile(r"\.(\d+)$")
_UNFINISHED_ROTATION = re.compile(r"\.new-\d+$")


def rotated_paths(path: str) -> list[str]:
    """The rotated files of a log, oldest first (``audit.log.000001``, ``audit.log.000002``, ...)."""
    found = []
    for candidate in glob.glob(glob.escape(path) + ".*"):
        match = _ROTATED.search(candidate)
        if match and candidate[: match.start()] == path:
            found.append((int(match.group(1)), candidate))
    return [p for _n, p in sorted(found)]


class AuditWriter:
    """Appends records to a log file: one write per record, under an exclusive flock, fsync'd.

    The previous hash is read under the lock, so concurrent ansible-playbook runs writing one
    log are serialised into a single chain.
    """

    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES, now: t.Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._now = now

    def append(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """Writes one record (``ts`` is added when missing); returns it as written."""
        record = dict(record)
        record.setdefault("ts", utc_timestamp(self._now()))
        try:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = self._open_locked()
        except OSError as exc:
            raise AuditWriteError(f"cannot open audit log {self.path!r}: {exc.strerror or exc}") from exc
        try:
            return self._append_locked(fd, record)
        except OSError as exc:
            raise AuditWriteError(f"cannot write audit log {self.path!r}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)  # releases the flock

    def _open_locked(self) -> int:
        for _attempt in range(_OPEN_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # Another writer may have rotated the file while we waited: lock the current one.
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise OSError(errno.EAGAIN, "the log file kept being replaced while waiting for its lock")

    def _append_locked(self, fd: int, record: dict[str, t.Any]) -> dict[str, t.Any]:
        size = os.fstat(fd).st_size
        tail = _read_tail(fd, size)
        prev, seq = _next_link(tail)
        payload = b""
        if tail.torn:
            # Never append onto a torn line: end it, and say so in the chain.
            brk = {"event": CHAIN_BREAK, "ts": record["ts"], "reason": "torn_line",
                   "torn": {"bytes": len(tail.torn), "sha256": line_hash(tail.torn)}}
            brk_line, brk_hash = _encode(brk, prev, seq)
            payload += b"\n" + brk_line
            prev, seq = brk_hash, seq + 1
        elif size and not _ends_with_newline(fd, size):
            payload += b"\n"  # the last record is whole but lost its newline
        elif tail.last_line is None:
            # An empty (new) file starts a chain.
            genesis_line, genesis_hash = _encode({"event": GENESIS, "ts": record["ts"]}, prev, seq)
            payload += genesis_line
            prev, seq = genesis_hash, seq + 1

        line, _line_hash = _encode(record, prev, seq)
        if size and not tail.torn and size + len(payload) + len(line) > self.max_bytes:
            return self._rotate(record, (prev, seq))
        _write_all(fd, payload + line)
        return dict(record, v=FORMAT_VERSION, prev=prev, seq=seq)

    def _rotate(self, record: dict[str, t.Any], link: tuple[str, int]) -> dict[str, t.Any]:
        """Starts a new file whose genesis carries the chain on, with no moment without a log file."""
        existing = rotated_paths(self.path)
        number = int(_ROTATED.search(existing[-1]).group(1)) + 1 if existing else 1
        rotated = f"{self.path}.{number:06d}"
        genesis = {"event": GENESIS, "ts": record["ts"], "previous_file": os.path.basename(rotated)}
        genesis_line, genesis_hash = _encode(genesis, *link)
        line, _hash = _encode(record, genesis_hash, link[1] + 1)
        fresh_path = f"{self.path}.new-{os.getpid()}"
        fresh = os.open(fresh_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            # Lock the new file before it gets the log's name, so no writer slips in before us.
            fcntl.flock(fresh, fcntl.LOCK_EX)
            _write_all(fresh, genesis_line + line)
            os.link(self.path, rotated)  # the old file keeps existing under both names...
            os.rename(fresh_path, self.path)  # ...until the new one replaces it atomically
            _fsync_directory(self.path)
        except BaseException:
            if os.path.exists(fresh_path):
                os.unlink(fresh_path)
            raise
        finally:
            os.close(fresh)
        return dict(record, v=FORMAT_VERSION, prev=genesis_hash, seq=link[1] + 1)


def _ends_with_newline(fd: int, size: int) -> bool:
    return os.pread(fd, 1, size - 1) == b"\n"


def _write_all(fd: int, payload: bytes) -> None:
    written = os.write(fd, payload)
    if written != len(payload):
        # A short write (disk full) leaves a torn line, which the next writer will mark.
        raise OSError(errno.ENOSPC, f"short write ({written} of {len(payload)} bytes)")
    os.fsync(fd)


def _fsync_directory(path: str) -> None:
    try:
        dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ---- verifier --------------------------------------------------------------------------------


@dataclasses.dataclass
class Verification:
    ok: bool = True
    records: int = 0
    files: list[str] = dataclasses.field(default_factory=list)
    first_bad_file: str | None = None
    first_bad_line: int | None = None
    reason: str | None = None
    last_hash: str | None = None
    last_seq: int | None = None
    # Torn lines that a later writer acknowledged with a chain_break record: not tampering.
    breaks: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)

    def fail(self, path: str, line: int, reason: str) -> Verification:
        self.ok = False
        self.first_bad_file = path
        self.first_bad_line = line
        self.reason = reason
        return self

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


def expand_paths(pattern: str) -> list[str]:
    """A file, or a glob of a log and its rotated files, in chain order (oldest first)."""
    pattern = os.path.expanduser(pattern)
    paths = glob.glob(pattern) if glob.has_magic(pattern) else ([pattern] if os.path.exists(pattern) else [])
    # A ".new-<pid>" file is a rotation that was interrupted before it took the log's name.
    paths = [p for p in paths if os.path.isfile(p) and not _UNFINISHED_ROTATION.search(p)]

    def chain_order(path: str) -> tuple[str, int, int]:
        match = _ROTATED.search(path)
        if match:
            return path[: match.start()], 0, int(match.group(1))
        return path, 1, 0  # the active file comes after its rotated files

    return sorted(paths, key=chain_order)


class _Chain:
    """The verifier's state across files."""

    def __init__(self) -> None:
        self.prev: str | None = None  # hash the next record must carry; None before the first file
        self.seq: int | None = None
        self.prev_file: str | None = None
        self.prev_file_lines = 0


def verify_files(paths: t.Sequence[str]) -> Verification:
    result = Verification(files=list(paths))
    if not paths:
        return result.fail("", 0, "no audit log file found")
    chain = _Chain()
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return result.fail(path, 0, f"cannot read: {exc.strerror or exc}")
        if not _verify_file(path, data, chain, result):
            return result
        chain.prev_file = path
    result.last_hash = chain.prev
    result.last_seq = chain.seq - 1 if chain.seq is not None else None
    return result


def _verify_file(path: str, data: bytes, chain: _Chain, result: Verification) -> bool:
    if not data:
        result.fail(path, 1, "the file is empty (truncated)")
        return False
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    records = [parse_record(line) for line in lines]
    previous_line_no = 0
    torn_pending: tuple[int, bytes] | None = None
    for index, (line, record) in enumerate(zip(lines, records)):
        line_no = index + 1
        if record is None:
            following = records[index + 1] if index + 1 < len(records) else None
            acknowledged = (
                following is not None and following.get("event") == CHAIN_BREAK
                and (following.get("torn") or {}).get("sha256") == line_hash(line)
            )
            if not acknowledged:
                where = "the last line" if line_no == len(lines) else f"line {line_no}"
                result.fail(path, line_no, f"{where} is not a whole record (torn write, or edited so it no longer parses)")
                return False
            torn_pending = (line_no, line)
            continue
        if previous_line_no == 0:
            # A file starts with a genesis; or, when its very first write was torn, with the
            # chain_break that acknowledges it.
            starts_chain = record.get("event") == GENESIS or (
                record.get("event") == CHAIN_BREAK and torn_pending is not None and record["prev"] == GENESIS_PREV)
            if not starts_chain:
                result.fail(path, 1, "the file does not start with a genesis record (records deleted from its start)")
                return False
            if chain.prev is not None and (record["prev"] != chain.prev or record["seq"] != chain.seq):
                result.fail(chain.prev_file or path, chain.prev_file_lines + 1,
                            f"{os.path.basename(path)} does not continue the chain of this file: records are missing"
                            " at its end (truncated), or a file between them is missing")
                return False
        else:
            if record["seq"] != chain.seq:
                result.fail(path, line_no, _seq_problem(record["seq"], chain.seq, records[index:]))
                return False
            if record["prev"] != chain.prev:
                result.records -= 1  # the changed line was counted before its successor exposed it
                result.fail(path, previous_line_no,
                            f"line {previous_line_no} was changed: its sha256 is not the one line {line_no} recorded")
                return False
        if record.get("event") == CHAIN_BREAK and record.get("torn"):
            if torn_pending is None:
                result.fail(path, line_no, "a chain_break record names a torn line that is not there")
                return False
            result.breaks.append({"file": path, "line": torn_pending[0], "bytes": len(torn_pending[1])})
        torn_pending = None
        chain.prev = line_hash(line)
        chain.seq = record["seq"] + 1
        previous_line_no = line_no
        result.records += 1
    chain.prev_file_lines = len(lines)
    return True


def _seq_problem(found: int, expected: int, rest: t.Sequence[dict[str, t.Any] | None]) -> str:
    if any(r is not None and r.get("seq") == expected for r in rest):
        return f"records out of order: seq {found} where {expected} was expected"
    if found > expected:
        missing = f"{expected}" if found == expected + 1 else f"{expected}..{found - 1}"
        return f"record(s) with seq {missing} missing (deleted)"
    return f"record seq {found} repeats or goes back (expected {expected})"


def verify(pattern: str) -> Verification:
    return verify_files(expand_paths(pattern))
