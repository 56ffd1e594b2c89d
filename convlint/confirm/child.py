"""The confirmation child: builds each reproducer from plain data with real torch and runs it.

It reads ``{"layers": [...], "reproducers": [...]}`` on stdin: the torch.nn classes it may build (the
parent derives them from convlint's catalogue) and the reproducers. It writes one JSON result per line:
the stage that raised (``build``, ``prefix``, ``branch``, ``shortcut``, ``add``, ``consume``) and
torch's message, or ``ok``. Only torch.nn layers of that list are ever built; no user code is imported
or run, and nothing of convlint is imported here (the child needs torch and this file only).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, FrozenSet, Optional, Sequence

try:
    import resource as _resource
    resource: Optional[Any] = _resource
except ImportError:  # not on this platform: the time limit still holds
    resource = None

Spec = Dict[str, Any]  # torch, its nn and what they build are typed Any: torch is not convlint's dependency


def _build(nn: Any, layers: FrozenSet[str], layer: Sequence[Any]) -> Any:
    name, args = layer
    args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in args.items()}
    if name == "Permute":  # x.permute(...) as a layer, for channels-last blocks
        return _permute(nn, args["dims"])
    cls = getattr(nn, name, None) if name in layers and name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"not a reproducer layer: {name}")
    return cls(**args)


def _permute(nn: Any, dims: Sequence[int]) -> Any:
    def forward(self: Any, x: Any) -> Any:
        return x.permute(*dims)
    return type("Permute", (nn.Module,), {"forward": forward})()


def run(spec: Spec, torch: Any, nn: Any, layers: FrozenSet[str]) -> Dict[str, str]:
    stage = "build"
    try:
        if spec["op"] == "build":
            _build(nn, layers, spec["layer"])
            return {"stage": "ok"}
        prefix = nn.Sequential(*(_build(nn, layers, x) for x in spec["prefix"]))
        if spec["op"] == "add":
            branch = nn.Sequential(*(_build(nn, layers, x) for x in spec["branch"]))
            shortcut = nn.Sequential(*(_build(nn, layers, x) for x in spec["shortcut"]))
        else:
            consumer = _build(nn, layers, spec["consumer"])
        with torch.no_grad():
            x = torch.randn(*spec["input"])
            stage = "prefix"
            t = prefix(x)
            if spec["op"] == "add":
                stage = "branch"
                a = branch(t)
                stage = "shortcut"
                b = shortcut(t)
                stage = "add"
                a + b
            else:
                stage = "consume"
                consumer(t)
        return {"stage": "ok"}
    except Exception as exc:  # noqa: BLE001 - torch's own error is the result
        return {"stage": stage, "error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}


MEMORY_LIMIT = 3 << 30  # bytes of address space: reproducers are tiny, torch itself needs ~1.5 GB


def _bound_memory() -> None:
    if resource is None:
        return
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # the limit cannot be set here: the time limit still holds
        pass


def main() -> int:
    _bound_memory()
    import torch  # first: the parent starts this child early so that the import overlaps its work
    from torch import nn
    given = json.load(sys.stdin)
    layers = frozenset(given["layers"])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for spec in given["reproducers"]:
        result = run(spec, torch, nn, layers)
        result["id"] = spec["id"]
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
