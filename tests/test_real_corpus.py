"""Released model code runs, so convlint must report no error on it.

The corpus (timm, torchvision's models, monai's networks, segmentation_models_pytorch) is gathered by
`../shared/tools/real-corpus.sh DIR`; point `CONVLINT_CORPUS` at DIR. CI gathers it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from convlint.app.cli import run_files
from convlint.app.discovery import discover
from convlint.app.engine import CheckRequest

CORPUS = os.environ.get("CONVLINT_CORPUS", "/tmp/convlint-corpus")


@pytest.mark.skipif(not Path(CORPUS, "CORPUS_MANIFEST.txt").exists(), reason="real corpus not gathered")
def test_no_error_on_released_model_code() -> None:
    files = discover([CORPUS], []).files
    assert len(files) > 500
    # as where timm and torchvision are installed too (their helpers known through convlint's models)
    released = str(Path(__file__).resolve().parent / "environments" / "released")
    for request in (CheckRequest(), CheckRequest(python=released)):
        diagnostics = run_files(files, request, jobs=0)
        errors = [f"{d.path}:{d.line}:{d.column}: {d.code} {d.message}" for d in diagnostics if d.severity == "error"]
        assert errors == [], request.python
