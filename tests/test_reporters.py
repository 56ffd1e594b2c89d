"""The output formats on hostile file names: a newline, bytes that are not UTF-8, ``%``, ``,``, ``:``,
spaces. The escaping helpers with exact strings, then each format through the real command line."""
from __future__ import annotations

import io
import json
import ntpath
import os
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List

import pytest

from conftest import ROOT
from convlint.app import reporters
from convlint.app.reporters import (SRCROOT, escape_for_display, escape_undecodable, file_uri, github_data,
                                    github_property, repository_root, sarif_uri)
from convlint.diagnostics import Diagnostic

SAMPLE = ROOT / "fixtures" / "sample" / "resnet_bugs.py"  # 4 findings, the first at 14:22
SCHEMA = ROOT.parent / "shared" / "data" / "sarif-schema-2.1.0.json"
FINDINGS_PER_FILE = 4
# the hostile names (as bytes, the file system's own form) and how each format writes them
NEWLINE, UNDECODABLE, PERCENT, COMMA_COLON, SPACE = (b"new\nline.py", b"bad\xffname.py", b"pct%.py", b"a,b:c.py",
                                                      b"with space.py")
TEXT_PATHS = {NEWLINE: "./new\\nline.py", UNDECODABLE: "./bad\\xffname.py", PERCENT: "./pct%.py",
              COMMA_COLON: "./a,b:c.py", SPACE: "./with space.py"}
GITHUB_FILES = {NEWLINE: "./new%0Aline.py", UNDECODABLE: "./bad\\xffname.py", PERCENT: "./pct%25.py",
                COMMA_COLON: "./a%2Cb%3Ac.py", SPACE: "./with space.py"}
JSON_PATHS = {NEWLINE: "./new\nline.py", UNDECODABLE: "./bad\\xffname.py", PERCENT: "./pct%.py",
              COMMA_COLON: "./a,b:c.py", SPACE: "./with space.py"}
SARIF_URIS = {NEWLINE: "new%0Aline.py", UNDECODABLE: "bad%FFname.py", PERCENT: "pct%25.py",
              COMMA_COLON: "a%2Cb%3Ac.py", SPACE: "with%20space.py"}
TEXT_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<code>CVL\d{3}) (?P<message>.+)$")
GITHUB_LINE = re.compile(r"^::(error|warning|notice) file=(?P<file>[^,]*),line=\d+,col=\d+,endLine=\d+,"
                         r"endColumn=\d+,title=CVL\d{3}::(?P<message>.*)$")
# the checked-out tree, whatever copy of convlint is installed (the children run outside ROOT)
THIS_TREE = {"PYTHONPATH": str(ROOT)}

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file names and paths")


def _diagnostic(path: str = "m.py", message: str = "padding should be 1") -> Diagnostic:
    return Diagnostic(path, 3, 5, 3, 9, "CVL101", "error", message)


# --- the escaping helpers -----------------------------------------------------------------------------

def test_display_escaping_of_controls_and_undecodable_bytes():
    assert escape_for_display("new\nline.py") == "new\\nline.py"
    assert escape_for_display("a\rb\tc") == "a\\rb\\tc"
    assert escape_for_display("esc\x1b[31mred\x7f\x00") == "esc\\x1b[31mred\\x7f\\x00"
    assert escape_for_display(os.fsdecode(b"bad\xffname\x80.py")) == "bad\\xffname\\x80.py"
    # a C1 control is a character, not a byte: \u0085, never confused with the undecodable byte \x85
    assert escape_for_display("nel\x85.py") == "nel\\u0085.py"
    assert escape_for_display("ls\u2028ps\u2029.py") == "ls\\u2028ps\\u2029.py"
    assert escape_for_display("evil\u202etxt.py") == "evil\\u202etxt.py"
    assert escape_for_display("lone\ud800.py") == "lone\\ud800.py"


def test_display_escaping_keeps_ordinary_paths():
    for ordinary in ["src/model.py", "src\\model.py", "C:\\work\\net.py", "modèle.py", "模型/网络.py",
                     "with space, comma:colon%.py", "zwnj\u200cname.py"]:
        assert escape_for_display(ordinary) == ordinary


def test_undecodable_escaping_keeps_control_characters():
    assert escape_undecodable(os.fsdecode(b"bad\xff\nname.py")) == "bad\\xff\nname.py"
    assert escape_undecodable("lone\udfff") == "lone\\udfff"
    assert escape_undecodable("modèle\t.py") == "modèle\t.py"


def test_github_escaping():
    assert github_data("100% a\r\nb: c, d") == "100%25 a%0D%0Ab: c, d"
    assert github_property("100% a\r\nb: c, d") == "100%25 a%0D%0Ab%3A c%2C d"
    assert github_property("%0A") == "%250A"  # a name that looks escaped stays itself


@posix_only
def test_file_uri_on_posix():
    assert file_uri("/") == "file:///"
    assert file_uri("/", folder=True) == "file:///"
    assert file_uri("/a b/c%", folder=True) == "file:///a%20b/c%25/"
    assert file_uri(os.fsdecode(b"/x/bad\xffname.py")) == "file:///x/bad%FFname.py"
    assert file_uri("/x/a,b:c\\d.py") == "file:///x/a%2Cb%3Ac%5Cd.py"  # a POSIX backslash is part of a name
    assert file_uri("/x/modèle.py") == "file:///x/mod%C3%A8le.py"


def test_file_uri_and_sarif_uri_on_windows(monkeypatch):
    """Windows paths, read with ntpath: drive letters, UNC shares, backslashes, case-blind roots."""
    monkeypatch.setattr(os, "path", ntpath)
    monkeypatch.setattr(os, "sep", "\\")
    monkeypatch.setattr(os, "altsep", "/")
    file_c, share, root_c = file_uri("C:\\Users\\me\\a b.py"), file_uri("\\\\srv\\share\\x\\y.py"), \
        file_uri("C:\\", folder=True)
    inside, other_drive = sarif_uri("C:\\repo\\src\\m.py", "c:\\repo"), sarif_uri("D:\\m.py", "C:\\repo")
    sibling = sarif_uri("C:\\repo2\\m.py", "C:\\repo")
    monkeypatch.undo()
    assert (file_c, share, root_c) == ("file:///C:/Users/me/a%20b.py", "file://srv/share/x/y.py", "file:///C:/")
    assert inside == ("src/m.py", SRCROOT)
    assert other_drive == ("file:///D:/m.py", None)
    assert sibling == ("file:///C:/repo2/m.py", None)


@posix_only
def test_sarif_uri_is_relative_to_the_root_without_dot_dot(tmp_path: Path, monkeypatch):
    root = os.path.realpath(tmp_path / "repo")
    os.makedirs(os.path.join(root, "sub"))
    monkeypatch.chdir(os.path.join(root, "sub"))
    assert sarif_uri("inner.py", root) == ("sub/inner.py", SRCROOT)
    assert sarif_uri("../sub/./inner.py", root) == ("sub/inner.py", SRCROOT)
    assert sarif_uri(os.path.join(root, "top.py"), root) == ("top.py", SRCROOT)
    assert sarif_uri(os.fsdecode(b"bad\xffname.py"), root) == ("sub/bad%FFname.py", SRCROOT)
    outside = os.path.join(os.path.dirname(root), "out side.py")
    assert sarif_uri("../../out side.py", root) == (Path(outside).as_uri(), None)
    # a sibling whose name starts with the root's name is outside it
    assert sarif_uri("../../repo2/m.py", root) == (Path(os.path.dirname(root), "repo2", "m.py").as_uri(), None)


def test_repository_root_is_the_nearest_folder_with_git(tmp_path: Path):
    deep = tmp_path / "repo" / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()
    assert repository_root(str(deep)) == str(tmp_path / "repo")
    assert repository_root(str(tmp_path / "repo")) == str(tmp_path / "repo")
    (tmp_path / "repo" / "a" / ".git").write_text("gitdir: ../.git/worktrees/a\n")  # a worktree's file
    assert repository_root(str(deep)) == str(tmp_path / "repo" / "a")


def test_repository_root_without_git_is_the_start(tmp_path: Path):
    if any((folder / ".git").exists() for folder in tmp_path.parents):
        pytest.skip("the temporary folder is inside a git repository")
    assert repository_root(str(tmp_path / "x")) == str(tmp_path / "x")


# --- the reporters on messages (convlint's own text, which may quote a path or an OS error) -----------

def test_text_keeps_one_line_per_diagnostic_whatever_the_message():
    out = io.StringIO()
    reporters.text([_diagnostic("a\nb.py", "cannot read: x\r\ny"), _diagnostic()], out, {})
    assert out.getvalue() == ("a\\nb.py:3:5: CVL101 cannot read: x\\r\\ny\n"
                              "m.py:3:5: CVL101 padding should be 1\n")


def test_github_message_is_escaped_as_data():
    out = io.StringIO()
    reporters.github([_diagnostic(os.fsdecode(b"d,ir:/\xfe%.py"), "50% of\nit")], out, {})
    assert out.getvalue() == ("::error file=d%2Cir%3A/\\xfe%25.py,line=3,col=5,endLine=3,endColumn=9,"
                              "title=CVL101::50%25 of%0Ait\n")


def test_json_and_sarif_write_no_lone_surrogate_anywhere():
    hostile = _diagnostic(os.fsdecode(b"bad\xffname.py"), os.fsdecode(b"cannot read '\xfe'"))
    hostile.evidence = "lone \udc99"
    for reporter in (reporters.json_format, reporters.sarif):
        out = io.StringIO()
        reporter([hostile], out, {})
        assert "\\ud" not in out.getvalue().lower()
        json.dumps(json.loads(out.getvalue()), ensure_ascii=False).encode("utf-8")
    out = io.StringIO()
    reporters.json_format([hostile], out, {})
    item = json.loads(out.getvalue())[0]
    assert (item["path"], item["message"], item["evidence"]) == ("bad\\xffname.py", "cannot read '\\xfe'",
                                                                 "lone \\x99")
    assert hostile.path == os.fsdecode(b"bad\xffname.py")  # the reporter changed a copy


# --- each format through the real command line ----------------------------------------------------------

@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    """A repository (``.git``, so that it is the SARIF root) of the sample under each hostile name."""
    root = Path(os.path.realpath(tmp_path))
    (root / ".git").mkdir()
    for name in TEXT_PATHS:
        shutil.copyfile(SAMPLE, os.fsencode(str(root)) + b"/" + name)
    return root


def _check(convlint, fmt: str, cwd: Path, *paths: str):
    proc = convlint("check", "--no-confirm", "--format", fmt, *paths, cwd=cwd, env=THIS_TREE)
    assert proc.returncode == 1, proc.stderr
    return proc


@posix_only
def test_text_format_on_hostile_names(convlint, hostile_tree: Path):
    lines = _check(convlint, "text", hostile_tree, ".").stdout.splitlines()
    assert len(lines) == FINDINGS_PER_FILE * len(TEXT_PATHS)
    parsed = [TEXT_LINE.match(line) for line in lines]
    assert all(parsed), lines
    for shown in TEXT_PATHS.values():
        assert any(line.startswith(f"{shown}:14:22: CVL101 padding should be") for line in lines), shown
    assert sorted({m.group("file") for m in parsed if m}) == sorted(TEXT_PATHS.values())


@posix_only
def test_github_format_on_hostile_names(convlint, hostile_tree: Path):
    lines = _check(convlint, "github", hostile_tree, ".").stdout.splitlines()
    assert len(lines) == FINDINGS_PER_FILE * len(TEXT_PATHS)
    assert all(line.startswith("::error file=") for line in lines), lines
    files = [GITHUB_LINE.match(line).group("file") for line in lines]
    assert sorted(set(files)) == sorted(GITHUB_FILES.values())
    for escaped in GITHUB_FILES.values():
        assert files.count(escaped) == FINDINGS_PER_FILE
        first = f"::error file={escaped},line=14,col=22,endLine=14,endColumn=95,title=CVL101::padding"
        assert any(line.startswith(first) for line in lines), escaped
    # GitHub undoes its escaping: each name but the undecodable one comes back as the file's own name
    unescaped = {f.replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n").replace("%25", "%") for f in files}
    assert unescaped == {"./" + os.fsdecode(n) for n in TEXT_PATHS if n != UNDECODABLE} | {"./bad\\xffname.py"}


@posix_only
def test_json_format_on_hostile_names(convlint, hostile_tree: Path):
    stdout = _check(convlint, "json", hostile_tree, ".").stdout
    items = json.loads(stdout)
    assert len(items) == FINDINGS_PER_FILE * len(TEXT_PATHS)
    json.dumps(items, ensure_ascii=False).encode("utf-8")  # strict UTF-8: no lone surrogate
    assert sorted({item["path"] for item in items}) == sorted(JSON_PATHS.values())
    assert all(set(item) == {"path", "line", "column", "end_line", "end_column", "code", "severity", "message",
                             "confirmed", "evidence", "fix"} for item in items)


def _sarif_locations(log: Dict[str, Any]) -> List[Dict[str, str]]:
    run = log["runs"][0]
    return [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]


@posix_only
def test_sarif_format_on_hostile_names(convlint, hostile_tree: Path):
    stdout = _check(convlint, "sarif", hostile_tree, ".").stdout
    log = json.loads(stdout)
    json.dumps(log, ensure_ascii=False).encode("utf-8")
    locations = _sarif_locations(log)
    assert len(locations) == FINDINGS_PER_FILE * len(TEXT_PATHS)
    assert sorted({loc["uri"] for loc in locations}) == sorted(SARIF_URIS.values())
    assert all(loc["uriBaseId"] == SRCROOT for loc in locations)
    assert log["runs"][0]["originalUriBaseIds"] == {SRCROOT: {"uri": hostile_tree.as_uri() + "/"}}
    if SCHEMA.exists():
        jsonschema = pytest.importorskip("jsonschema")
        jsonschema.validate(log, json.loads(SCHEMA.read_text()))


@posix_only
def test_sarif_root_is_found_upward_and_outside_files_are_absolute(convlint, tmp_path: Path):
    base = Path(os.path.realpath(tmp_path))
    sub = base / "repo" / "sub"
    sub.mkdir(parents=True)
    (base / "repo" / ".git").write_text("gitdir: /elsewhere\n")  # a submodule's or worktree's .git file
    shutil.copyfile(SAMPLE, sub / "inner.py")
    shutil.copyfile(SAMPLE, base / "out side.py")
    log = json.loads(_check(convlint, "sarif", sub, "inner.py", "../sub/inner.py", "../../out side.py").stdout)
    assert log["runs"][0]["originalUriBaseIds"] == {SRCROOT: {"uri": (base / "repo").as_uri() + "/"}}
    locations = _sarif_locations(log)
    assert {json.dumps(loc, sort_keys=True) for loc in locations} == {
        json.dumps({"uri": "sub/inner.py", "uriBaseId": SRCROOT}, sort_keys=True),
        json.dumps({"uri": (base / "out side.py").as_uri()}, sort_keys=True)}
