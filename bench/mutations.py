#!/usr/bin/env python3
"""convlint's recall and precision on bugs planted in released model code, labelled by torch.

Each target is a model file of the real corpus (``../shared/tools/real-corpus.sh``) and builders of
that file's models (``resnet18``). One bug at a time is planted in the file's source with a generic
operator on the layers its classes and helpers build:

- ``padding``: a conv's ``padding=P`` becomes P+1, and P>0 becomes 0 (a computed one gets one more)
- ``kernel``: a conv's ``kernel_size=K`` becomes K+1 (a computed one too)
- ``stride``: a conv's ``stride=1`` becomes 2, ``stride=2`` becomes 1
- ``channels``: a conv's first argument (its input channels) gets one more (not a stem's 3 or ``in_chans``)
- ``norm``: a BatchNorm's or GroupNorm's width gets one more
- ``linear``: a Linear's ``in_features`` gets one more
- ``groups``: a conv's ``groups=G`` (not 1) gets one more
- ``projection``: a shortcut or downsample built as a call becomes None (``nn.Sequential()`` for a
  ``self.`` attribute): the projection is dropped

torch labels each mutant: the library's own builders of the file's models are run on a small batch
in the environment ``--python`` names (torch, torchvision and timm installed), from the mutated
source; a mutant *breaks* when one of them raises where the original does not. convlint checks the
mutated file as a user's copy among the package's files (with that environment for its library
versions): a mutant is *detected* when convlint reports an error in the file. Recall is the share of
breaking mutants detected; a *false error* is an error on a mutant that torch runs cleanly. A mutant
in code the builders never run (another model's block) is left out: torch cannot label it.

Usage: python bench/mutations.py --python /tmp/convlint-cuda-venv/bin/python [--corpus DIR]
       [--only NAME ...] [--limit N]
"""
from __future__ import annotations

import argparse
import ast
import collections
import json
import os
import subprocess
import sys
import shutil
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from convlint.app.engine import CheckRequest, check_path  # noqa: E402
from convlint.app.project import Project  # noqa: E402

# (corpus path, importable module, builders with their keyword arguments, input side)
TARGETS = [
    ("torchvision/models/resnet.py", "torchvision.models.resnet", [("resnet18", {}), ("resnet50", {})], 64),
    ("torchvision/models/mobilenetv2.py", "torchvision.models.mobilenetv2", [("mobilenet_v2", {})], 64),
    ("torchvision/models/mobilenetv3.py", "torchvision.models.mobilenetv3", [("mobilenet_v3_small", {})], 64),
    ("torchvision/models/densenet.py", "torchvision.models.densenet", [("densenet121", {})], 64),
    ("torchvision/models/regnet.py", "torchvision.models.regnet", [("regnet_y_400mf", {})], 64),
    ("torchvision/models/efficientnet.py", "torchvision.models.efficientnet", [("efficientnet_b0", {})], 64),
    ("torchvision/models/shufflenetv2.py", "torchvision.models.shufflenetv2", [("shufflenet_v2_x0_5", {})], 64),
    ("torchvision/models/mnasnet.py", "torchvision.models.mnasnet", [("mnasnet0_5", {})], 64),
    ("torchvision/models/squeezenet.py", "torchvision.models.squeezenet", [("squeezenet1_1", {})], 64),
    ("torchvision/models/googlenet.py", "torchvision.models.googlenet",
     [("googlenet", {"aux_logits": False, "init_weights": False})], 64),
    ("torchvision/models/inception.py", "torchvision.models.inception",
     [("inception_v3", {"aux_logits": False, "init_weights": False})], 96),
    ("torchvision/models/convnext.py", "torchvision.models.convnext", [("convnext_tiny", {})], 64),
    ("timm/models/resnet.py", "timm.models.resnet", [("resnet18", {}), ("resnet50d", {})], 64),
    ("timm/models/dla.py", "timm.models.dla",
     [("dla34", {}), ("dla46x_c", {}), ("dla60_res2net", {}), ("dla60_res2next", {})], 64),
    ("timm/models/dpn.py", "timm.models.dpn", [("dpn68", {})], 64),
    ("timm/models/senet.py", "timm.models.senet",
     [("legacy_seresnet18", {}), ("legacy_seresnet50", {}), ("legacy_seresnext26_32x4d", {})], 64),
    ("timm/models/res2net.py", "timm.models.res2net", [("res2net50_14w_8s", {})], 64),
    ("timm/models/ghostnet.py", "timm.models.ghostnet", [("ghostnet_100", {})], 64),
    ("timm/models/vovnet.py", "timm.models.vovnet", [("ese_vovnet19b_dw", {})], 64),
]

CONV_NAMES = ("Conv1d", "Conv2d", "Conv3d")
NORM_NAMES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm")


# --- planting bugs ------------------------------------------------------------------------------


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _int(node: ast.AST) -> Optional[int]:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def _keyword(call: ast.Call, name: str) -> Optional[ast.keyword]:
    return next((k for k in call.keywords if k.arg == name), None)


def _image_channels(arg: ast.AST) -> bool:
    """A stem's input channels (3, ``in_chans``): a model of 4 input channels is not a bug in itself,
    only the harness's 3-channel input makes it fail."""
    return _int(arg) == 3 or (isinstance(arg, ast.Name) and arg.id in ("in_chans", "in_channels_img"))


def mutations(tree: ast.Module) -> Iterator[Tuple[str, ast.AST, str, str]]:
    """(operator, node to replace, its new text, a description) for every bug to plant."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node)
            if name in CONV_NAMES:
                for kw, op in (("padding", "padding"), ("kernel_size", "kernel"), ("stride", "stride"),
                               ("groups", "groups")):
                    k = _keyword(node, kw)
                    if k is None:
                        continue
                    value = _int(k.value)
                    if value is None and op in ("padding", "kernel") and not isinstance(k.value, ast.Constant):
                        # a padding or kernel the code computes (`padding=dilation`): one more
                        yield op, k.value, f"({ast.unparse(k.value)}) + 1", f"{kw}={ast.unparse(k.value)} + 1"
                    elif op == "padding" and value is not None:
                        yield op, k.value, str(value + 1), f"padding={value} -> {value + 1}"
                        if value > 0:
                            yield op, k.value, "0", f"padding={value} -> 0"
                    elif op == "kernel" and value is not None:
                        yield op, k.value, str(value + 1), f"kernel_size={value} -> {value + 1}"
                    elif op == "stride" and value in (1, 2):
                        yield op, k.value, str(3 - value), f"stride={value} -> {3 - value}"
                    elif op == "groups" and value != 1:
                        yield op, k.value, f"({ast.unparse(k.value)}) + 1", "groups + 1"
                if node.args and not _image_channels(node.args[0]):
                    yield "channels", node.args[0], f"({ast.unparse(node.args[0])}) + 1", "in_channels + 1"
            elif name in NORM_NAMES:
                arg = node.args[1] if name == "GroupNorm" and len(node.args) > 1 else \
                    node.args[0] if node.args and name != "GroupNorm" else None
                if arg is not None:
                    yield "norm", arg, f"({ast.unparse(arg)}) + 1", f"{name} width + 1"
            elif name == "Linear" and node.args:
                yield "linear", node.args[0], f"({ast.unparse(node.args[0])}) + 1", "in_features + 1"
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.Call):
            target = node.targets[0]
            label = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
            callee = node.value.func
            built_here = not (isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name)
                              and callee.value.id == "self")  # (not `shortcut = self.downsample(x)` in forward)
            if any(word in label.lower() for word in ("downsample", "shortcut", "skip")) and built_here and \
                    _name(node.value) not in ("Identity",):
                new = "nn.Sequential()" if isinstance(target, ast.Attribute) else "None"
                yield "projection", node.value, new, f"{label} = {new}"


def planted(source: str, node: ast.AST, text: str) -> str:
    """``source`` with ``node``'s text replaced (``ast`` columns count UTF-8 bytes)."""
    data = source.encode("utf-8")
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    start = starts[node.lineno - 1] + node.col_offset
    end = starts[node.end_lineno - 1] + node.end_col_offset
    return (data[:start] + text.encode("utf-8") + data[end:]).decode("utf-8")


# --- torch's labels -------------------------------------------------------------------------------

LABELLER = r"""
import importlib, importlib.util, json, sys, torch, traceback
torch.set_num_threads(2)
job = json.loads(sys.stdin.read())
parent = job["module"].rsplit(".", 1)[0]
importlib.import_module(parent)  # the package first: the mutant's relative imports need it
try:  # torchvision refuses a builder registered twice: the mutant's module registers its own again
    import torchvision.models._api as api
    api.register_model = lambda name=None: (lambda fn: fn)
except ImportError:
    pass

def run(source):
    spec = importlib.util.spec_from_loader(job["module"], loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = parent
    exec(compile(source, job["path"], "exec"), module.__dict__)
    for builder, kwargs in job["builders"]:
        model = getattr(module, builder).__wrapped__(**kwargs) if hasattr(getattr(module, builder), "__wrapped__") \
            else getattr(module, builder)(**kwargs)
        model.eval()
        with torch.no_grad():
            model(torch.randn(1, 3, job["size"], job["size"]))

executed = set()  # the mutated file's lines the builders run (from the original's run)

def tracer(frame, event, arg):
    if frame.f_code.co_filename != job["path"]:
        return None
    if event == "line":
        executed.add(frame.f_lineno)
    return tracer

out = []
for i, source in enumerate(job["sources"]):
    if i == 0:
        sys.settrace(tracer)
    try:
        run(source)
        out.append(None)
    except Exception as exc:
        out.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200])
    finally:
        sys.settrace(None)
print(json.dumps({"verdicts": out, "executed": sorted(executed)}))
"""


def labels(python: str, module: str, path: str, builders, size: int, sources: List[str]) -> Dict[str, list]:
    job = {"module": module, "path": path, "builders": builders, "size": size, "sources": sources}
    proc = subprocess.run([python, "-c", LABELLER], input=json.dumps(job), capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout)


# --- the run --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="a Python with torch, torchvision and timm installed")
    parser.add_argument("--corpus", default=os.environ.get("CONVLINT_CORPUS", "/tmp/convlint-corpus"))
    parser.add_argument("--only", nargs="*", default=[], help="targets whose path holds one of these")
    parser.add_argument("--limit", type=int, default=0, help="at most this many mutants per target")
    parser.add_argument("--json", default=None, help="write every mutant's outcome here")
    args = parser.parse_args()
    rows = []
    started = time.time()
    for rel, module, builders, size in TARGETS:
        if args.only and not any(o in rel for o in args.only):
            continue
        path = os.path.join(args.corpus, rel)
        source = open(path, encoding="utf-8").read()
        tree = ast.parse(source)
        found = list(mutations(tree))
        if args.limit:
            found = found[:args.limit]
        sources = [source] + [planted(source, node, text) for _, node, text, _ in found]
        labelled = labels(args.python, module, path, builders, size, sources)
        verdicts, executed = labelled["verdicts"], set(labelled["executed"])
        if verdicts[0] is not None:
            print(f"{rel}: the original does not run ({verdicts[0]}); skipped", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as tmp:  # a user's copy of the package, the mutant in it
            top = rel.split("/")[0]
            shutil.copytree(os.path.join(args.corpus, top), os.path.join(tmp, top))
            copy = os.path.join(tmp, rel)
            package_files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(tmp, top))
                             for f in fs if f.endswith(".py")]
            if _errors(copy, source, package_files, args.python):
                print(f"{rel}: convlint reports an error on the original; skipped", file=sys.stderr)
                continue
            for (op, node, text, what), mutant, verdict in zip(found, sources[1:], verdicts[1:]):
                if not executed & set(range(node.lineno, node.end_lineno + 1)) and verdict is None:
                    continue  # code the builders do not run: torch cannot tell whether the bug breaks it
                errors = _errors(copy, mutant, package_files, args.python)
                rows.append({"target": rel, "package": rel.split("/")[0], "operator": op, "line": node.lineno,
                             "mutation": what, "torch": verdict, "convlint": errors})
        print(f"{rel}: {len(found)} mutants ({time.time() - started:.0f} s)", file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    report(rows)
    return 0


def _errors(target: str, source: str, package_files: List[str], python: str) -> List[str]:
    """convlint's errors (code:line) on ``source`` written at ``target``, among the package's files."""
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(source)
    request = CheckRequest(project=Project(package_files), python=python)
    found = check_path(target, request)
    return sorted({f"{d.code}:{d.line}" for d in found if d.severity == "error" and d.code != "CVL001"})


def report(rows: List[Dict[str, object]]) -> None:
    def table(title: str, key: str) -> None:
        groups: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for row in rows:
            c = groups[str(row[key])]
            breaks = row["torch"] is not None
            c["mutants"] += 1
            c["breaking"] += breaks
            c["detected"] += bool(breaks and row["convlint"])
            c["false errors"] += bool(not breaks and row["convlint"])
        print(f"\n| {title} | mutants | breaking (torch) | detected | recall | false errors |\n|---|---|---|---|---|---|")
        total: collections.Counter = collections.Counter()
        for name in sorted(groups):
            c = groups[name]
            total.update(c)
            print(_row(name, c))
        print(_row("**all**", total))

    table("operator", "operator")
    table("package", "package")
    table("file", "target")
    by_rule: collections.Counter = collections.Counter()
    for row in rows:
        if row["torch"] is not None:
            for code in {e.split(":")[0] for e in row["convlint"]}:  # type: ignore[union-attr]
                by_rule[code] += 1
    print("\n| rule | breaking mutants it reports |\n|---|---|")
    for code, n in sorted(by_rule.items()):
        print(f"| {code} | {n} |")


def _row(name: str, c: collections.Counter) -> str:
    recall = f"{c['detected'] / c['breaking']:.2f}" if c["breaking"] else "-"
    return f"| {name} | {c['mutants']} | {c['breaking']} | {c['detected']} | {recall} | {c['false errors']} |"


if __name__ == "__main__":
    sys.exit(main())
