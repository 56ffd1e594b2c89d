"""The confirmation child: builds each reproducer from plain data with real torch and runs it.

It reads ``{"layers": [...], "reproducers": [...]}`` on stdin: the torch.nn classes it may build (the
parent derives them from convlint's catalogue) and the reproducers. It writes one JSON object per line:
``{"ready": version}`` once torch is imported, ``{"running": id}`` as each reproducer starts (so that a
parent which runs out of time knows which one it cut), and each reproducer's result: the stage that
raised (``build``, ``prefix``, ``branch``, ``shortcut``, ``add``, ``cat``, ``consume``) and torch's message, or
``ok``, or ``memory`` when the reproducer needed more memory than the child may take (not a verdict on
the reproducer). Only torch.nn layers of that list are ever built, on the CPU; no user code is imported
or run, and nothing of convlint is imported here (the child needs torch and this file only).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, FrozenSet, Optional, Sequence

try:
    import resource as _resource
    resource: Optional[Any] = _resource
except ImportError:  # not on this platform: the time limit still holds
    resource = None

Spec = Dict[str, Any]  # torch, its nn and what they build are typed Any: torch is not convlint's dependency

# Address space the child may take beyond what it has mapped once torch is imported. The parent only
# sends reproducers whose tensors add up to at most 1 GiB (convlint.limits.MAX_ELEMENTS float32 elements);
# the rest covers what torch maps on first use (oneDNN's code and scratch buffers, the allocator's
# per-thread arenas, thread stacks), address space reserved rather than used. A runaway allocation
# fails at once with torch's own "can't allocate memory" instead of swapping the machine.
MEMORY_HEADROOM = 2 << 30

# The messages torch's CPU allocator and Python give when an allocation is refused.
OUT_OF_MEMORY_MARKS = ("can't allocate memory", "DefaultCPUAllocator", "out of memory")


def _build(nn: Any, layers: FrozenSet[str], layer: Sequence[Any]) -> Any:
    name, args = layer
    args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in args.items()}
    if name == "Permute":  # x.permute(...) as a layer, for channels-last blocks
        return _permute(nn, args["dims"])
    if name == "Channels":  # x[:, start:start + size], a group of channels torch.split gives
        return _channels(nn, int(args["start"]), int(args["size"]))
    if name == "Concat":  # torch.cat([part(x) for part in parts], 1), for dense and inception blocks
        return _concat(nn, [nn.Sequential(*(_build(nn, layers, x) for x in part)) for part in args["parts"]])
    cls = getattr(nn, name, None) if name in layers and name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"not a reproducer layer: {name}")
    return cls(**args)


def _channels(nn: Any, start: int, size: int) -> Any:
    def forward(self: Any, x: Any) -> Any:
        return x[:, start:start + size]
    return type("Channels", (nn.Module,), {"forward": forward})()


def _concat(nn: Any, parts: Sequence[Any]) -> Any:
    import torch

    def forward(self: Any, x: Any) -> Any:
        return torch.cat([part(x) for part in self.parts], 1)
    module = type("Concat", (nn.Module,), {"forward": forward})()
    module.parts = nn.ModuleList(parts)
    return module


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
        joined = spec["op"] in ("add", "cat")
        if joined:
            branch = nn.Sequential(*(_build(nn, layers, x) for x in spec["branch"]))
            shortcut = nn.Sequential(*(_build(nn, layers, x) for x in spec["shortcut"]))
        else:
            consumer = _build(nn, layers, spec["consumer"])
        with torch.no_grad():
            x = torch.randn(*spec["input"])
            stage = "prefix"
            t = prefix(x)
            if joined:
                stage = "branch"
                a = branch(t)
                stage = "shortcut"
                b = shortcut(t)
                stage = spec["op"]
                if spec["op"] == "add":
                    a + b
                else:
                    torch.cat([a, b], 1)
            else:
                stage = "consume"
                consumer(t)
        return {"stage": "ok"}
    except Exception as exc:  # noqa: BLE001 - torch's own error is the result
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, MemoryError) or any(mark in message for mark in OUT_OF_MEMORY_MARKS):
            # the child's memory limit, not the reproducer's shapes, made it fail
            return {"stage": "memory", "error": message}
        return {"stage": stage, "error": message}


def _mapped_bytes() -> Optional[int]:
    """The address space this process has mapped now (Linux's /proc/self/statm), or None elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _bound_memory() -> None:
    """Limit the address space to what is mapped now plus ``MEMORY_HEADROOM``. Set after torch's
    import: a CUDA build maps about 3 GB of address space on import (its libraries, no GPU needed), a
    CPU build about 0.6 GB, so no fixed limit set before the import suits both."""
    mapped = _mapped_bytes()
    if resource is None or mapped is None:
        return  # the time limit and the parent's cost budget still hold
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = mapped + MEMORY_HEADROOM
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft != resource.RLIM_INFINITY:
            limit = min(limit, soft)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # the limit cannot be set here: the time limit still holds
        pass


def _say(message: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    # the CPU only: a GPU (if any) is neither needed to show a shape error nor the child's to take
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch  # first: the parent starts this child early so that the import overlaps its work
    from torch import nn
    _bound_memory()
    _say({"ready": str(torch.__version__)})
    given = json.load(sys.stdin)
    layers = frozenset(given["layers"])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for spec in given["reproducers"]:
        _say({"running": spec["id"]})
        result: Dict[str, Any] = dict(run(spec, torch, nn, layers))
        result["id"] = spec["id"]
        _say(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
