#!/usr/bin/python
# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_verify
short_description: Verify the hash chain of a helm_engine audit log
version_added: 0.1.0
description:
  - Reads the audit log written by the C(ai_mesh.helm_engine.audit_log) callback, and its rotated
    files, and checks every record - that each line is a whole record, that the C(seq) numbers
    follow each other and that each record carries the sha256 of the line before it, across files.
  - Reports the first bad file and line, with the reason - a torn line, an edited field, a deleted
    or reordered record, a truncated rotated file.
  - A torn line that a later writer acknowledged with a C(chain_break) record is not an error; it
    is listed in RV(breaks).
  - Records deleted from the end of the newest file cannot be told from a shorter log; compare
    RV(last_hash) with a value kept elsewhere to detect that.
  - Never changes anything; the result is C(changed=false). It does not fail when the chain is
    broken - test RV(ok) (the playbook C(ai_mesh.helm_engine.audit_verify) does).
author:
  - ai_mesh helm_engine maintainers (@ai-mesh)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
extends_documentation_fragment:
  - ai_mesh.helm_engine.attributes
options:
  path:
    description:
      - The log file, or a glob that matches it and its rotated files (C(audit.log*)), on the
        host the module runs on. Files are checked oldest first (C(audit.log.000001), ...,
        C(audit.log)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Verify the audit log and its rotated files
  ai_mesh.helm_engine.audit_verify:
    path: ~/.ansible/helm_engine/audit.log*
  register: audit
  delegate_to: localhost

- name: Fail when the chain is broken
  ansible.builtin.assert:
    that: audit.ok
    fail_msg: "{{ audit.first_bad_file }} line {{ audit.first_bad_line }}: {{ audit.reason }}"
"""

RETURN = r"""
ok:
  description: Whether every record of every file verified.
  returned: always
  type: bool
records:
  description: The number of records that verified (before the first bad line, if any).
  returned: always
  type: int
files:
  description: The files checked, in chain order.
  returned: always
  type: list
  elements: str
first_bad_file:
  description: The file of the first problem; null when O(path) matched nothing or all is well.
  returned: always
  type: str
first_bad_line:
  description: The line (1-based) of the first problem; null when all is well.
  returned: always
  type: int
reason:
  description: What is wrong at RV(first_bad_line).
  returned: always
  type: str
  sample: "line 7 was changed: its sha256 is not the one line 8 recorded"
last_hash:
  description: The sha256 of the last record; keep it elsewhere to detect a later truncation.
  returned: always
  type: str
last_seq:
  description: The C(seq) of the last record.
  returned: always
  type: int
breaks:
  description: Torn lines (writer killed mid-write) acknowledged by the next writer.
  returned: always
  type: list
  elements: dict
  sample: [{"file": "/root/.ansible/helm_engine/audit.log", "line": 12, "bytes": 97}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._audit import verify


def main() -> None:
    module = AnsibleModule(argument_spec={"path": {"type": "str", "required": True}}, supports_check_mode=True)
    verification = verify(module.params["path"])
    if not verification.files:
        verification.first_bad_file = None
    module.exit_json(changed=False, **verification.as_dict())


if __name__ == "__main__":
    main()
