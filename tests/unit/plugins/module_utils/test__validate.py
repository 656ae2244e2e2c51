# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Input validation: what is refused before helm or the cluster is touched, and with which kind."""

from __future__ import annotations

import os
import time
import typing as t

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CHART_NOT_FOUND,
    HELM_FAILED,
    HELM_MISSING,
    INVALID_ARGUMENTS,
    INVALID_VALUES,
    TIMEOUT,
    HelmError,
    InputError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import VERSION_DEADLINE, HelmClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import run_process


def refused(call, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    return caught.value


# ---- release_name / namespace ------------------------------------------------------------


@pytest.mark.parametrize("name", ["web", "w", "web-1", "web.v2", "0web", "a" * 53, "a" + "-b" * 26])
def test_release_name_accepted(name):
    assert validate.release_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("a" * 54, id="54-chars"),
        pytest.param("Web", id="uppercase"),
        pytest.param("-web", id="leading-dash"),
        pytest.param("web-", id="trailing-dash"),
        pytest.param("web\n", id="newline"),
        pytest.param("we\tb", id="tab"),
        pytest.param(" web", id="leading-space"),
        pytest.param("ns/../other", id="path"),
        pytest.param("name,name!=x", id="selector"),
        pytest.param("web_1", id="underscore"),
        pytest.param("web..x", id="empty-label"),
    ],
)
def test_release_name_refused(name):
    error = refused(validate.release_name, name)
    assert error.kind == INVALID_ARGUMENTS
    assert error.details == {"option": "name"}


@pytest.mark.parametrize("value", [None, 5, ["web"], {"name": "web"}, b"web", True])
def test_release_name_must_be_a_string(value):
    error = refused(validate.release_name, value, "release_name")
    assert error.kind == INVALID_ARGUMENTS
    assert error.details == {"option": "release_name"}


def test_release_name_message_says_the_limit():
    assert "54 characters long; helm allows at most 53" in refused(validate.release_name, "a" * 54).msg


@pytest.mark.parametrize("namespace", ["apps", "a", "kube-system", "a" * 63, "0-9"])
def test_namespace_accepted(namespace):
    assert validate.namespace(namespace) == namespace


@pytest.mark.parametrize(
    "namespace",
    ["", "a" * 64, "Apps", "-apps", "apps-", "ns/../other", "apps.v2", "name,name!=x", "apps\n", "..", 7, None],
)
def test_namespace_refused(namespace):
    error = refused(validate.namespace, namespace)
    assert error.kind == INVALID_ARGUMENTS
    assert error.details == {"option": "namespace"}


# ---- argument / chart_ref / url ----------------------------------------------------------


@pytest.mark.parametrize("value", ["-x", "--set=a=b", "a\nb", "", " a", "a ", "x" * 4097, 3])
def test_argument_refused(value):
    assert refused(validate.argument, value, "chart_version").details == {"option": "chart_version"}


def test_argument_accepted_and_optional():
    assert validate.argument("1.2.3", "chart_version") == "1.2.3"
    assert validate.argument("a-b=c d", "description") == "a-b=c d"
    assert validate.optional_argument(None, "description") is None
    assert validate.optional_argument("x", "description") == "x"


@pytest.mark.parametrize("ref", ["-chart", "--repo=http://evil"])
def test_chart_ref_starting_with_a_dash_is_refused(ref):
    error = refused(validate.chart_ref, ref)
    assert (error.kind, error.details) == (INVALID_ARGUMENTS, {"option": "chart_ref"})


@pytest.mark.parametrize("ref", ["./no-such-chart", "../no-such-chart", "/no/such/chart", "~/no-such-chart"])
def test_missing_local_chart_is_chart_not_found(ref, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    error = refused(validate.chart_ref, ref)
    assert (error.kind, error.details) == (CHART_NOT_FOUND, {"option": "chart_ref"})


def test_existing_local_and_remote_charts_are_accepted(tmp_path, monkeypatch):
    (tmp_path / "charts" / "web").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for ref in ("./charts/web", str(tmp_path / "charts" / "web"), "~/charts/web", "bitnami/redis",
                "oci://registry.example/charts/web"):
        assert validate.chart_ref(ref) == ref


@pytest.mark.parametrize("value", ["https://charts.example.com", "http://127.0.0.1:8080/charts", "https://[::1]:6443"])
def test_url_accepted(value):
    assert validate.url(value, "chart_repo_url") == value


@pytest.mark.parametrize(
    "value",
    ["charts.example.com", "ftp://charts.example.com", "https://", "https://host:port", "-https://x", "file:///etc/passwd",
     "https://host:99999"],
)
def test_url_refused(value):
    assert refused(validate.url, value, "chart_repo_url").details == {"option": "chart_repo_url"}


def test_url_with_other_schemes():
    assert validate.url("oci://registry.example", "registry", schemes=("oci",)) == "oci://registry.example"
    refused(validate.url, "https://registry.example", "registry", schemes=("oci",))


# ---- values_files / values_size ----------------------------------------------------------


def test_values_files_are_checked_and_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "base.yaml").write_text("a: 1\n")
    (tmp_path / "prod.yaml").write_text("a: 2\n")
    assert validate.values_files([str(tmp_path / "base.yaml"), "~/prod.yaml"]) == [
        str(tmp_path / "base.yaml"), str(tmp_path / "prod.yaml"),
    ]
    assert validate.values_files([]) == []


def test_missing_values_file_is_invalid_values(tmp_path):
    error = refused(validate.values_files, [str(tmp_path / "nope.yaml")])
    assert (error.kind, error.details) == (INVALID_VALUES, {"option": "values_files"})
    assert "does not exist" in error.msg


def test_directory_values_file_is_invalid_values(tmp_path):
    error = refused(validate.values_files, [str(tmp_path)])
    assert error.kind == INVALID_VALUES
    assert "is a directory" in error.msg


def test_values_file_starting_with_a_dash_is_refused():
    assert refused(validate.values_files, ["-f"]).kind == INVALID_ARGUMENTS


def test_normal_values_fit_a_release(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text("replicaCount: 3\nimage:\n  tag: '1.2'\n" * 100)
    validate.values_size({"replicaCount": 3, "auth": {"password": "x" * 1000}}, [str(path)])
    validate.values_size(None, [])
    # What counts is the stored (compressed) size: 2 MiB of one letter is small once gzipped.
    validate.values_size({"padding": "a" * (2 * 1024 * 1024)}, [])


def test_incompressible_values_over_a_mib_are_invalid_values():
    values = {"blob": os.urandom(1024 * 1024).hex()}  # random: gzip cannot shrink it below the limit
    error = refused(validate.values_size, values, [])
    assert error.kind == INVALID_VALUES
    assert "1048576" in error.msg


def test_incompressible_values_file_over_a_mib_is_invalid_values(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(900 * 1024))  # base64 of ~900 KiB that gzip cannot shrink: ~1.2 MiB
    assert refused(validate.values_size, None, [str(path)]).kind == INVALID_VALUES
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(600 * 1024))  # ~800 KiB stored: fits
    validate.values_size(None, [str(small)])


# ---- duration_seconds / go_duration ------------------------------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("5m0s", 300.0),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("1m30.5s", 90.5),
        (300, 300.0),
        (2.5, 2.5),
        ("300", 300.0),
        ("2.5", 2.5),
        (" 10m ", 600.0),  # surrounding spaces are stripped
        ("168h", 7 * 24 * 3600.0),
    ],
)
def test_duration_seconds(value, seconds):
    assert validate.duration_seconds(value) == pytest.approx(seconds)


def test_duration_seconds_default_and_zero():
    assert validate.duration_seconds(None) is None
    assert validate.duration_seconds(None, default=42.0) == 42.0
    assert validate.duration_seconds("0", allow_zero=True) == 0.0
    assert validate.duration_seconds(0, allow_zero=True) == 0.0
    assert validate.duration_seconds("0s", allow_zero=True) == 0.0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("abc", id="word"),
        pytest.param("-5s", id="negative-go"),
        pytest.param("-5", id="negative-number"),
        pytest.param(-5, id="negative-int"),
        pytest.param("0", id="zero"),
        pytest.param(0, id="zero-int"),
        pytest.param("0s", id="zero-go"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(True, id="bool"),
        pytest.param(False, id="false"),
        pytest.param("5d", id="days"),
        pytest.param("5 minutes", id="words"),
        pytest.param("1h 30m", id="inner-space"),
        pytest.param("m5", id="unit-first"),
        pytest.param("5m junk", id="trailing-junk"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="inf"),
        pytest.param("169h", id="over-a-week"),
        pytest.param([5], id="list"),
    ],
)
def test_duration_seconds_refused(value):
    error = refused(validate.duration_seconds, value, "timeout")
    assert (error.kind, error.details) == (INVALID_ARGUMENTS, {"option": "timeout"})


@pytest.mark.parametrize("value", ["-1s", -1, "abc", True])
def test_duration_seconds_refused_even_with_allow_zero(value):
    refused(validate.duration_seconds, value, "lock_wait", allow_zero=True)


@pytest.mark.parametrize("seconds, text", [(300.0, "300s"), (90, "90s"), (0.25, "250ms"), (90.5, "90500ms"), (1.0, "1s")])
def test_go_duration(seconds, text):
    assert validate.go_duration(seconds) == text
    # What helm gets reads back as the same duration.
    assert validate.duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["100us", "0.5ms", "999ns"])
def test_go_duration_never_turns_an_accepted_timeout_into_zero(text):
    seconds = validate.duration_seconds(text)
    assert validate.duration_seconds(validate.go_duration(seconds)) > 0


# ---- positive_number ---------------------------------------------------------------------


def test_positive_number():
    assert validate.positive_number(3, "n", minimum=1) == 3.0
    assert validate.positive_number(1.5, "n", minimum=1, maximum=2) == 1.5
    for value in (0, 3, True, "2", float("nan"), None):
        assert refused(validate.positive_number, value, "n", minimum=1, maximum=2).details == {"option": "n"}


# ---- api_key ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["eyJhbGciOi.J9-_~+/x=", "abc$%{}\\"])
def test_api_key_accepts_visible_ascii(token):
    assert validate.api_key(token) == token


@pytest.mark.parametrize("token", ["", "two words", "caf\u00e9-token", "emoji-\U0001f511", "tab\there", 42])
def test_api_key_refuses_what_an_http_header_cannot_carry_without_showing_it(token):
    caught = refused(validate.api_key, token)
    assert caught.details.get("option") == "api_key"
    assert not token or str(token) not in str(caught)


# ---- values nesting ------------------------------------------------------------------------------

LIMIT = validate.MAX_VALUES_DEPTH


def nested(depth: int, leaf: t.Any = "leaf") -> t.Any:
    """``depth`` mappings, one inside the other (a list every third level)."""
    tree = leaf
    for level in range(depth):
        tree = [tree] if level % 3 == 2 else {"k": tree}
    return tree


def nested_json(depth: int) -> str:
    return '{"k": ' * depth + '"leaf"' + "}" * depth


def nested_block_yaml(depth: int) -> str:
    return "\n".join("  " * level + "k:" for level in range(depth)) + " leaf\n"


def read_text(path: str) -> str | None:
    return open(path, encoding="utf-8").read() if os.path.isfile(path) else None


def test_the_limit_is_well_above_charts_and_well_below_recursion():
    assert 100 <= LIMIT <= 200


@pytest.mark.parametrize("tree, depth", [("x", 0), ({}, 1), ([], 1), ({"a": 1, "b": [1, {"c": 2}]}, 3),
                                         (nested(LIMIT), LIMIT), (nested(LIMIT + 1), LIMIT + 1)])
def test_nesting_depth(tree, depth):
    assert validate.nesting_depth(tree) == depth


def test_nesting_depth_stops_past_the_limit_without_recursion():
    # 100,000 levels: a recursive walk would end in RecursionError long before.
    assert validate.nesting_depth(nested(100_000), limit=LIMIT) == LIMIT + 1


def test_release_values_at_the_limit_are_accepted():
    validate.values_nesting({"release_values": nested(LIMIT)}, ["release_values"], read_text)


def test_release_values_one_level_past_the_limit_are_invalid_values():
    error = refused(validate.values_nesting, {"release_values": nested(LIMIT + 1)}, ["release_values"], read_text)
    assert (error.kind, error.details) == (INVALID_VALUES, {"option": "release_values"})
    assert f"more than {LIMIT} levels deep" in error.msg and error.msg.startswith("release_values ")


@pytest.mark.parametrize("text", [nested_block_yaml(LIMIT), nested_json(LIMIT)], ids=["block", "json"])
def test_a_values_file_at_the_limit_is_accepted_and_read(tmp_path, text):
    path = tmp_path / "values.yaml"
    path.write_text(text)
    validate.values_nesting({"values_files": [str(path)]}, [], read_text)
    assert validate.nesting_depth(validate.load_values_yaml(text)) == LIMIT


def test_a_values_file_path_is_shown_whole_and_a_hostile_one_is_refused_by_its_length(tmp_path):
    deep = tmp_path.joinpath(*["directory-with-a-long-name"] * 6)
    deep.mkdir(parents=True)
    (deep / "values.yaml").write_text(nested_block_yaml(LIMIT + 1))
    error = refused(validate.values_nesting, {"values_files": [str(deep / "values.yaml")]}, [], read_text)
    assert len(str(deep / "values.yaml")) > 160 and f"values file '{deep / 'values.yaml'}' " in error.msg
    hostile = "/" + "x" * 100_000
    error = refused(validate.values_files, [hostile])
    assert error.msg == "values_files is 100001 characters long; at most 4096 are accepted."


@pytest.mark.parametrize("text", [
    pytest.param(nested_block_yaml(LIMIT + 1), id="block-101"),
    pytest.param(nested_json(LIMIT + 1), id="json-101"),
    pytest.param(nested_json(1500), id="json-1500"),
    # libyaml's composer recurses in C: this file crashed the process (SIGSEGV) when loaded.
    pytest.param("a: " + "[" * 100_000 + "]" * 100_000 + "\n", id="flow-100000"),
])
def test_a_values_file_past_the_limit_is_invalid_values_and_never_loaded(tmp_path, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    error = refused(validate.values_nesting, {"values_files": [str(path)]}, [], read_text)
    assert (error.kind, error.details) == (INVALID_VALUES, {"option": "values_files"})
    assert str(path) in error.msg and f"more than {LIMIT} levels deep" in error.msg
    assert validate.load_values_yaml(text) is None


def test_aliases_count_as_the_nodes_they_repeat():
    # Each anchor one level deeper than the last: 1 level of text, LIMIT + 1 levels of values.
    lines = ["a0: &a0 {k: v}"] + [f"a{i}: &a{i} {{k: *a{i - 1}}}" for i in range(1, LIMIT + 1)]
    text = "\n".join(lines) + "\n"
    assert validate.yaml_nesting(text) > LIMIT
    assert validate.load_values_yaml(text) is None
    shallow = "\n".join(lines[:LIMIT - 1]) + "\n"
    assert validate.yaml_nesting(shallow) == LIMIT
    assert validate.nesting_depth(validate.load_values_yaml(shallow)) == LIMIT


def test_an_alias_inside_its_own_anchor_never_ends():
    text = "a: &loop\n  b: [*loop]\n"
    assert validate.yaml_nesting(text) > LIMIT
    assert validate.load_values_yaml(text) is None


@pytest.mark.parametrize("text, depth", [("", 0), ("x", 0), ("a: 1\n---\nb: {c: [1]}\n", 3), ("a: [unclosed", None)])
def test_yaml_nesting(text, depth):
    assert validate.yaml_nesting(text) == depth


def test_values_files_that_cannot_be_read_are_left_to_values_files(tmp_path):
    validate.values_nesting({"values_files": [str(tmp_path / "missing.yaml"), str(tmp_path), 7]}, [], read_text)


# ---- set_values: helm 3's --set syntax ---------------------------------------------------------------

# Each accepted by helm v3.22 (``helm template --set ...`` exits 0); checked against it.
VALID_SET = [
    ("raw", "a.b=c"), ("raw", "a[0]=x"), ("raw", "a[0].b=c"), ("raw", r"a=b\,c"), ("raw", "a={x,y}"),
    ("raw", r"a\.b=c"), ("raw", "name="), ("raw", "a[65536]=x"), ("raw", "a[+1]=1"), ("raw", "a[01]=1"),
    ("raw", "a={x,y},b=1"), ("raw", "a={x,y}b=1"), ("raw", "a={}"), ("raw", "a=b=c"), ("raw", "=x"), ("raw", ".a=1"),
    ("raw", "a[0]"), ("raw", "a."), ("raw", "a=b\\"), ("raw", "a[1].b=1,a[0]=2"), ("raw", "a[0]=1,a[0].b=2"),
    ("raw", "a[0]=1,a=2"), ("raw", "message=--no-hooks"), ("raw", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d=1"),
    ("string", "a=1"), ("string", "a={x,y}"), ("string", "a=null"),
    ("json", 'a={"b": [1, {"c": null}]}'), ("json", "a=[1,2]"), ("json", "a=1,b=2"), ("json", "a="), ("json", "a= ,b=1"),
    ("json", "a[0]={\"x\":1}"), ("json", "a=\u00a01"), ("json", "a=true."),
    ("literal", "a=b,c"), ("literal", "a[0]=x,y"), ("literal", "a.b=c=d"), ("literal", "a={x"),
    ("file", "a=/some/file"),
]

# Each refused by helm v3.22, with the reason it gives.
INVALID_SET = [
    (("raw", "a[=x"), "error parsing index: EOF"),
    (("raw", "a[0"), "error parsing index: EOF"),
    (("raw", "a[0][=x"), "error parsing index: EOF"),
    (("string", "a[=x"), "error parsing index: EOF"),
    (("literal", "a[=x"), "error parsing index: EOF"),
    (("raw", "a[x]=1"), 'error parsing index: strconv.Atoi: parsing "x": invalid syntax'),
    (("raw", "a[ 1]=1"), 'error parsing index: strconv.Atoi: parsing " 1": invalid syntax'),
    (("raw", "a[9999999999999999999]=1"), 'parsing "9999999999999999999": value out of range'),
    (("raw", "a[65537]=x"), "index of 65537 is greater than maximum supported index of 65536"),
    (("raw", "a[-1]=x"), "negative -1 index not allowed"),
    (("raw", "a[0]xy=1"), "unexpected data at end of array index: ['x' 'y']"),
    (("raw", "a..b=1"), 'key map "a" has no value'),
    (("raw", "a.=x"), 'key map "a" has no value'),
    (("literal", "a.=1"), 'key map "a" has no value'),
    (("raw", "a=b,c"), 'key "c" has no value'),
    (("literal", "a"), 'key "a" has no value'),
    (("raw", "a,b=1"), 'key "a" has no value (cannot end with ,)'),
    (("raw", "a={x,y"), "list must terminate with '}'"),
    (("raw", "a=1,a[0]=2"), "unable to parse key: interface conversion: interface {} is int64, not []interface {}"),
    (("raw", "a=null,a.b=1"), "interface {} is nil, not map[string]interface {}"),
    (("raw", "a[0].b=1,a[0][0]=2"), "is map[string]interface {}, not []interface {}"),
    (("raw", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f=1"),
     "value name nested level is greater than maximum supported nested level of 30"),
    (("json", 'a={"b":'), "Expecting value"),
    (("json", "a=NaN"), "invalid character"),
    (("json", "a=1."), "invalid character after numeric literal"),
    (("json", 'a="x"y'), 'key "y" has no value'),
    (("json", '{"a":"x=y"}'), "Expecting value"),  # helm 4 would merge it as a map
]


def test_valid_set_expressions_are_accepted():
    for item in VALID_SET:
        validate.set_values([item])


@pytest.mark.parametrize("item, reason", INVALID_SET, ids=[f"{i[0]}:{i[1]}" for i, _ in INVALID_SET])
def test_set_expressions_helm_3_refuses_are_invalid_values(item, reason):
    error = refused(validate.set_values, [("raw", "ok=1"), item])
    assert (error.kind, error.details) == (INVALID_VALUES, {"option": "set_values"})
    flag = {"raw": "--set", "string": "--set-string", "json": "--set-json", "literal": "--set-literal"}[item[0]]
    assert error.msg.startswith(f"set_values[1] ({flag}, key ")
    assert f"failed parsing {flag} data: " in error.msg and reason in error.msg


def test_an_unclosed_index_says_what_is_missing():
    error = refused(validate.set_values, [("raw", "a[=x")])
    assert error.msg.startswith("set_values[0] (--set, key 'a['): failed parsing --set data: error parsing index: EOF "
                                "(an index needs its closing ']').")


def test_the_message_shows_the_key_not_the_value():
    assert "hunter2" not in refused(validate.set_values, [("raw", "auth.password=x,hunter2")]).msg.split("key 'auth.password'")[0]
    assert "key 'auth.password'" in refused(validate.set_values, [("raw", "auth.password=x,hunter2")]).msg


def test_set_items_share_one_map_in_helms_order():
    # helm applies every --set-json before any --set, whatever the order of the flags.
    validate.set_values([("raw", "a[0]=2"), ("json", "a=[1]")])
    error = refused(validate.set_values, [("json", "a=1"), ("raw", "a[0]=2")])
    assert error.msg.startswith("set_values[1] (--set, key 'a[0]')")
    assert "interface {} is float64, not []interface {}" in error.msg
    assert "is map[string]interface {}" in refused(validate.set_values, [("raw", "a.b=2"), ("literal", "a[0]=1")]).msg


@pytest.mark.parametrize("value_type, expression", [
    ("raw", "a" + "[0]" * (LIMIT - 1) + "=x"),
    ("raw", "a" + "[0]" * (LIMIT - 2) + "={x,y}"),
    ("json", "a=" + "[" * (LIMIT - 1) + "]" * (LIMIT - 1)),
    ("literal", "a" + "[0]" * (LIMIT - 1) + "=x"),
])
def test_set_values_at_the_depth_limit_are_accepted(value_type, expression):
    validate.set_values([(value_type, expression)])


@pytest.mark.parametrize("value_type, expression", [
    ("raw", "a" + "[0]" * LIMIT + "=x"),
    ("raw", "a" + "[0]" * (LIMIT - 1) + "={x,y}"),
    ("json", "a=" + "[" * LIMIT + "]" * LIMIT),
    ("json", "a=" + nested_json(1500)),
    ("raw", "a" + "[0]" * 100_000 + "=x"),  # a recursive parser would end in RecursionError
    ("literal", "a" + "[0]" * LIMIT + "=x"),
])
def test_set_values_past_the_depth_limit_are_invalid_values(value_type, expression):
    error = refused(validate.set_values, [(value_type, expression)])
    assert (error.kind, error.details) == (INVALID_VALUES, {"option": "set_values"})
    assert error.msg.startswith("set_values[0] nests mappings and lists more than 100 levels deep")


# ---- the helm version probe ----------------------------------------------------------------------


def test_a_version_probe_stopped_at_its_deadline_is_helm_missing_naming_the_binary():
    stopped = HelmError(TIMEOUT, "helm did not finish within 5s", command=["/opt/helm", "version"])
    error = validate.unanswered_version_probe(stopped, "/opt/helm", 5.0)
    assert (error.kind, error.details, error.command) == (HELM_MISSING, {"deadline_seconds": 5.0}, ["/opt/helm", "version"])
    assert error.msg.startswith("/opt/helm did not answer 'helm version' within 5s and was stopped")


def test_other_version_probe_failures_keep_their_kind():
    failed = HelmError(HELM_FAILED, "exit code 2")
    assert validate.unanswered_version_probe(failed, "/opt/helm", 5.0) is failed


def test_the_version_probe_has_a_short_deadline(make_client):
    client, fake = make_client(answers={"version": HelmError(TIMEOUT, "stopped")})
    with pytest.raises(HelmError) as caught:
        client.version  # noqa: B018
    assert caught.value.kind == HELM_MISSING and caught.value.msg.startswith("helm did not answer 'helm version'")
    assert fake.kwargs == [{"deadline": VERSION_DEADLINE}]
    assert VERSION_DEADLINE <= 5  # a task's `timeout: 20` must be left time to report it


def test_a_helm_that_never_answers_is_helm_missing_within_the_probe_deadline(tmp_path):
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\nexec sleep 3600\n")
    binary.chmod(0o755)
    client = HelmClient(run_process, str(binary))
    started = time.monotonic()
    with pytest.raises(HelmError) as caught:
        client.version  # noqa: B018
    elapsed = time.monotonic() - started
    assert caught.value.kind == HELM_MISSING and str(binary) in caught.value.msg
    assert VERSION_DEADLINE <= elapsed < VERSION_DEADLINE + 3
    assert client.process_count == 1
