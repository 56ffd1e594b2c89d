"""From a parsed module to what the rules read: residual adds with their shapes, channel uses, convs."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import ast

from .events import ChannelUse, ConvBuilt, ResidualAdd, WindowApplied
from .interpreter import FileIndex, Interpreter
from .project import module_name as package_module_name
from .residual import ResidualShapes, examine


@dataclass
class Analysis:
    module: ast.Module
    residual_adds: List[ResidualAdd] = field(default_factory=list)
    residuals: List[ResidualShapes] = field(default_factory=list)
    channel_uses: List[ChannelUse] = field(default_factory=list)
    convs: List[ConvBuilt] = field(default_factory=list)
    windows: List[WindowApplied] = field(default_factory=list)


def analyse(module: ast.Module, source: str, input_size: Optional[Sequence[int]] = None,
            project=None, path: Optional[str] = None) -> Analysis:
    """Run every class, module-level function and statement of the file symbolically; with a
    ``project`` (the files checked together), imports of other files of it are followed."""
    result = Analysis(module)

    def emit(event: object) -> None:
        if isinstance(event, ResidualAdd):
            result.residual_adds.append(event)
        elif isinstance(event, ChannelUse):
            result.channel_uses.append(event)
        elif isinstance(event, ConvBuilt):
            result.convs.append(event)
        elif isinstance(event, WindowApplied):
            result.windows.append(event)

    if project is not None and path:
        module_name, is_package = project.module_of(path)
    else:  # one file alone: its package still tells where its relative imports lead (a stub, or nowhere)
        module_name, is_package = package_module_name(path) if path and path != "-" else (None, False)
    index = FileIndex(module, module_name, is_package, project, source, path)
    if project is not None and module_name:
        project.remember(module_name, index)  # a later import of this file reuses this parse
    interp = Interpreter(index, emit)
    for cls in index.classes:
        size = index.input_size(cls)
        if size is None and input_size and not _used_elsewhere(cls, source):
            size = tuple(input_size)
        interp.analyse_class(cls, size)
    for fn in index.functions:
        interp.analyse_function(fn)
    interp.analyse_statements(index.statements)
    for add in result.residual_adds:
        shapes = examine(add)
        if shapes is not None:
            result.residuals.append(shapes)
    return result


def _used_elsewhere(cls: ast.ClassDef, source: str) -> bool:
    """Whether the file calls the class (then it is a part, not the top-level model)."""
    return re.search(rf"(?<!class )\b{re.escape(cls.name)}\s*\(", source) is not None
