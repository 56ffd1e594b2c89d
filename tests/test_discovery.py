"""File discovery (convlint/app/discovery.py): which files ``convlint check FOLDER`` reads.

``.gitignore`` files as git reads them (each expectation of the table is what ``git ls-files --others
--exclude-standard`` lists for the same tree), ``[tool.convlint] exclude``, the tool folders skipped,
and the folders that cannot be listed: reported, one line each, exit 2, the rest of the run going on.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from conftest import ROOT
from convlint.app import discovery
from convlint.app.discovery import discover

BUG = (ROOT / "fixtures" / "sample" / "resnet_bugs.py").read_text()  # four findings: exit 1 when checked


def make_tree(root: Path, texts: Dict[str, str], python_files: Sequence[str]) -> None:
    """``texts``: files with their text (``.gitignore`` files...); ``python_files``: files holding BUG."""
    for relative, text in [*texts.items(), *((name, BUG) for name in python_files)]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def found_files(root: Path, exclude: Sequence[str] = ()) -> List[str]:
    found = discover([str(root)], exclude)
    assert (found.missing, found.problems) == ([], [])
    return [os.path.relpath(path, root).replace(os.sep, "/") for path in found.files]


def checked(stdout: str) -> List[str]:
    """The files the report names, in order, each once."""
    paths: List[str] = []
    for line in stdout.splitlines():
        path = line.split(":", 1)[0]
        if path not in paths:
            paths.append(path)
    return paths


def outside_any_repository(path: Path) -> bool:
    return not any((folder / ".git").exists() for folder in [path, *path.parents])


# (what the test shows, the .gitignore files, the Python files, what git lists of them)
GITIGNORE_CASES = [
    ("ignore all but folders and .py files", {".gitignore": "*\n!*/\n!*.py\n"},
     ["a.py", "sub/b.py", "sub/deeper/d.py"], ["a.py", "sub/b.py", "sub/deeper/d.py"]),
    ("ignore all but folders", {".gitignore": "*\n!*/\n"}, ["a.py", "sub/b.py"], []),
    ("no file re-included in an ignored folder", {".gitignore": "out/\n!out/keep.py\n"},
     ["out/keep.py", "x.py"], ["x.py"]),
    ("re-included when the folder's contents, not the folder, are ignored", {".gitignore": "gen/*\n!gen/keep.py\n"},
     ["gen/keep.py", "gen/other.py"], ["gen/keep.py"]),
    ("leading **", {".gitignore": "**/gen_*.py\n"},
     ["gen_a.py", "a/gen_b.py", "a/b/gen_c.py", "a/keep.py"], ["a/keep.py"]),
    ("middle **", {".gitignore": "a/**/b.py\n"},
     ["a/b.py", "a/x/b.py", "a/x/y/b.py", "b.py", "c/a/b.py"], ["b.py", "c/a/b.py"]),
    ("trailing ** ignores what is inside, folders too", {".gitignore": "vendor/**\n!vendor/**/*.py\n"},
     ["vendor/v.py", "vendor/lib/w.py", "x.py"], ["vendor/v.py", "x.py"]),
    ("two **", {".gitignore": "**/generated/**\n!**/generated/**/keep.py\na/**/b/**/c.py\n"},
     ["generated/x.py", "generated/keep.py", "src/generated/sub/keep.py", "src/generated/y.py", "generated_not/z.py",
      "src/other/z.py", "a/b/c/d.py", "a/x/b/y/c.py", "a/b/c.py"],
     ["a/b/c/d.py", "generated/keep.py", "generated_not/z.py", "src/other/z.py"]),
    ("folder-only patterns", {".gitignore": "legacy/\nold.py/\n"},
     ["legacy/a.py", "x/legacy/b.py", "legacy.py", "old.py/c.py", "y/old.py"], ["legacy.py", "y/old.py"]),
    ("anchored patterns", {".gitignore": "/top.py\nsub/x.py\n"},
     ["top.py", "a/top.py", "sub/x.py", "a/sub/x.py"], ["a/sub/x.py", "a/top.py"]),
    ("ignore the top level but one folder", {".gitignore": "/*\n!/src/\n"},
     ["a.py", "src/b.py", "src/c/d.py", "other/e.py"], ["src/b.py", "src/c/d.py"]),
    ("a folder re-included below does not re-include its files", {".gitignore": "*.py\n", "sub/.gitignore": "!*/\n"},
     ["sub/x/y.py", "sub/z.py"], []),
    ("a deeper .gitignore decides first", {".gitignore": "*_bad.py\n", "sub/.gitignore": "!keep_bad.py\n"},
     ["keep_bad.py", "sub/keep_bad.py", "sub/other_bad.py"], ["sub/keep_bad.py"]),
    ("a nested .gitignore applies in its folder, relative to it", {"sub/.gitignore": "gen_*.py\n/local.py\n"},
     ["gen_a.py", "sub/gen_b.py", "sub/deeper/gen_c.py", "local.py", "sub/local.py", "sub/deeper/local.py"],
     ["gen_a.py", "local.py", "sub/deeper/local.py"]),
    ("escapes, comments, trailing spaces", {".gitignore": "\\#hash.py\n# comment.py\nspace.py   \n"},
     ["#hash.py", "comment.py", "space.py"], ["comment.py"]),
    ("a byte order mark, CRLF line ends, a line pathspec refuses", {".gitignore": "\ufeffa.py\r\n!\r\nb.py\r\n"},
     ["a.py", "b.py", "c.py"], ["c.py"]),
]


@pytest.mark.parametrize("texts, python_files, expected",
                         [pytest.param(t, p, e, id=name) for name, t, p, e in GITIGNORE_CASES])
def test_gitignore_as_git_reads_it(tmp_path: Path, texts: Dict[str, str], python_files: List[str],
                                   expected: List[str]) -> None:
    make_tree(tmp_path, texts, python_files)
    assert sorted(found_files(tmp_path)) == expected  # (git sorts its list; the walk's order is tested below)


def test_negation_through_the_command_line(convlint, tmp_path: Path) -> None:
    """The three lines that once made convlint check nothing and exit 0."""
    make_tree(tmp_path, {".gitignore": "*\n!*/\n!*.py\n", "notes.txt": "a bug? no\n"}, ["pkg/resnet_bugs.py"])
    proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (1, "")
    assert checked(proc.stdout) == ["./pkg/resnet_bugs.py"]
    assert len(proc.stdout.splitlines()) == 4
    (tmp_path / ".gitignore").write_text("*\n!*/\n")  # without `!*.py`: nothing is checked
    proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_nested_gitignore_through_the_command_line(convlint, tmp_path: Path) -> None:
    make_tree(tmp_path, {"models/.gitignore": "gen_*.py\n", ".gitignore": "**/scratch_*.py\n"},
              ["gen_top.py", "models/gen_net.py", "models/net.py", "models/deep/gen_more.py", "models/scratch_1.py",
               "scratch_2.py"])
    proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
    assert proc.returncode == 1
    assert checked(proc.stdout) == ["./gen_top.py", "./models/net.py"]


def test_exclude_from_pyproject(convlint, tmp_path: Path) -> None:
    """gitignore-style patterns relative to the checked folder, a `!` line included."""
    make_tree(tmp_path, {"pyproject.toml": '[tool.convlint]\nexclude = ["vendor/", "*_pb2.py", "!keep_pb2.py", '
                                           '"/top_only.py"]\n'},
              ["vendor/lib.py", "pkg/vendor/lib.py", "msg_pb2.py", "pkg/keep_pb2.py", "top_only.py",
               "pkg/top_only.py", "pkg/model.py"])
    proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (1, "")
    assert checked(proc.stdout) == ["./pkg/keep_pb2.py", "./pkg/model.py", "./pkg/top_only.py"]
    # relative to the folder checked: `/top_only.py` is now pkg/top_only.py
    proc = convlint("check", "--no-confirm", "pkg", cwd=tmp_path)
    assert checked(proc.stdout) == ["pkg/keep_pb2.py", "pkg/model.py"]


def test_exclude_as_an_argument(tmp_path: Path) -> None:
    make_tree(tmp_path, {}, ["build_gen/a.py", "src/build_gen/b.py", "src/c.py", "src/d_pb2.py"])
    assert found_files(tmp_path, ["build_gen/", "*_pb2.py"]) == ["src/c.py"]
    assert found_files(tmp_path, []) == ["build_gen/a.py", "src/c.py", "src/d_pb2.py", "src/build_gen/b.py"]


def test_gitignore_files_above_the_checked_folder_up_to_the_repository_root(convlint, tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    (repository / ".git").mkdir(parents=True)
    make_tree(tmp_path, {".gitignore": "*.py\n",  # above the repository: never read
                         "repository/.gitignore": "scratch_*.py\n/src/generated.py\n",
                         "repository/src/.gitignore": "local_*.py\n"},
              ["repository/src/model.py", "repository/src/scratch_1.py", "repository/src/generated.py",
               "repository/src/pkg/generated.py", "repository/src/local_x.py"])
    proc = convlint("check", "--no-confirm", ".", cwd=repository / "src")
    assert (proc.returncode, proc.stderr) == (1, "")
    assert checked(proc.stdout) == ["./model.py", "./pkg/generated.py"]


def test_without_a_repository_only_the_checked_folder_s_gitignore_files(tmp_path: Path) -> None:
    if not outside_any_repository(tmp_path):
        pytest.skip("the temporary folder is inside a git repository")
    make_tree(tmp_path, {".gitignore": "scratch_*.py\n", "src/.gitignore": "local_*.py\n"},
              ["src/model.py", "src/scratch_1.py", "src/local_x.py"])
    assert found_files(tmp_path / "src") == ["model.py", "scratch_1.py"]


def test_a_nested_repository_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "vendored" / ".git").mkdir(parents=True)
    make_tree(tmp_path, {".gitignore": "*_old.py\n", "vendored/.gitignore": "local.py\n"},
              ["a_old.py", "vendored/b_old.py", "vendored/local.py", "vendored/c.py"])
    assert found_files(tmp_path) == ["vendored/b_old.py", "vendored/c.py"]


def test_a_linked_gitignore_is_not_followed_as_git_does_not(tmp_path: Path) -> None:
    make_tree(tmp_path, {"elsewhere/patterns": "*.py\n"}, ["src/model.py"])
    (tmp_path / "src" / ".gitignore").symlink_to(tmp_path / "elsewhere" / "patterns")
    (tmp_path / "src" / "sub").mkdir()
    (tmp_path / "src" / "sub" / ".gitignore").mkdir()  # a folder named .gitignore: not read either
    assert found_files(tmp_path / "src") == ["model.py"]


def test_tool_folders_venvs_and_folder_links_are_skipped_in_sorted_order(tmp_path: Path) -> None:
    make_tree(tmp_path, {"env/pyvenv.cfg": "home = /usr\n"},
              ["z.py", "b/m.py", "a/m.py", "a/__pycache__/m.py", "node_modules/m.py", "build/m.py", "env/m.py",
               "a/sub/m.py", "a.py", "notes.txt.py"])
    (tmp_path / "a" / "loop").symlink_to(tmp_path)  # a link to a folder above: listed, never entered
    (tmp_path / "link.py").symlink_to(tmp_path / "z.py")  # a link to a file is a file
    assert found_files(tmp_path) == ["a.py", "link.py", "notes.txt.py", "z.py", "a/m.py", "a/sub/m.py", "b/m.py"]


def test_a_named_file_is_checked_even_if_ignored(convlint, tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "*.py\n", "pyproject.toml": '[tool.convlint]\nexclude = ["*.py"]\n'},
              ["model.py"])
    assert convlint("check", "--no-confirm", ".", cwd=tmp_path).returncode == 0
    proc = convlint("check", "--no-confirm", "model.py", cwd=tmp_path)
    assert (proc.returncode, checked(proc.stdout)) == (1, ["model.py"])


def test_lines_pathspec_cannot_read_match_nothing_and_print_nothing(convlint, tmp_path: Path) -> None:
    """A lone `!` and a trailing backslash (git matches nothing with either), a `[[` (on which re
    warns): no crash, no stray stderr line."""
    make_tree(tmp_path, {".gitignore": "!\nb.py\\\n[[]x.py\nscratch_*.py\n"},
              ["a.py", "b.py", "[x.py", "scratch_1.py"])
    proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (1, "")
    assert checked(proc.stdout) == ["./a.py", "./b.py"]


def test_an_ignore_file_at_git_s_size_limit_is_not_read_and_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(discovery, "MAX_IGNORE_FILE_BYTES", 16)  # (git's is 100 MiB)
    make_tree(tmp_path, {"small/.gitignore": "a.py\n" + "#" * 10, "large/.gitignore": "a.py\n" + "#" * 11},
              ["small/a.py", "large/a.py"])
    found = discover([str(tmp_path)], [])
    assert found.files == [str(tmp_path / "large" / "a.py")]
    assert found.problems == [(str(tmp_path / "large" / ".gitignore"), "not read: 0 MiB or more (git skips it too)")]


def test_an_unreadable_gitignore_is_reported(convlint, tmp_path: Path) -> None:
    make_tree(tmp_path, {"sub/.gitignore": "*.py\n"}, ["sub/model.py"])
    ignore_file = tmp_path / "sub" / ".gitignore"
    ignore_file.chmod(0)
    try:
        try:
            ignore_file.read_bytes()
        except PermissionError:
            pass
        else:
            pytest.skip("permissions do not stop this user (root) from reading a file")
        proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == ["convlint: ./sub/.gitignore: cannot read: Permission denied"]
        assert checked(proc.stdout) == ["./sub/model.py"]
    finally:
        ignore_file.chmod(0o644)


def test_missing_paths(tmp_path: Path) -> None:
    make_tree(tmp_path, {}, ["a.py"])
    found = discover([str(tmp_path / "nothing"), str(tmp_path / "a.py" / "below"), str(tmp_path)], [])
    assert found.missing == [str(tmp_path / "nothing"), str(tmp_path / "a.py" / "below")]
    assert (found.files, found.problems) == ([str(tmp_path / "a.py")], [])


def _too_deep_to_list(root: Path, levels: int = 24) -> List[str]:
    """Folders nested until their path is longer than the system allows (ENAMETOOLONG): made one level
    at a time through file descriptors, so each call's path stays short. A bug file in the first and
    in the last. Returns the folder names, top first."""
    names = [f"{level:02d}" + "d" * 200 for level in range(levels)]
    folder = os.open(root, os.O_RDONLY)
    try:
        for level, name in enumerate(names):
            os.mkdir(name, dir_fd=folder)
            inner = os.open(name, os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = inner
            if level in (0, levels - 1):
                bug = os.open("bug.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder)
                os.write(bug, BUG.encode())
                os.close(bug)
    finally:
        os.close(folder)
    return names


def _first_unlistable(top: str, names: List[str]) -> str:
    limit = os.pathconf(top, "PC_PATH_MAX")  # bytes, the final NUL included
    for depth in range(1, len(names) + 1):
        path = os.path.join(top, *names[:depth])
        if len(os.fsencode(path)) + 1 > limit:
            return path
    raise AssertionError("not deep enough")


@pytest.mark.skipif(not hasattr(os, "pathconf"), reason="PC_PATH_MAX is POSIX")
def test_a_folder_that_cannot_be_listed_is_reported(convlint, tmp_path: Path) -> None:
    names = _too_deep_to_list(tmp_path)
    make_tree(tmp_path, {}, ["top.py"])
    try:
        unlistable = _first_unlistable(".", names)
        proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [f"convlint: {unlistable}: cannot list folder: File name too long"]
        # the run went on: the files before the unlistable folder were checked
        assert checked(proc.stdout) == [os.path.join(".", names[0], "bug.py"), "./top.py"]

        found = discover([str(tmp_path)], [])
        absolute = _first_unlistable(str(tmp_path), names)
        assert found.problems == [(absolute, "cannot list folder: File name too long")]
        assert found.files == [str(tmp_path / "top.py"), str(tmp_path / names[0] / "bug.py")]
        assert found.missing == []
    finally:
        shutil.rmtree(tmp_path / names[0])  # (rmtree works through file descriptors: any depth)


@pytest.mark.skipif(not hasattr(os, "pathconf"), reason="PC_PATH_MAX is POSIX")
def test_a_checked_path_too_long_to_reach_is_reported(convlint, tmp_path: Path) -> None:
    names = _too_deep_to_list(tmp_path)
    try:
        too_long = os.path.join(".", *names)
        proc = convlint("check", "--no-confirm", too_long, cwd=tmp_path)
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr.splitlines() == [f"convlint: {too_long}: cannot access: File name too long"]
    finally:
        shutil.rmtree(tmp_path / names[0])


def test_a_folder_without_read_permission_is_reported(convlint, tmp_path: Path) -> None:
    make_tree(tmp_path, {}, ["locked/model.py", "open/model.py"])
    locked = tmp_path / "locked"
    locked.chmod(0)
    try:
        try:
            os.listdir(locked)
        except PermissionError:
            pass
        else:
            pytest.skip("permissions do not stop this user (root) from listing a folder")
        proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == ["convlint: ./locked: cannot list folder: Permission denied"]
        assert checked(proc.stdout) == ["./open/model.py"]
        proc = convlint("check", "--no-confirm", "locked", cwd=tmp_path)  # the top folder itself
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr.splitlines() == ["convlint: locked: cannot list folder: Permission denied"]
    finally:
        locked.chmod(0o755)
