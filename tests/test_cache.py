"""The result cache between runs: a file is analysed again only when it, a project file its analysis
read, convlint or the options changed; the cache is never beside the checked code."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict

import pytest

from conftest import ROOT
from convlint.app.cache import DIAGNOSTIC_FIELDS, ResultCache, stamp, valid_diagnostic
from convlint.diagnostics import Diagnostic
from convlint.limits import MAX_CACHE_ENTRY_BYTES

try:
    import resource
except ImportError:  # not POSIX: the tests that need it are skipped
    resource = None

BLOCK = '''import torch.nn as nn
from .helpers import conv3x3


class Block(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.conv1 = conv3x3(planes, planes)
        self.conv2 = conv3x3(planes, planes)

    def forward(self, x):
        return x + self.conv2(self.conv1(x))
'''
HELPERS = '''import torch.nn as nn


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding={padding}, bias=False)
'''


def _project(root: Path, padding: int) -> None:
    (root / "pkg").mkdir(exist_ok=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "model.py").write_text(BLOCK)
    (root / "pkg" / "helpers.py").write_text(HELPERS.format(padding=padding))


def _entries(cache: Path):
    return sorted(cache.rglob("*.json"))


def test_second_run_is_served_from_the_cache(convlint, tmp_path: Path):
    cache = tmp_path / "cache"
    env = {"CONVLINT_CACHE_DIR": str(cache)}
    _project(tmp_path, padding=0)
    first = convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env)
    assert first.returncode == 1 and "pkg/model.py:8:22: CVL101" in first.stdout.replace(os.sep, "/")
    entries = _entries(cache)
    assert len(entries) == 3  # one per checked file
    # the entry of model.py holds the finding; edit its message to see where the next run reads it from
    [entry] = [e for e in entries if json.loads(e.read_text())["diagnostics"]]
    data = json.loads(entry.read_text())
    data["diagnostics"][0]["message"] = "served from the cache"
    entry.write_text(json.dumps(data))
    second = convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env)
    assert "CVL101 served from the cache" in second.stdout
    uncached = convlint("check", "--no-confirm", "--no-cache", "pkg", cwd=tmp_path, env=env)
    assert uncached.stdout == first.stdout


def test_a_changed_imported_helper_invalidates_its_importers(convlint, tmp_path: Path):
    env = {"CONVLINT_CACHE_DIR": str(tmp_path / "cache")}
    _project(tmp_path, padding=1)
    assert convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env).stdout == ""
    helpers = tmp_path / "pkg" / "helpers.py"
    helpers.write_text(HELPERS.format(padding=0))
    os.utime(helpers, ns=(helpers.stat().st_atime_ns, helpers.stat().st_mtime_ns + 10**9))
    again = convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env)
    assert "pkg/model.py:8:22: CVL101" in again.stdout.replace(os.sep, "/")


def test_other_options_are_other_entries(convlint, tmp_path: Path):
    env = {"CONVLINT_CACHE_DIR": str(tmp_path / "cache")}
    _project(tmp_path, padding=0)
    assert convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env).returncode == 1
    ignored = convlint("check", "--no-confirm", "--ignore", "CVL101", "pkg", cwd=tmp_path, env=env)
    assert (ignored.returncode, ignored.stdout) == (0, "")


def test_no_cache_writes_nothing_and_a_broken_cache_is_only_slower(convlint, tmp_path: Path):
    cache = tmp_path / "cache"
    _project(tmp_path, padding=0)
    plain = convlint("check", "--no-confirm", "--no-cache", "pkg", cwd=tmp_path, env={"CONVLINT_CACHE_DIR": str(cache)})
    assert plain.returncode == 1 and not cache.exists()
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("")
    broken = convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env={"CONVLINT_CACHE_DIR": str(not_a_folder)})
    assert (broken.returncode, broken.stdout, broken.stderr) == (1, plain.stdout, plain.stderr)
    # nothing was written beside the checked code
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == ["__init__.py", "helpers.py", "model.py"]


def test_flake8_plugin_reads_the_cache_by_file_text(tmp_path: Path):
    cache = tmp_path / "cache"
    env = {**os.environ, "CONVLINT_CACHE_DIR": str(cache)}
    model = tmp_path / "model.py"
    model.write_text(BLOCK.replace("from .helpers import conv3x3\n", HELPERS.format(padding=0)))

    def flake8():
        return subprocess.run([sys.executable, "-m", "flake8", "--select", "CVL", str(model)], capture_output=True,
                              text=True, env=env, cwd=str(tmp_path), timeout=120).stdout
    first = flake8()
    assert ":13:22: CVL101 padding should be" in first
    [entry] = [e for e in _entries(cache) if json.loads(e.read_text())["diagnostics"]]
    data = json.loads(entry.read_text())
    for d in data["diagnostics"]:
        d["message"] = "served from the cache"
    entry.write_text(json.dumps(data))
    assert ":13:22: CVL101 served from the cache" in flake8()
    model.write_text(model.read_text() + "\n")  # other text: analysed again
    assert flake8() == first


# --- entries are untrusted input ------------------------------------------------------------------
# An entry is data anyone who can write the cache folder may have written: a bad one is a miss, the
# run's output is that of a clean run, and the run's own result replaces it.

SAMPLE = ROOT / "fixtures" / "sample" / "resnet_bugs.py"
RUN_TIMEOUT = 60  # seconds: a run the sample takes ~1 s for; a FIFO read without O_NONBLOCK never ends
RUN_MEMORY = 1 << 30  # bytes of address space: reading /dev/zero whole fails here instead of swapping
PLANTED_ARGUMENT = "__import__('os').system('echo pwned')#"


def _bounded_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (RUN_MEMORY, RUN_MEMORY))


def _run_bounded(cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    """``convlint check`` as the convlint fixture runs it, within a time and a memory limit (without
    torch: --no-confirm), printing each finding's program (--explain-confirm) to stderr."""
    return subprocess.run([sys.executable, "-m", "convlint", "check", "--no-confirm", "--explain-confirm",
                           "resnet_bugs.py"], capture_output=True, text=True, cwd=str(cwd),
                          env={**os.environ, "CONVLINT_CACHE_DIR": str(cache)}, timeout=RUN_TIMEOUT,
                          preexec_fn=_bounded_memory)


def _replace_with_garbage(entry: Path) -> None:
    entry.write_bytes(b"\x00\xff\xfe not json {[" * 100)


def _replace_with_wrong_types(entry: Path) -> None:
    entry.write_text(json.dumps({"stamp": "now", "deps": [], "diagnostics": {"path": 1}}))


def _replace_a_line_with_a_dict(entry: Path) -> None:
    """Right shape, right stamp (so it would be served), one field of the wrong type."""
    data = json.loads(entry.read_text())
    data["diagnostics"][0]["line"] = {"14": 14}
    entry.write_text(json.dumps(data))


def _replace_with_a_fifo(entry: Path) -> None:
    entry.unlink()
    os.mkfifo(entry)


def _replace_with_a_link_to_dev_zero(entry: Path) -> None:
    entry.unlink()
    entry.symlink_to("/dev/zero")


def _replace_with_a_folder(entry: Path) -> None:
    entry.unlink()
    (entry / "inner").mkdir(parents=True)
    (entry / "inner" / "file").write_text("x")


def _replace_the_shard_folder_with_a_file(entry: Path) -> None:
    shutil.rmtree(entry.parent)
    entry.parent.write_text("not a folder")


def _plant_repro(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Right stamp, right diagnostics: only the first reproducer changed, so an entry that is not
    checked would be served and its reproducer printed as a program."""
    def plant(entry: Path) -> None:
        data = json.loads(entry.read_text())
        [with_repro] = [d for d in data["diagnostics"] if d["repro"] and d["repro"]["op"] == "add"][:1]
        change(with_repro["repro"])
        entry.write_text(json.dumps(data))
    return plant


def _planted_argument(repro: dict) -> None:
    repro["branch"][0][1][PLANTED_ARGUMENT] = 1


def _planted_layer(repro: dict) -> None:
    repro["branch"][0][0] = "os.system"


ATTACKS: Dict[str, Callable[[Path], None]] = {
    "garbage bytes": _replace_with_garbage,
    "JSON of the wrong types": _replace_with_wrong_types,
    "a line that is a dict": _replace_a_line_with_a_dict,
    "a FIFO": _replace_with_a_fifo,
    "a symlink to /dev/zero": _replace_with_a_link_to_dev_zero,
    "a folder": _replace_with_a_folder,
    "a file for the shard folder": _replace_the_shard_folder_with_a_file,
    "a planted argument name": _plant_repro(_planted_argument),
    "a planted layer name": _plant_repro(_planted_layer),
}
PLANTED_TEXT = (PLANTED_ARGUMENT, "os.system", "pwned")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs, symlinks and rlimits are POSIX")
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_bad_entry_is_a_miss_and_is_replaced(tmp_path: Path, attack: str):
    shutil.copy(SAMPLE, tmp_path / "resnet_bugs.py")
    cache = tmp_path / "cache"
    clean = _run_bounded(tmp_path, cache)
    assert clean.returncode == 1 and clean.stdout.count("CVL") == 4 and clean.stderr.count("reproducer") == 4
    entries = _entries(cache)
    assert len(entries) == 1
    good = {entry: entry.read_bytes() for entry in entries}
    for entry in entries:
        ATTACKS[attack](entry)
    if attack.startswith("a planted"):
        assert any(text in entries[0].read_text() for text in PLANTED_TEXT)  # planted where it is read
    attacked = _run_bounded(tmp_path, cache)
    assert "Traceback" not in attacked.stderr
    assert (attacked.returncode, attacked.stdout, attacked.stderr) == (1, clean.stdout, clean.stderr)
    assert not any(text in attacked.stderr for text in PLANTED_TEXT)
    # the run wrote its own result in place of the bad entry, whatever sat at its name
    for entry, content in good.items():
        assert stat.S_ISREG(os.lstat(entry).st_mode)
        assert entry.read_bytes() == content
    assert _entries(cache) == entries


def _diagnostic(path: str, **changes: object) -> Diagnostic:
    fields = dict(path=path, line=14, column=22, end_line=14, end_column=31, code="CVL101", severity="error",
                  message="padding should be 1", fix={"line": 14, "column": 22, "end_line": 14, "end_column": 31,
                                                      "replacement": "padding=1"},
                  repro={"op": "build", "layer": ["Conv2d", {"in_channels": 4, "out_channels": 6, "groups": 4}]})
    fields.update(changes)
    return Diagnostic(**fields)


def test_the_diagnostic_checks_cover_exactly_the_dataclass_fields():
    assert set(DIAGNOSTIC_FIELDS) == {f.name for f in dataclasses.fields(Diagnostic)}


def _change(key: str, value: object) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        d[key] = value
    return change


def _change_fix(key: str, value: object) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        d["fix"][key] = value
    return change


def _drop(key: str) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        del d[key]
    return change


BAD_DIAGNOSTICS: Dict[str, Callable[[dict], None]] = {
    "path not a string": _change("path", 3),
    "line a string": _change("line", "14"),
    "line 0": _change("line", 0),
    "line a bool": _change("line", True),
    "column a float": _change("column", 22.0),
    "end_line negative": _change("end_line", -1),
    "end_column None": _change("end_column", None),
    "code not CVLnnn": _change("code", "E501"),
    "code with a tail": _change("code", "CVL101; rm -rf ~"),
    "code of Unicode digits": _change("code", "CVL\u0661\u0662\u0663"),
    "severity unknown": _change("severity", "fatal"),
    "message None": _change("message", None),
    "confirmed a string": _change("confirmed", "yes"),
    "evidence a number": _change("evidence", 1),
    "fix a string": _change("fix", "padding=1"),
    "fix without its replacement": lambda d: d["fix"].pop("replacement"),
    "fix with an extra key": _change_fix("run", "rm"),
    "fix replacement a number": _change_fix("replacement", 1),
    "fix line 0": _change_fix("line", 0),
    "repro a string": _change("repro", "import os"),
    "repro with a planted argument": lambda d: d["repro"]["layer"][1].update({PLANTED_ARGUMENT: 1}),
    "repro with a planted layer": lambda d: d["repro"]["layer"].__setitem__(0, "os.system"),
    "a field missing": _drop("evidence"),
    "an extra field": _change("extra", 1),
}


@pytest.mark.parametrize("name", sorted(BAD_DIAGNOSTICS))
def test_one_bad_field_makes_the_diagnostic_invalid(name: str):
    good = json.loads(json.dumps(dataclasses.asdict(_diagnostic("m.py"))))
    assert valid_diagnostic(good) is True
    BAD_DIAGNOSTICS[name](good)
    assert valid_diagnostic(good) is False


def test_valid_diagnostics_in_each_form_the_engine_writes():
    for changes in ({}, {"fix": None, "repro": None}, {"confirmed": True, "evidence": "torch says no"},
                    {"confirmed": False}, {"severity": "warning"}, {"severity": "info", "code": "CVL001"}):
        assert valid_diagnostic(json.loads(json.dumps(dataclasses.asdict(_diagnostic("m.py", **changes))))), changes


@pytest.fixture
def kept(tmp_path: Path):
    """A cache holding one diagnostic for model.py (stamped), and the entry's file."""
    model = tmp_path / "model.py"
    model.write_text("x = 1\n")
    helper = tmp_path / "helper.py"
    helper.write_text("y = 2\n")
    cache = ResultCache(str(tmp_path / "cache"), "run")
    found = [_diagnostic(str(model))]
    cache.put(str(model), stamp(str(model)), [str(helper)], found)
    [entry] = _entries(tmp_path / "cache")
    assert cache.get(str(model)) == found
    return cache, str(model), entry, found


BAD_ENTRIES: Dict[str, Callable[[dict], object]] = {
    "not an object": lambda e: [e],
    "null": lambda e: None,
    "stamp a string": lambda e: dict(e, stamp="now"),
    "stamp of two": lambda e: dict(e, stamp=e["stamp"][:2]),
    "stamp with a string": lambda e: dict(e, stamp=[*e["stamp"][:2], str(e["stamp"][2])]),
    "stamp with a bool": lambda e: dict(e, stamp=[*e["stamp"][:2], True]),
    "deps a list": lambda e: dict(e, deps=list(e["deps"])),
    "dep stamp a string": lambda e: dict(e, deps={k: "x" for k in e["deps"]}),
    "dep stamp of two": lambda e: dict(e, deps={k: [1, 2] for k in e["deps"]}),
    "diagnostics an object": lambda e: dict(e, diagnostics={}),
    "diagnostic a number": lambda e: dict(e, diagnostics=[1]),
    "a bad diagnostic": lambda e: dict(e, diagnostics=[dict(e["diagnostics"][0], line="14")]),
    "no deps": lambda e: {k: v for k, v in e.items() if k != "deps"},
    "an extra key": lambda e: dict(e, run="rm -rf ~"),
}


@pytest.mark.parametrize("name", sorted(BAD_ENTRIES))
def test_a_malformed_entry_is_a_miss_and_the_next_put_replaces_it(kept, name: str):
    cache, model, entry, found = kept
    good = json.loads(entry.read_text())
    assert cache.get(model) == found
    entry.write_text(json.dumps(BAD_ENTRIES[name](good)))
    assert cache.get(model) is None
    cache.put(model, stamp(model), [], found)
    assert cache.get(model) == found


BAD_BYTES: Dict[str, bytes] = {
    "empty": b"",
    "not UTF-8": b'{"stamp": "\xff"}',
    "cut short": b'{"stamp": [1, 2',
    "nested too deeply": b"[" * 100_000,
    "an int too long": b"1" * 5_000,
    "NaN": b"NaN",
}


@pytest.mark.parametrize("name", sorted(BAD_BYTES))
def test_bytes_that_are_no_entry_are_a_miss(kept, name: str):
    cache, model, entry, found = kept
    entry.write_bytes(BAD_BYTES[name])
    assert cache.get(model) is None


def test_the_size_cap_is_exact(kept):
    cache, model, entry, found = kept
    text = entry.read_bytes()
    entry.write_bytes(text + b" " * (MAX_CACHE_ENTRY_BYTES - len(text)))  # trailing whitespace: still JSON
    assert cache.get(model) == found
    entry.write_bytes(text + b" " * (MAX_CACHE_ENTRY_BYTES + 1 - len(text)))
    assert cache.get(model) is None


def test_an_entry_too_large_to_read_back_is_not_written(tmp_path: Path):
    model = tmp_path / "model.py"
    model.write_text("x = 1\n")
    cache = ResultCache(str(tmp_path / "cache"), "run")
    cache.put(str(model), stamp(str(model)), [], [_diagnostic(str(model), message="m" * MAX_CACHE_ENTRY_BYTES)])
    assert _entries(tmp_path / "cache") == []
    cache.put(str(model), stamp(str(model)), [], [_diagnostic(str(model))])
    assert len(_entries(tmp_path / "cache")) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and symlinks are POSIX")
def test_a_symlink_at_an_entry_is_never_followed_even_to_a_good_entry(kept, tmp_path: Path):
    cache, model, entry, found = kept
    elsewhere = tmp_path / "elsewhere.json"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    assert cache.get(model) is None
    cache.put(model, stamp(model), [], found)
    assert stat.S_ISREG(os.lstat(entry).st_mode) and cache.get(model) == found
    assert elsewhere.exists()  # the link was replaced, not what it points to


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_at_an_entry_is_a_miss_without_waiting(kept):
    cache, model, entry, found = kept
    entry.unlink()
    os.mkfifo(entry)
    started = time.monotonic()
    assert cache.get(model) is None
    assert time.monotonic() - started < 5
    cache.put(model, stamp(model), [], found)
    assert cache.get(model) == found


def test_a_folder_at_an_entry_is_removed_by_the_next_put(kept):
    cache, model, entry, found = kept
    entry.unlink()
    (entry / "a" / "b").mkdir(parents=True)
    (entry / "a" / "b" / "c.json").write_text("{}")
    assert cache.get(model) is None
    cache.put(model, stamp(model), [], found)
    assert entry.is_file() and cache.get(model) == found


def test_a_dependency_path_os_stat_refuses_is_no_error(kept):
    cache, model, entry, found = kept
    data = json.loads(entry.read_text())
    data["deps"] = {"a\0b": None, "\ud800": None}  # ValueError from os.stat for both
    entry.write_text(json.dumps(data))
    assert cache.get(model) == found  # both missing then, both missing now
    data["deps"] = {"a\0b": [1, 2, 3]}
    entry.write_text(json.dumps(data))
    assert cache.get(model) is None


def test_a_changed_dependency_is_a_miss(kept, tmp_path: Path):
    cache, model, entry, found = kept
    helper = tmp_path / "helper.py"
    helper.write_text("y = 3  # longer\n")
    assert cache.get(model) is None


def test_source_entries_are_checked_too(tmp_path: Path):
    cache = ResultCache(str(tmp_path / "cache"), "run")
    found = [_diagnostic("m.py")]
    cache.put_for_source("m.py", "x = 1\n", found)
    assert cache.get_for_source("m.py", "x = 1\n") == found
    [entry] = _entries(tmp_path / "cache")
    data = json.loads(entry.read_text())
    data["diagnostics"][0]["repro"]["layer"][0] = "os.system"
    entry.write_text(json.dumps(data))
    assert cache.get_for_source("m.py", "x = 1\n") is None
    entry.write_text(json.dumps(dict(data, stamp=[1, 2, 3])))  # a path entry's key in a source entry
    assert cache.get_for_source("m.py", "x = 1\n") is None


def test_a_cache_folder_that_is_a_file_is_left_alone(tmp_path: Path):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("mine")
    cache = ResultCache(str(not_a_folder), "run")
    cache.put_for_source("m.py", "x = 1\n", [_diagnostic("m.py")])
    assert cache.get_for_source("m.py", "x = 1\n") is None
    assert not_a_folder.read_text() == "mine"


def test_every_entry_convlint_writes_for_the_fixtures_is_read_back(convlint, tmp_path: Path):
    """What convlint writes passes its own checks: else its entries would be misses on every run and its
    findings would print no program."""
    env = {"CONVLINT_CACHE_DIR": str(tmp_path / "cache")}
    first = convlint("check", "--no-confirm", "--explain-confirm", str(ROOT / "fixtures"), env=env)
    entries = _entries(tmp_path / "cache")
    diagnostics = [d for entry in entries for d in json.loads(entry.read_text())["diagnostics"]]
    assert len(entries) >= 100 and [d for d in diagnostics if not valid_diagnostic(d)] == []
    with_repro = [d for d in diagnostics if d["repro"] is not None]
    assert len(with_repro) >= 50
    assert first.stderr.count(" reproducer\nimport torch\nfrom torch import nn\n") == len(with_repro)
    written = {entry: os.lstat(entry).st_ino for entry in entries}
    second = convlint("check", "--no-confirm", "--explain-confirm", str(ROOT / "fixtures"), env=env)
    assert (second.returncode, second.stdout, second.stderr) == (first.returncode, first.stdout, first.stderr)
    assert {entry: os.lstat(entry).st_ino for entry in entries} == written  # served, none written again
