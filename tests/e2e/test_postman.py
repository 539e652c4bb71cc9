"""docs/postman/salesd.postman_collection.json runs green.

The collection is run by newman (pinned in tests/package.json; `make
test-tools` installs it) against a fresh salesd with the default
modules and no API keys, as `make run` starts it, with the very command
the README's "Postman" section shows: only the URL and the report's
path are changed.  Any failed assertion fails the test (newman's exit
status and its JSON report).  The collection itself must keep the seed's
three requests by name, cover every route of docs/openapi.yaml, and
give each request tests and a saved example that the spec describes.
"""
import configparser
import json
import os
import re
import shlex
import subprocess

import jsonschema
import yaml

from conftest import ROOT

COLLECTION = os.path.join(ROOT, "docs", "postman",
                          "salesd.postman_collection.json")
README = os.path.join(ROOT, "README.md")
SEED = ["Add New Order", "Get Analytics", "Get AI Recommendations"]


def readme_command():
    """The newman command of the README's Postman section, as argv."""
    text = open(README).read()
    section = re.search(r"^## Postman\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no \"## Postman\" section"
    blocks = re.findall(r"```sh\n(.*?)```", section.group(1), re.S)
    cmds = [b for b in blocks if "newman run" in b]
    assert len(cmds) == 1, cmds
    return shlex.split(cmds[0].replace("\\\n", " "))


def requests(items):
    """The requests of the collection, folders flattened, in run order."""
    for it in items:
        if "item" in it:
            yield from requests(it["item"])
        else:
            yield it


def deref(spec, node):
    """Follows a local $ref ("#/components/...") to what it names."""
    while isinstance(node, dict) and "$ref" in node:
        ref, node = node["$ref"], spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def example_matches_spec(spec, method, path, ex, name):
    """A saved example is an answer docs/openapi.yaml describes (a method
    the path lacks: the 405 its description promises): a documented
    status, the headers it requires, valid values for those it documents,
    a documented media type and a body its schema takes (none where it
    documents none, as for a 304)."""
    item = spec["paths"][path]
    if method.lower() not in item:
        assert ex["code"] == 405, name
        allow = {h["key"]: h["value"] for h in ex["header"]}["Allow"]
        assert sorted(allow.split(", ")) == sorted(
            m.upper() for m in item if m in ("get", "head", "post",
                                             "options")), name
        resp = {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
    else:
        resp = item[method.lower()]["responses"].get(str(ex["code"]))
    assert resp is not None, "%s: status %d not in the spec" % (name,
                                                                ex["code"])
    resp = deref(spec, resp)
    headers = {h["key"].lower(): h["value"] for h in ex["header"]}
    for hname, h in resp.get("headers", {}).items():
        h = deref(spec, h)
        v = headers.get(hname.lower())
        assert v is not None or not h.get("required"), \
            "%s: no %s header" % (name, hname)
        if v is not None:
            jsonschema.Draft202012Validator(h["schema"]).validate(v)
    ctype = headers.get("content-type")
    content = resp.get("content")
    if content is None or method == "HEAD":
        assert not ex.get("body") and ctype is None, \
            "%s: a body where the spec has none" % name
        return
    media = [m for m in content if m.lower() == (ctype or "").lower()]
    assert media, "%s: Content-Type %r, documented %s" % (
        name, ctype, list(content))
    body = ex["body"]
    if media[0] == "application/json":
        body = json.loads(body)
    jsonschema.Draft202012Validator(
        content[media[0]]["schema"],
        resolver=jsonschema.RefResolver.from_schema(spec)).validate(body)


def test_collection_shape():
    coll = json.load(open(COLLECTION))
    assert coll["info"]["schema"] == \
        "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    assert [it["name"] for it in coll["item"][:3]] == SEED
    var = {v["key"]: v["value"] for v in coll["variable"]}
    assert var["baseUrl"] == "http://localhost:3000"
    for t in ("readToken", "writeToken", "opsToken"):
        assert var[t] == "", t
    spec = yaml.safe_load(open(os.path.join(ROOT, "docs", "openapi.yaml")))
    want = {(m.upper(), p) for p, item in spec["paths"].items()
            for m in item if m in ("get", "post")
            and item[m].get("tags") != ["websocket"]}
    have = set()
    for it in requests(coll["item"]):
        r = it["request"]
        assert r["url"]["raw"].startswith("{{baseUrl}}/"), it["name"]
        path = "/" + "/".join("{id}" if s == "{{orderId}}" or s.isdigit()
                              else s for s in r["url"]["path"])
        have.add((r["method"], path))
        assert it["response"], "%s: no saved example" % it["name"]
        for ex in it["response"]:
            example_matches_spec(spec, r["method"], path, ex, it["name"])
        tests = [e for e in it["event"] if e["listen"] == "test"]
        assert tests and any("pm.test(" in l for l in tests[0]["script"]
                             ["exec"]), "%s: no tests" % it["name"]
    assert want <= have, "routes without a request: %s" % (want - have)


def test_newman_runs_green(make_server, tmp_path):
    argv = readme_command()
    assert argv[:2] == ["tests/node_modules/.bin/newman", "run"], argv
    newman = os.path.join(ROOT, argv[0])
    assert os.access(newman, os.X_OK), \
        "no %s: run `make test-tools` (npm ci in tests/)" % newman
    ini = configparser.ConfigParser(interpolation=None,
                                    inline_comment_prefixes=(";",))
    ini.read(os.path.join(ROOT, "sales.ini"))
    srv = make_server(ini["modules"]["load"].split())
    report = str(tmp_path / "newman.json")
    url = "http://localhost:%d" % srv.port
    i = argv.index("--env-var")
    assert argv[i + 1] == "baseUrl=http://localhost:3000", argv
    argv[i + 1] = "baseUrl=" + url
    i = argv.index("--reporter-json-export")
    argv[i + 1] = report
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=300)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    run = json.load(open(report))["run"]
    failures = [(f["source"]["name"], f["error"]["message"])
                for f in run["failures"]]
    assert p.returncode == 0 and not failures, (failures, out)
    stats = run["stats"]
    assert stats["assertions"]["failed"] == 0, out
    assert stats["requests"]["failed"] == 0, out
    names = {a["assertion"] for e in run["executions"]
             for a in e.get("assertions", [])}
    # A fresh database: the seed's figures were checked exactly.
    assert "on an empty database: exactly the seed figures" in names, names
    assert stats["assertions"]["total"] >= 40, stats
