"""``convlint check|rule`` — the command line of ../CONTRACT.md."""
from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from dataclasses import replace
from typing import Iterator, List, Optional, Sequence

from .. import __version__
from .. import config as config_mod
from ..confirm.program import program
from ..confirm.runner import DEFAULT_TIMEOUT, Confirmer, torch_available
from ..diagnostics import Diagnostic
from ..limits import MAX_STDIN
from ..rules import ALL_RULES, RULES
from .cache import ResultCache, default_directory, stamp
from .discovery import discover
from ..interpreter.loader import installed_modules
from .engine import (
    INTERNAL_ERROR, CheckRequest, Selection, check_bytes, check_path, environment_of, library_fingerprint,
)
from .project import Project
from .reporters import REPORTERS, escape_for_display

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
PARALLEL_THRESHOLD = 16  # files per worker at least: starting a process costs more than checking fewer
MAX_JOBS = 256           # worker processes at most (-j)
MAX_CONFIRM_TIMEOUT = 3600.0  # seconds (--confirm-timeout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convlint", description="Find shape bugs in PyTorch conv nets.")
    parser.add_argument("--version", action="version", version=f"convlint {__version__}")
    sub = parser.add_subparsers(dest="command")
    check = sub.add_parser("check", help="check files or folders")
    check.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    check.add_argument("--format", choices=sorted(REPORTERS), default="text")
    check.add_argument("--select", default=None, help="comma-separated codes or prefixes")
    check.add_argument("--ignore", default=None, help="comma-separated codes or prefixes")
    check.add_argument("--no-confirm", action="store_true", help="skip the torch confirmation step")
    check.add_argument("--stdin-filename", default=None, help="the path to report for source read from stdin")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when diagnostics are found")
    check.add_argument("-j", "--jobs", type=_jobs, default=0,
                       help=f"worker processes, at most {MAX_JOBS} (default: all cores; never more than the files)")
    check.add_argument("--config", default=None, help="a pyproject.toml to read [tool.convlint] from")
    check.add_argument("--python", default=None, metavar="PATH",
                       help="the interpreter (or environment folder) of the checked project, whose installed "
                            "libraries' versions convlint reads (default: its own, then $VIRTUAL_ENV)")
    check.add_argument("--keep-unconfirmed", action="store_true",
                       help="show findings torch did not reproduce, as warnings (they are dropped by default)")
    check.add_argument("--explain-confirm", action="store_true",
                       help="print each finding's torch reproducer (a program to paste and run) to stderr")
    check.add_argument("--debug", action="store_true",
                       help="print the traceback of an internal error (a convlint bug) to stderr")
    check.add_argument("--no-cache", action="store_true",
                       help="analyse every file again (the cache is in $CONVLINT_CACHE_DIR or ~/.cache/convlint)")
    check.add_argument("--confirm-timeout", type=_timeout, default=None, metavar="SECONDS",
                       help=f"time limit of the torch confirmation (default {DEFAULT_TIMEOUT:g})")
    rule = sub.add_parser("rule", help="print a rule's documentation")
    rule.add_argument("code", nargs="?")
    rule.add_argument("--all", action="store_true", help="print every rule's documentation")
    return parser


def _jobs(text: str) -> int:
    """``-j N``: 0 (all cores) to ``MAX_JOBS``."""
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= jobs <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be 0 (all cores) to {MAX_JOBS}, got {text}")
    return jobs


def _timeout(text: str) -> float:
    """``--confirm-timeout S``: a number of seconds above 0, at most ``MAX_CONFIRM_TIMEOUT``."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < seconds <= MAX_CONFIRM_TIMEOUT:  # (also false for nan)
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {MAX_CONFIRM_TIMEOUT:g} seconds, got {text}")
    return seconds


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; every failure is one line on stderr and exit 2 (a traceback only with --debug)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("convlint: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug of convlint's own: one line, the traceback with --debug
        if os.environ.get("CONVLINT_DEBUG"):
            traceback.print_exc()
        print(f"convlint: internal error: {type(exc).__name__}: {exc} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _main(argv: Optional[Sequence[str]]) -> int:
    if sys.stdout is None:  # started with stdout closed (`convlint check >&-`): nowhere to report
        print("convlint: cannot write the report: standard output is closed", file=sys.stderr)
        return EXIT_ERROR
    for stream in (sys.stdout, sys.stderr):
        try:  # a file name that is not valid UTF-8 must not crash the report
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]  # (a TextIOWrapper)
        except (AttributeError, ValueError):
            pass
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_CLEAN if exc.code == 0 else EXIT_ERROR
    if args.command == "rule":
        return cmd_rule(args)
    if args.command == "check":
        try:
            return cmd_check(args)
        except (config_mod.ConfigError, RunFailure) as exc:
            print(f"convlint: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except BrokenPipeError:  # `convlint check . | head`: the reader has what it wanted
            _silence_stdout()
            return EXIT_FOUND
        except ReportNotWritten as exc:
            _silence_stdout()
            print(f"convlint: cannot write the report: {exc}", file=sys.stderr)
            return EXIT_ERROR
    parser.print_help(sys.stderr)
    return EXIT_ERROR


def cmd_rule(args: argparse.Namespace) -> int:
    if args.all:
        print("\n".join(rule.documentation() for rule in ALL_RULES))
        return EXIT_CLEAN
    code = (args.code or "").upper()
    if code not in RULES:
        print(f"convlint: unknown rule code: {args.code} (known: {', '.join(RULES)})", file=sys.stderr)
        return EXIT_ERROR
    print(RULES[code].documentation())
    return EXIT_CLEAN


def _codes(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    return [c.strip().upper() for c in text.split(",") if c.strip()]


def cmd_check(args: argparse.Namespace) -> int:
    if args.debug:
        os.environ["CONVLINT_DEBUG"] = "1"  # read where internal errors are caught, workers included
    config = _config(args)
    confirming = not args.no_confirm and config.confirm
    without_torch = confirming and not torch_available()
    confirmer = Confirmer(None if args.no_cache or os.environ.get("CONVLINT_NO_CACHE") else
                          os.path.join(default_directory(), "verdicts")) if confirming and not without_torch else None
    # reproducers only for what torch will confirm or --explain-confirm will print
    request = _request(args, config, reproduce=confirmer is not None or args.explain_confirm)
    if args.paths == ["-"]:
        diagnostics = check_bytes(_stdin(), args.stdin_filename or "-", request)
        failed = False
    else:
        if "-" in args.paths:
            print("convlint: '-' (stdin) cannot be mixed with other paths", file=sys.stderr)
            return EXIT_ERROR
        found = discover(args.paths, config.exclude)
        for path in found.missing:
            print(f"convlint: {escape_for_display(path)}: no such file or directory", file=sys.stderr)
        for path, reason in found.problems:  # a folder not listed may hide files: the run goes on, exit 2
            print(f"convlint: {escape_for_display(path)}: {reason}", file=sys.stderr)
        failed = bool(found.missing or found.problems)
        diagnostics = _check_files(found.files, request, args, config, confirmer)
    diagnostics.sort(key=Diagnostic.sort_key)
    if without_torch and any(d.severity == "error" and d.code != "CVL001" for d in diagnostics):
        print("convlint: torch is not installed; findings are not confirmed (pip install 'convlint[torch]')",
              file=sys.stderr)
    if confirmer is not None:
        diagnostics = run_confirmation(diagnostics, args, confirmer)
    if args.explain_confirm:
        for d in diagnostics:
            text = program(d.repro) if d.repro is not None else None
            if text is not None:  # (None: a reproducer that is not the whitelisted plain data)
                print(f"# {d.path}:{d.line}:{d.column}: {d.code} reproducer\n{text}", file=sys.stderr)
    _report(diagnostics, args.format)
    if failed or any(d.code == "CVL001" and d.message.startswith(INTERNAL_ERROR) for d in diagnostics):
        return EXIT_ERROR
    if diagnostics and not args.exit_zero:
        return EXIT_FOUND
    return EXIT_CLEAN


def _stdin() -> bytes:
    """The source on stdin, read up to one byte past the size limit (the check then says it is too
    large): ``convlint check - < /dev/zero`` ends."""
    try:
        return sys.stdin.buffer.read(MAX_STDIN + 1)
    except (OSError, AttributeError, ValueError) as exc:  # (no stdin, or a closed one)
        raise RunFailure(f"cannot read standard input: {exc}") from None


def _config(args: argparse.Namespace) -> config_mod.Config:
    """``--config``, else the nearest pyproject.toml above the checked source (or the folder run in)."""
    config_path = args.config or config_mod.find_pyproject(
        os.path.dirname(os.path.abspath(args.stdin_filename)) if args.stdin_filename else os.getcwd())
    if args.config and not os.path.exists(args.config):
        raise config_mod.ConfigError(f"{args.config}: no such file")
    return config_mod.load(config_path, list(RULES))


def _request(args: argparse.Namespace, config: config_mod.Config, reproduce: bool) -> CheckRequest:
    """What is reported (``--select``/``--ignore`` over the config's) and the models' input size."""
    select = _codes(args.select) or config.select
    ignore = (_codes(args.ignore) or []) + config.ignore
    for code in select + ignore:
        config_mod.check_code(code, list(RULES), "--select/--ignore")
    return CheckRequest(Selection(tuple(select), tuple(ignore)),
                        tuple(config.input_size) if config.input_size else None, reproduce=reproduce,
                        python=args.python or config.python)


def _check_files(files: List[str], request: CheckRequest, args: argparse.Namespace, config: config_mod.Config,
                 confirmer: Optional[Confirmer]) -> List[Diagnostic]:
    """Every file's diagnostics; the torch child starts at the first finding it may confirm, so that
    its import overlaps the rest of the run."""
    cache = None if args.no_cache or os.environ.get("CONVLINT_NO_CACHE") else ResultCache.for_run(
        [request.selection, config.input_size, request.reproduce, library_fingerprint(request.python)],
        [os.path.abspath(f) for f in files] if len(files) > 1 else [])
    diagnostics: List[Diagnostic] = []
    for found in iter_files(files, request, args.jobs, cache):
        diagnostics.extend(found)
        if confirmer is not None and any(d.repro is not None for d in found):
            confirmer.start()
    return diagnostics


class RunFailure(Exception):
    """The run cannot go on (its input cannot be read): one line, exit 2."""


class ReportNotWritten(Exception):
    """The report could not be written whole (a full disk, a closed or failing output)."""


def _report(diagnostics: List[Diagnostic], format: str) -> None:
    rules_meta = {r.code: {"name": r.name, "summary": r.summary, "doc": r.documentation(),
                           "severity": r.severity} for r in ALL_RULES}
    try:
        REPORTERS[format](diagnostics, sys.stdout, rules_meta)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: the stream was closed
        raise ReportNotWritten(exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) from None


def _silence_stdout() -> None:
    """What is left in stdout's buffer goes nowhere (Python's own flush at exit would fail again)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_confirmation(diagnostics: List[Diagnostic], args: argparse.Namespace,
                     confirmer: Confirmer) -> List[Diagnostic]:
    """Confirm error findings with torch; drop (or, asked, demote) those torch does not reproduce."""
    for note in confirmer.finish(diagnostics, args.confirm_timeout or DEFAULT_TIMEOUT):
        print(note, file=sys.stderr)
    if args.debug:
        print(f"convlint: confirmation: {confirmer.from_cache} reproducer verdict(s) from the cache, "
              f"{confirmer.run_by_torch} run by torch", file=sys.stderr)
    kept = []
    for d in diagnostics:
        if d.confirmed is False:
            print(f"convlint: {d.path}:{d.line}:{d.column}: {d.code} not reproduced by torch "
                  f"(an analysis mistake worth reporting)", file=sys.stderr)
            if not args.keep_unconfirmed:
                continue
            d.severity = "warning"
        kept.append(d)
    return kept


_REQUEST: CheckRequest = CheckRequest()  # how files are checked, with their project, in each worker process
_CACHE: Optional[ResultCache] = None


def _init_worker(request: CheckRequest, cache: Optional[ResultCache] = None, pooled: bool = False) -> None:
    global _REQUEST, _CACHE
    _REQUEST, _CACHE = request, cache
    if pooled:
        gc.disable()  # a worker process only checks files (see _check_one)


_CHECKED = [0]
COLLECT_EVERY = 256  # files between two passes of the cyclic garbage collector


def _check_one(path: str) -> List[Diagnostic]:
    # Python's cyclic collector is off while files are checked (see engine._collector_paused): a
    # file leaves a few hundred objects in cycles (182,575 for the 566 files of timm, torchvision,
    # monai and smp), so one pass every few hundred files keeps memory flat at a fraction of the cost
    _CHECKED[0] += 1
    if _CHECKED[0] % COLLECT_EVERY == 0:
        gc.collect()
    return _checked_or_cached(path)


def _checked_or_cached(path: str) -> List[Diagnostic]:
    cache, request, project = _CACHE, _REQUEST, _REQUEST.project
    if cache is None:
        return check_path(path, request)
    kept = cache.get(path)
    if kept is not None:
        return kept
    before = stamp(path)
    installed = installed_modules(environment_of(request.python))
    if project is not None:
        project.read.clear()
    installed.read.clear()
    found = check_path(path, request)
    if not any(d.code == "CVL001" and d.message.startswith(INTERNAL_ERROR) for d in found):
        # what the result depends on: the file, the checked files and the installed ones it read
        cache.put(path, before, sorted((project.read if project is not None else set()) | installed.read), found)
    return found


def worker_count(jobs: int, files: int) -> int:
    """The processes that check ``files`` files for ``-j jobs`` (0: all cores): never more than one per
    ``PARALLEL_THRESHOLD`` files (a worker costs a process start and the project's parse)."""
    return min(jobs or os.cpu_count() or 1, max(1, files // PARALLEL_THRESHOLD))


def iter_files(files: Sequence[str], request: CheckRequest, jobs: int,
               cache: Optional[ResultCache] = None) -> Iterator[List[Diagnostic]]:
    """Each file's diagnostics, in the order of ``files``, from ``jobs`` worker processes. The files
    form one project: an import of one by another is followed."""
    jobs = worker_count(jobs, len(files))
    request = replace(request, project=Project(files) if len(files) > 1 else None)
    if jobs <= 1:
        _init_worker(request, cache)
        collecting = gc.isenabled()
        gc.disable()
        try:
            yield from map(_check_one, files)
        finally:
            _init_worker(CheckRequest())
            if collecting:
                gc.enable()
        return
    import multiprocessing  # here, not at the top: an editor's one-file check must not pay for it (~11 ms)

    with multiprocessing.Pool(jobs, initializer=_init_worker, initargs=(request, cache, True)) as pool:
        yield from pool.imap(_check_one, files, chunksize=max(1, len(files) // (jobs * 8)))


def run_files(files: Sequence[str], request: CheckRequest, jobs: int) -> List[Diagnostic]:
    out: List[Diagnostic] = []
    for diags in iter_files(files, request, jobs):
        out.extend(diags)
    return out
