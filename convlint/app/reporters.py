"""Output formats. A reporter knows diagnostics, never a rule; rule metadata comes as plain data.

Every format is safe for any file name, whatever bytes it holds:

- ``text``: a path's (and a message's) control characters and undecodable bytes are shown escaped
  (``escape_for_display``), so that one diagnostic is always exactly one line.
- ``github``: undecodable bytes as ``\\xNN`` (``escape_undecodable``), then GitHub's own escaping of
  workflow commands (``github_data`` for the message, ``github_property`` for ``file`` and ``title``),
  which GitHub undoes: a name with a newline, ``%``, ``:`` or ``,`` still names its file.
- ``json``: no lone surrogate is ever written (``escape_undecodable``): a byte of a file name that is
  not valid UTF-8, which Python holds as a lone surrogate (``os.fsdecode``, ``surrogateescape``), is
  written as the four characters ``\\xNN`` (so ``b"bad\\xffname.py"`` is ``"bad\\\\xffname.py"`` in the
  JSON text). Other characters, control characters included, are kept: JSON escapes those itself.
- ``sarif``: ``artifactLocation.uri`` is a percent-encoded (RFC 3986) URI reference relative to the
  repository root (``uriBaseId`` ``%SRCROOT%``, whose ``file:`` URI the run's ``originalUriBaseIds``
  gives), or an absolute ``file:`` URI for a file outside the root (``sarif_uri``); undecodable bytes
  are percent-encoded as the bytes of the name.
"""
from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Optional, Sequence, TextIO, Tuple
from urllib.parse import quote

from .. import __version__
from ..diagnostics import Diagnostic

# The code points a line of text must not show as they are: C0 controls, DEL and C1 controls (a
# terminal acts on them: ESC, CSI), lone surrogates (undecodable bytes, or text that is no Unicode),
# the line and paragraph separators (str.splitlines and some editors break lines there), and the
# bidirectional controls (they reorder what a reader sees: the "Trojan Source" display attack).
_DISPLAY_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028\u2029"
                             r"\u202a-\u202e\u2066-\u2069]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# os.fsdecode decodes a byte 0x80-0xFF that is not valid UTF-8 as the lone surrogate U+DC80-U+DCFF
_UNDECODABLE_BYTES = range(0xDC80, 0xDD00)


def _escape_code_point(match: re.Match[str]) -> str:
    """The escape of one unsafe character: ``\\n``, ``\\r``, ``\\t``; ``\\xNN`` for a C0 control or DEL
    (NN < 80) or for an undecodable byte (NN >= 80); ``\\uNNNN`` for anything else (so a C1 control
    U+0085 is ``\\u0085``, never confused with the undecodable byte ``\\x85``)."""
    char = match.group()
    code_point = ord(char)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if code_point < 0x80:
        return f"\\x{code_point:02x}"
    if code_point in _UNDECODABLE_BYTES:
        return f"\\x{code_point - 0xDC00:02x}"
    return f"\\u{code_point:04x}"


def escape_for_display(text: str) -> str:
    """``text`` with its control characters, undecodable bytes, line separators and bidirectional
    controls escaped as Python writes them (``\\n``, ``\\t``, ``\\x1b``, ``\\xff``, ``\\u2028``); any
    other text is returned unchanged. A backslash stays as it is: it separates folders on Windows,
    and escaping it would change ordinary paths, so the escaped form is for reading, not for parsing
    back (a POSIX file named ``a\\nb.py`` with a real backslash shows as a newline's escape would)."""
    return _DISPLAY_UNSAFE.sub(_escape_code_point, text)


def escape_undecodable(text: str) -> str:
    """``text`` with each lone surrogate escaped (``\\xNN`` for an undecodable byte, else ``\\uNNNN``),
    so that it encodes as strict UTF-8; everything else, control characters included, unchanged."""
    return _LONE_SURROGATE.sub(_escape_code_point, text)


def github_data(text: str) -> str:
    """A workflow command's message as GitHub reads it back: ``%``, CR and LF percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A workflow command's property value (``file=``, ``title=``): the message's escaping plus ``:``
    and ``,``, which would otherwise end the value."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def repository_root(start: str) -> str:
    """The nearest folder at or above ``start`` (absolute) that holds ``.git`` (a folder, or the file
    of a worktree or submodule), else ``start`` itself."""
    folder = start
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return start
        folder = parent


def _quoted_segments(segments: Sequence[str]) -> str:
    """Path segments percent-encoded from the bytes of each name (an undecodable byte is encoded as
    itself) and joined by ``/``: only RFC 3986's unreserved characters stay as they are, so a ``:``
    in a first segment cannot pass for a scheme, nor a ``%`` for an escape."""
    return "/".join(quote(os.fsencode(segment), safe="") for segment in segments)


def _segments(path: str) -> List[str]:
    """The names of a path, split at the platform's separators (``\\`` and ``/`` on Windows; on POSIX
    a backslash is part of a name)."""
    separators = [os.sep] + ([os.altsep] if os.altsep else [])
    return [s for s in re.split("|".join(re.escape(sep) for sep in separators), path) if s]


def file_uri(absolute_path: str, folder: bool = False) -> str:
    """The ``file:`` URI of an absolute path: ``file:///abs/path``, ``file:///C:/...`` for a Windows
    drive, ``file://host/share/...`` for a UNC path; ``folder`` adds the trailing ``/`` that a base URI
    needs."""
    drive, rest = os.path.splitdrive(absolute_path)
    authority, names = "", _segments(rest)
    if drive[:2] in ("\\\\", "//"):  # a UNC share: its host is the URI's authority
        host, *share = _segments(drive)
        authority, names, drive = quote(os.fsencode(host), safe=""), share + names, ""
    # a drive ("C:") keeps its colon, as Windows file URIs write it; POSIX has none
    path = ("/" + drive if drive else "") + "/" + _quoted_segments(names)
    return "file://" + authority + path + ("/" if folder and not path.endswith("/") else "")


SRCROOT = "%SRCROOT%"


def sarif_uri(path: str, root: str) -> Tuple[str, Optional[str]]:
    """``artifactLocation``'s ``uri`` and ``uriBaseId`` for ``path`` (as given: relative to the working
    folder, or absolute): relative to the repository ``root`` (absolute) with no ``..`` segment, or,
    outside it, an absolute ``file:`` URI with no base."""
    absolute = os.path.abspath(path)
    try:  # normcase: Windows compares paths without case
        common = os.path.commonpath([absolute, root])
        inside = absolute != root and os.path.normcase(common) == os.path.normcase(root)
    except ValueError:  # on another drive of Windows
        inside = False
    if not inside:
        return file_uri(absolute), None
    return _quoted_segments(_segments(os.path.relpath(absolute, root))), SRCROOT


def _strict_utf8(value: object) -> object:
    """A copy of JSON data with every string (keys too) passed through ``escape_undecodable``."""
    if isinstance(value, str):
        return escape_undecodable(value)
    if isinstance(value, dict):
        return {_strict_utf8(key): _strict_utf8(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_utf8(item) for item in value]
    return value


def text(diags: Sequence[Diagnostic], out: TextIO, rules: Dict[str, Dict[str, str]]) -> None:
    """One ``path:line:column: CODE message`` line per diagnostic, path and message display-escaped."""
    for d in diags:
        mark = " [confirmed]" if d.confirmed else ""
        out.write(f"{escape_for_display(d.path)}:{d.line}:{d.column}: {d.code} "
                  f"{escape_for_display(d.message)}{mark}\n")


def json_format(diags: Sequence[Diagnostic], out: TextIO, rules: Dict[str, Dict[str, str]]) -> None:
    """One JSON array of ``Diagnostic.to_json`` objects, with no lone surrogate in any string."""
    json.dump(_strict_utf8([d.to_json() for d in diags]), out, indent=2)
    out.write("\n")


def github(diags: Sequence[Diagnostic], out: TextIO, rules: Dict[str, Dict[str, str]]) -> None:
    """One GitHub Actions workflow command (``::error file=...::message``) per diagnostic."""
    level = {"error": "error", "warning": "warning", "info": "notice"}
    for d in diags:
        message = github_data(escape_undecodable(d.message))
        path = github_property(escape_undecodable(d.path))
        out.write(f"::{level.get(d.severity, 'error')} file={path},line={d.line},col={d.column},"
                  f"endLine={d.end_line},endColumn={d.end_column},title={github_property(d.code)}::{message}\n")


def sarif(diags: Sequence[Diagnostic], out: TextIO, rules: Dict[str, Dict[str, str]]) -> None:
    """A SARIF 2.1.0 log of one run, its locations relative to the repository root of the working folder."""
    codes = sorted(rules)
    level = {"error": "error", "warning": "warning", "info": "note"}
    root = repository_root(os.getcwd())
    results: List[Dict[str, object]] = []
    for d in diags:
        uri, base = sarif_uri(d.path, root)
        artifact: Dict[str, str] = {"uri": uri}
        if base is not None:
            artifact["uriBaseId"] = base
        results.append({
            "ruleId": d.code,
            "ruleIndex": codes.index(d.code) if d.code in codes else 0,
            "level": level.get(d.severity, "error"),
            "message": {"text": d.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": artifact,
                "region": {"startLine": d.line, "startColumn": d.column,
                           "endLine": d.end_line, "endColumn": d.end_column},
            }}],
            "properties": {"confirmed": d.confirmed, "evidence": d.evidence},
        })
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "convlint", "version": __version__, "informationUri": "https://pypi.org/project/convlint/",
                "rules": [{"id": c, "name": rules[c]["name"], "shortDescription": {"text": rules[c]["summary"]},
                           "fullDescription": {"text": rules[c]["summary"]},
                           "help": {"text": rules[c]["doc"], "markdown": rules[c]["doc"]},
                           "defaultConfiguration": {"level": level.get(rules[c]["severity"], "error")}}
                          for c in codes],
            }},
            "originalUriBaseIds": {SRCROOT: {"uri": file_uri(root, folder=True)}},
            "results": results,
        }],
    }
    json.dump(_strict_utf8(log), out, indent=2)
    out.write("\n")


REPORTERS = {"text": text, "json": json_format, "github": github, "sarif": sarif}
