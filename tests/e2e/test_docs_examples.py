"""Every code example of docs/MODULES.md (and every C block of the
README) is built or run here, so none can rot:

- a C block is built as a module would be (-Wall -Wextra -Werror
  -fvisibility=hidden -shared -Wl,-z,defs) against include/: as it
  stands when it has its own #include, else after the #includes and the
  core and self of the page's first C block, as docs/MODULES.md says;
- an SQL block runs against a database made by the shipped migrations;
- an INI block must parse;
- any other block is a marked one (`<!-- file: -->`, `<!-- example: -->`)
  that tests/e2e/test_hello_example.py checks."""
import configparser
import glob
import os
import re
import sqlite3
import subprocess

import pytest

from conftest import ROOT

MODULES_MD = os.path.join(ROOT, "docs", "MODULES.md")
README = os.path.join(ROOT, "README.md")
CFLAGS = ["-Wall", "-Wextra", "-Werror", "-fPIC", "-fvisibility=hidden",
          # An example may show a helper that the page never calls.
          "-Wno-unused-function"]


def blocks(path):
    """[(line, lang, marked, text)] of the page's fenced blocks."""
    with open(path) as f:
        lines = f.read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^```(\w*)$", lines[i])
        if not m:
            i += 1
            continue
        start = i
        i += 1
        while lines[i] != "```":
            i += 1
        marked = start > 0 and re.match(r"^<!-- (file|example): \S+ -->$",
                                        lines[start - 1]) is not None
        out.append((start + 1, m.group(1), marked,
                    "\n".join(lines[start + 1:i]) + "\n"))
        i += 1
    return out


def c_blocks(path):
    """The C blocks built here as modules.  A test program on the kit
    (`<!-- file: ...test_*.c -->`) is not a module: test_hello_example
    builds and runs its file, which the block must equal."""
    return [(ln, text) for ln, lang, marked, text in blocks(path)
            if lang == "c" and not (marked and "\nmain(" in text)]


def prelude(first):
    """The #includes and the core and self of the page's first block,
    marked unused: a later block need not use both."""
    keep = []
    for line in first.splitlines():
        if line.startswith("#include"):
            keep.append(line)
        elif re.match(r"^static .*\*(core|self);$", line):
            keep.append(line[:-1] + " __attribute__((unused));")
    assert len(keep) >= 3, first
    return "\n".join(keep) + "\n"


def build(tmp_path, name, source):
    src = tmp_path / (name + ".c")
    src.write_text(source)
    cc = os.environ.get("CC", "cc")
    p = subprocess.run([cc] + CFLAGS + ["-I", os.path.join(ROOT, "include"),
                       "-shared", "-Wl,-z,defs", "-o",
                       str(tmp_path / (name + ".so")), str(src)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "%s:\n%s\n%s" % (name, p.stderr, source)


def cases():
    out = []
    for path in (MODULES_MD, README):
        cb = c_blocks(path)
        for n, (ln, text) in enumerate(cb):
            out.append(pytest.param(path, n, id="%s:%d" % (
                os.path.basename(path), ln)))
    return out


@pytest.mark.parametrize("path,n", cases())
def test_c_block_builds(tmp_path, path, n):
    cb = c_blocks(path)
    ln, text = cb[n]
    if "#include" not in text:
        text = prelude(cb[0][1]) + "\n" + text
    build(tmp_path, "%s_%d" % (os.path.basename(path).split(".")[0], ln),
          text)


def test_modules_md_has_its_examples():
    # The page's C examples: the symbols, reload, storage and the bus.
    assert len(c_blocks(MODULES_MD)) >= 4
    assert "#include" in c_blocks(MODULES_MD)[0][1]


def test_sql_blocks_run(tmp_path):
    db = sqlite3.connect(str(tmp_path / "sales.db"))
    for f in sorted(glob.glob(os.path.join(ROOT, "sql", "*", "*.sql"))):
        with open(f) as sql:
            db.executescript(sql.read())
    db.execute("INSERT INTO orders(product_id, quantity, price, "
               "price_micros, received_at) VALUES ('a', 2, 25.5, 25500000,"
               " 10)")
    n = 0
    for ln, lang, _, text in blocks(MODULES_MD):
        if lang != "sql":
            continue
        for stmt in [s for s in text.split(";") if s.strip()]:
            params = (0,) * len(set(re.findall(r"\?\d+", stmt)))
            try:
                rows = db.execute(stmt, params).fetchall()
            except sqlite3.Error as e:
                raise AssertionError("line %d: %s: %s" % (ln, e, stmt))
            assert rows, (ln, stmt)
            n += 1
    assert n >= 2


def test_every_block_is_checked():
    for ln, lang, marked, text in blocks(MODULES_MD):
        if lang == "ini":
            configparser.ConfigParser(inline_comment_prefixes=(";",),
                                      strict=True).read_string(text)
        else:
            assert lang in ("c", "sql") or marked, (
                "docs/MODULES.md line %d: a ```%s block that no test runs"
                % (ln, lang))
