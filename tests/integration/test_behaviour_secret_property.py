# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Property: a secret never leaks, whatever characters it holds and wherever it is given.

Each example draws one random secret and derives from it one distinct secret per input position
(release_values, a sensitive_values path, each string-taking set_values type, a values file, an
inline kubeconfig's unused users, api_key), so a position whose secret is not registered cannot
hide behind another position's. One ansible-playbook run at -vvv --diff with the audit_log
callback then takes the release through a check and a real install, an upgrade (new secrets,
so the old ones are in the diff's "before"), three failures that quote secrets (a template
``fail``, an unescaped comma in ``--set``, a token the API server does not know or an HTTP
header cannot carry), helm_rollback and helm_status (values and notes). The test chart
(tests/charts/secret-copy) copies every value into a Secret, a ConfigMap, a hook and the notes.

No secret, nor its base64, JSON-escaped, repr or YAML-quoted form, may appear in the module
results, the diffs, the -vvv output, the audit log, or any file left in Ansible's temp dirs. The
cluster must hold every secret intact (the leak search looks for the right strings).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import time
import types
import typing as t
from pathlib import Path

import pytest
import yaml
from conftest import CHARTS, run_playbook
from reliability_log import history_snapshot

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CHART = str(CHARTS / "secret-copy")
# Per helm major; each example is one playbook run (about 20 s on this machine when it is idle).
EXAMPLES = int(os.environ.get("HELM_ENGINE_SECRET_EXAMPLES", "2"))

# Characters helm --set, values files, YAML, JSON, the Kubernetes API and Ansible all carry
# unchanged: letters, marks, digits, punctuation and symbols of any script, and the ASCII space.
# Left out: control and format characters, line and paragraph separators, other spaces
# (YAML and Python treat some as line breaks or strip them), surrogates, private-use and
# unassigned code points (not printable, or escaped differently by Go and Python).
_SPECIALS = "\"'$`{}[]\\=,.-:#&*!|>%@~^()<>?/;+ "
_CHARS = st.one_of(
    st.sampled_from(_SPECIALS),
    st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S")),
)


def _recognisable(secret: str) -> bool:
    """At least 12 characters, 6 distinct, a letter (so helm's --set never reads it as a number,
    and a chance match in the output is impossible), no leading, trailing or doubled space
    (YAML and line folding would change those)."""
    return (len(set(secret)) >= 6 and any(c.isalpha() for c in secret) and secret == secret.strip()
            and "  " not in secret)


SECRETS = st.text(_CHARS, min_size=12, max_size=32).filter(_recognisable)

# One tag per position (and revision), appended to the drawn secret. Plain ASCII, so it changes
# nothing about how helm or YAML read the secret.
POSITIONS = {
    "release_values": "Rv",       # release_values auth.password (a sensitive key)
    "sensitive_path": "Sp",       # release_values app.greeting, listed in sensitive_values
    "set_raw": "Sr",              # set_values value_type raw: creds.rawToken
    "set_string": "Ss",           # value_type string: creds.stringPassword
    "set_json": "Sj",             # value_type json: creds.jsonSecret
    "set_literal": "Sl",          # value_type literal: creds.literalApiKey
    "set_file": "Sf",             # value_type file: creds.fileCredential, the file holds the secret
    "values_file": "Vf",          # values_files: fromFile.password
}
KUBECONFIG_POSITIONS = {"kube_token": "Kt", "kube_id_token": "Ki", "kube_client_secret": "Kc", "kube_exec_env": "Ke",
                        "kube_exec_arg": "Ka"}
FAULT_POSITIONS = {"fail_values_file": "Fv", "unescaped_comma": "Uc", "api_key": "Ak"}


class Unsafe(str):
    """A string Ansible must not template ({{ in a secret is not a template)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style='"'))


def unsafe(data: t.Any) -> t.Any:
    if isinstance(data, dict):
        return {k: unsafe(v) for k, v in data.items()}
    if isinstance(data, list):
        return [unsafe(v) for v in data]
    return Unsafe(data) if isinstance(data, str) else data


def set_escape(value: str) -> str:
    """helm's --set and --set-string read a backslash as "take the next character as is"."""
    return "".join("\\" + c if not c.isalnum() else c for c in value)


def forms(secret: str) -> set[str]:
    """The ways a leaked secret can be written: as is, base64 (a Secret's data), JSON-escaped
    (either ASCII setting), Python repr (error messages) and YAML single-quoted (diffs)."""
    return {
        secret,
        base64.b64encode(secret.encode()).decode(),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        secret.replace("'", "''"),
    }


def _flat(text: str) -> str:
    # A diff's YAML may fold a long value at a space; a secret holds single spaces only.
    return " ".join(text.split())


def find_leaks(secrets: t.Iterable[str], texts: dict[str, str]) -> list[tuple[str, str, str]]:
    """(where, secret, form) for every form of every secret found in the texts."""
    flat = {where: _flat(text) for where, text in texts.items()}
    leaks = []
    for secret in secrets:
        for form in sorted(forms(secret)):
            for where, text in flat.items():
                if _flat(form) in text:
                    leaks.append((where, secret, form))
    return leaks


def cluster_kubeconfig_with_unused_users(kubeconfig: str, secret: dict[str, str]) -> dict[str, t.Any]:
    """The cluster's kubeconfig inline, plus users no context selects whose credentials are secrets."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    config["users"] += [
        {"name": "unused-token", "user": {"token": secret["kube_token"]}},
        {"name": "unused-oidc", "user": {"auth-provider": {"name": "oidc", "config": {
            "id-token": secret["kube_id_token"], "client-secret": secret["kube_client_secret"], "client-id": "helm-engine"}}}},
        {"name": "unused-exec", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/false", "interactiveMode": "Never",
            "args": ["--token", secret["kube_exec_arg"]], "env": [{"name": "HELM_ENGINE_TOKEN", "value": secret["kube_exec_env"]}]}}},
    ]
    cluster = config["clusters"][0]["name"]
    config["contexts"] += [{"name": f"unused-{i}", "context": {"cluster": cluster, "user": u}}
                           for i, u in enumerate(("unused-token", "unused-oidc", "unused-exec"))]
    return config


def deploy_args(release: str, namespace: str, work: Path, secret: dict[str, str], revision: int) -> dict[str, t.Any]:
    """helm_deploy's arguments with a secret in every position."""
    values_file = work / f"values-{revision}.json"
    values_file.write_text(json.dumps({"fromFile": {"password": secret["values_file"]}}, ensure_ascii=False))
    secret_file = work / f"set-file-{revision}.txt"
    secret_file.write_text(secret["set_file"])
    return {
        "name": release, "namespace": namespace, "chart_ref": CHART, "create_namespace": True,
        "release_values": {"auth": {"password": secret["release_values"]}, "app": {"greeting": secret["sensitive_path"]}},
        "sensitive_values": ["app.greeting"],
        "values_files": [str(values_file)],
        "set_values": [
            {"value": f"creds.rawToken={set_escape(secret['set_raw'])}", "value_type": "raw"},
            {"value": f"creds.stringPassword={set_escape(secret['set_string'])}", "value_type": "string"},
            {"value": f"creds.jsonSecret={json.dumps(secret['set_json'], ensure_ascii=False)}", "value_type": "json"},
            {"value": f"creds.literalApiKey={secret['set_literal']}", "value_type": "literal"},
            {"value": f"creds.fileCredential={secret_file}", "value_type": "file"},
        ],
    }


def expected_copies(secret: dict[str, str]) -> dict[str, str]:
    """What the chart's ConfigMap must hold for a revision's secrets."""
    return {
        "password": secret["release_values"], "greeting": secret["sensitive_path"],
        "creds.rawToken": secret["set_raw"], "creds.stringPassword": secret["set_string"],
        "creds.jsonSecret": secret["set_json"], "creds.literalApiKey": secret["set_literal"],
        "creds.fileCredential": secret["set_file"], "fromFile.password": secret["values_file"],
    }


def task(name: str, module: str, args: dict[str, t.Any], **keywords: t.Any) -> dict[str, t.Any]:
    return {"name": name, module: unsafe(args), "register": name.replace(" ", "_"), **keywords}


def playbook(kubeconfig: dict[str, t.Any], helm: str, kubectl: list[str], release: str, namespace: str, work: Path,
             secrets: list[dict[str, str]], fault: dict[str, str]) -> str:
    rev1 = deploy_args(release, namespace, work, secrets[0], 1)
    rev2 = deploy_args(release, namespace, work, secrets[1], 2)
    fail_values = work / "fail-values.json"
    fail_values.write_text(json.dumps({"fromFile": {"password": fault["fail_values_file"]}, "failRender": True},
                                      ensure_ascii=False))
    # A password with an unescaped comma: helm reads the part after it as a key and quotes it.
    head, tail = comma_parts(fault["unescaped_comma"])
    comma_value = f"{set_escape(head)},{tail}"
    deploy = "ai_mesh.helm_engine.helm_deploy"
    status = {"name": release, "namespace": namespace, "get_all_values": True, "sensitive_values": ["app.greeting"]}
    tasks = [
        task("check install", deploy, rev1, check_mode=True),
        task("install", deploy, rev1),
        task("upgrade", deploy, rev2),
        task("history before faults", "ansible.builtin.command",
             {"argv": [*kubectl, "-n", namespace, "get", "secrets", "-o", "json", "-l", f"owner=helm,name={release}"]},
             no_log=True, changed_when=False),
        task("render failure", deploy, dict(rev2, values_files=rev2["values_files"] + [str(fail_values)]), ignore_errors=True),
        task("unescaped comma", deploy, dict(rev2, set_values=[{"value": f"creds.rawToken={comma_value}"}]), ignore_errors=True),
        task("unknown token", deploy, dict(rev2, api_key=fault["api_key"]), check_mode=True, ignore_errors=True),
        task("rollback", "ai_mesh.helm_engine.helm_rollback",
             {"name": release, "namespace": namespace, "target": "previous", "sensitive_values": ["app.greeting"]}),
        task("status after", "ai_mesh.helm_engine.helm_status", status),
    ]
    names = [item["register"] for item in tasks]
    results = "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"
    tasks.append({"name": "results", "ansible.builtin.copy": {"dest": str(work / "results.json"), "content": results,
                                                            "mode": "0600"}, "no_log": True})
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/ai_mesh.helm_engine.helm_engine": {"kubeconfig": unsafe(kubeconfig), "binary_path": helm}},
        "tasks": tasks,
    }]
    return yaml.dump(play, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1_000_000)


def comma_parts(secret: str) -> tuple[str, str]:
    """A secret as "head,tail": the tail is what helm quotes back in "key \"tail\" has no value"
    (letters and digits only, or helm would read it as a nested key, an index or a value)."""
    return secret, "Uc" + "".join(c for c in secret if c.isalnum()) + "tail"


def derive(base: str, tags: dict[str, str], revision: int) -> dict[str, str]:
    return {position: f"{base}{tag}{revision}" for position, tag in tags.items()}


def read_texts(*roots: Path, skip: t.Container[Path] = ()) -> dict[str, str]:
    texts = {}
    for root in roots:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_file() and path not in skip:
                texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return texts


_EXAMPLE = itertools.count()
# Seconds per example, per helm binary (one hypothesis test call runs several examples).
_SECONDS: dict[str, list[float]] = {}


@pytest.mark.reliability("secrets", "random secrets (quotes, $, {, backslashes, unicode, leading dashes, =, commas) "
                                    "in every input position, at -vvv --diff with the audit log")
# No shrinking: each example costs a playbook run, and the failing one is reported as drawn.
@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(base=SECRETS)
def test_no_secret_leaks_anywhere(base, helm, cluster, kubeconfig, kubectl, namespace, tmp_path, reliability):
    started = time.monotonic()
    example = next(_EXAMPLE)
    release = f"s{example}"
    work = tmp_path / f"example-{example}"
    work.mkdir()
    secrets = [derive(base, POSITIONS, 1), derive(base, POSITIONS, 2)]
    kube_secrets = derive(base, KUBECONFIG_POSITIONS, 0)
    fault = derive(base, FAULT_POSITIONS, 0)
    text = playbook(cluster_kubeconfig_with_unused_users(kubeconfig, kube_secrets), helm,
                    [cluster["HELM_ENGINE_KUBECTL"], f"--kubeconfig={kubeconfig}"], release, namespace, work, secrets, fault)
    audit_dir, local_tmp, remote_tmp = work / "audit", work / "ansible-local", work / "ansible-remote"
    env = {"ANSIBLE_CALLBACKS_ENABLED": "ai_mesh.helm_engine.audit_log", "HELM_ENGINE_AUDIT_LOG": str(audit_dir / "audit.log"),
           "ANSIBLE_LOCAL_TEMP": str(local_tmp), "ANSIBLE_REMOTE_TMP": str(remote_tmp)}
    proc = run_playbook(text, tmp_path=work, env=env, extra_args=["-vvv", "--diff"])
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-5000:]}\n{proc.stderr[-3000:]}"
    results = json.loads((work / "results.json").read_text())

    # The secrets went through intact: rolled back to revision 1's, its copies hold them exactly.
    copies = json.loads(kubectl("-n", namespace, "get", "configmap", f"{release}-copies", "-o", "json").stdout)["data"]
    assert copies == expected_copies(secrets[0])
    stored = json.loads(kubectl("-n", namespace, "get", "secret", f"{release}-secret", "-o", "json").stdout)["data"]
    assert {k: base64.b64decode(v).decode() for k, v in stored.items()} == expected_copies(secrets[0])

    # Each step did what it should, so its output is the one under test.
    assert [results[n]["changed"] for n in ("check_install", "install", "upgrade", "rollback")] == [True] * 4
    assert all(results[n]["diff"] for n in ("check_install", "install", "upgrade", "rollback"))
    assert results["status_after"]["status"]["notes"] and results["status_after"]["healthy"] is True
    assert results["render_failure"]["error"]["kind"] == "render_failed", results["render_failure"]["msg"]
    assert results["unescaped_comma"]["error"]["kind"] == "invalid_values", results["unescaped_comma"]["msg"]
    # A token an HTTP header cannot carry is refused before any request; any other, by the API server.
    sendable = re.fullmatch(r"[\x21-\x7e]+", fault["api_key"]) is not None
    assert results["unknown_token"]["error"]["kind"] == ("unauthorized" if sendable else "invalid_arguments"), \
        results["unknown_token"]["msg"]
    assert results["rollback"]["to_revision"] == 1 and results["status_after"]["revision"] == 3

    # The faults changed nothing; the rollback only added revision 3.
    before = history_snapshot(lambda *a, **k: types.SimpleNamespace(stdout=results["history_before_faults"]["stdout"]),
                              namespace, release)
    assert sorted(before) == [1, 2]
    after = reliability.check_nothing_lost(kubectl, namespace, release, before)
    assert sorted(after) == [1, 2, 3] and after[3]["config"] == before[1]["config"]

    inputs = {work / name for name in ("playbook.yml", "fail-values.json", "values-1.json", "values-2.json",
                                       "set-file-1.txt", "set-file-2.txt", "inventory.ini")}
    texts = {"stdout": proc.stdout, "stderr": proc.stderr, "results": json.dumps(results, ensure_ascii=False)}
    texts.update(read_texts(audit_dir, local_tmp, remote_tmp, work, skip=inputs))
    # Not the drawn string alone: hypothesis also draws the code's own constants ("values changed"),
    # which the output holds legitimately; with its position tag a secret is unique.
    all_secrets = [*secrets[0].values(), *secrets[1].values(), *kube_secrets.values(), *fault.values(),
                   comma_parts(fault["unescaped_comma"])[1]]
    leaks = find_leaks(all_secrets, texts)
    assert not leaks, "secrets leaked:\n" + "\n".join(f"  {where}: {form!r} (of {secret!r})" for where, secret, form in leaks[:20])
    # The search itself finds them where they are meant to be.
    assert find_leaks([secrets[0]["release_values"]], {"configmap": json.dumps(copies, ensure_ascii=False)})
    seconds = _SECONDS.setdefault(helm, [])
    seconds.append(round(time.monotonic() - started, 1))
    reliability.note(examples=len(seconds), seconds_per_example=seconds, bytes_searched=sum(len(v) for v in texts.values()),
                     secrets_per_example=len(all_secrets))
