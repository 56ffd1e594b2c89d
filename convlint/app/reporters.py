"""Output formats. A reporter knows diagnostics, never a rule; rule metadata comes as plain data."""
from __future__ import annotations

import json
from typing import Dict, List, Sequence, TextIO

from .. import __version__
from ..diagnostics import Diagnostic


def text(diags: Sequence[Diagnostic], out: TextIO, rules: Dict[str, Dict[str, str]]) -> None:
    for d in diags:
        mark = " [confirmed]" if d.confirmed else ""
        out.write(f"{d.path}:{d.line}:{d.column}: {d.code} {d.message}{mark}\n")


def json_format(diags: Sequence[Diagnostic], out: TextIO, rules: Dict[str, Dict[str, str]]) -> None:
    json.dump([d.to_json() for d in diags], out, indent=2)
    out.write("\n")


def github(diags: Sequence[Diagnostic], out: TextIO, rules: Dict[str, Dict[str, str]]) -> None:
    level = {"error": "error", "warning": "warning", "info": "notice"}
    for d in diags:
        message = d.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        path = d.path.replace("%", "%25").replace(",", "%2C").replace(":", "%3A")
        out.write(f"::{level.get(d.severity, 'error')} file={path},line={d.line},col={d.column},"
                  f"endLine={d.end_line},endColumn={d.end_column},title={d.code}::{message}\n")


def sarif(diags: Sequence[Diagnostic], out: TextIO, rules: Dict[str, Dict[str, str]]) -> None:
    codes = sorted(rules)
    level = {"error": "error", "warning": "warning", "info": "note"}
    results: List[Dict[str, object]] = []
    for d in diags:
        results.append({
            "ruleId": d.code,
            "ruleIndex": codes.index(d.code) if d.code in codes else 0,
            "level": level.get(d.severity, "error"),
            "message": {"text": d.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": d.path.replace("\\", "/")},
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
            "results": results,
        }],
    }
    json.dump(log, out, indent=2)
    out.write("\n")


REPORTERS = {"text": text, "json": json_format, "github": github, "sarif": sarif}
