"""From a parsed module to what the rules read: the events the interpreter emitted (residual adds,
channel uses, convs built, windows applied) and each residual add's judged shapes."""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from typing import DefaultDict, List, Optional, Protocol, Sequence, Tuple, Type, TypeVar

from ..interpreter import FileIndex, Interpreter, analyse_class, analyse_function, analyse_statements, in_run_order
from ..interpreter.files import ModuleSet
from ..limits import FileBudget, FileOutOfBudget
from ..source.environment import Environment
from ..source.module_names import module_name as package_module_name
from ..torchlib.events import Event, ResidualAdd
from .residual import ResidualShapes, examine

E = TypeVar("E", bound=Event)


class ProjectFiles(ModuleSet, Protocol):
    """The files checked together, as the analysis needs them (``convlint.app.project.Project``)."""

    def module_of(self, path: str) -> Tuple[Optional[str], bool]: ...

    def remember(self, name: str, index: FileIndex) -> None: ...


class Analysis:
    """The events of one file, by class, and the judged shapes of its residual adds."""

    def __init__(self, module: ast.Module):
        self.module = module
        self._events: DefaultDict[type, List[Event]] = defaultdict(list)
        self.residuals: List[ResidualShapes] = []
        self.budget = FileBudget()  # what the analysis of this file may use (convlint.limits)
        self.stopped: Optional[str] = None  # the file budget that stopped the analysis, if one did

    def emit(self, event: object) -> None:
        if isinstance(event, Event):
            self._events[type(event)].append(event)

    def of(self, kind: Type[E]) -> List[E]:
        """The events of one class, in the order they were found."""
        return self._events[kind]  # type: ignore[return-value]  # (filled by class in ``emit``)


def analyse(module: ast.Module, source: str, input_size: Optional[Sequence[int]] = None,
            project: Optional[ProjectFiles] = None, path: Optional[str] = None,
            environment: Optional[Environment] = None) -> Analysis:
    """Run every class, module-level function and statement of the file symbolically; with a
    ``project`` (the files checked together), imports of other files of it are followed; with an
    ``environment``, the models of the libraries installed there stand for their helpers."""
    result = Analysis(module)
    if project is not None and path:
        module_name, is_package = project.module_of(path)
    else:  # one file alone: its package still tells where its relative imports lead (a stub, or nowhere)
        module_name, is_package = package_module_name(path) if path and path != "-" else (None, False)
    index = FileIndex(module, module_name, is_package, project, source, path)
    if project is not None and module_name:
        project.remember(module_name, index)  # a later import of this file reuses this parse
    interpreter = Interpreter(index, result.emit, result.budget, environment)
    try:
        for cls in index.classes:
            size = index.input_size(cls)
            if size is None and input_size and not _used_elsewhere(cls, source):
                size = tuple(input_size)
            analyse_class(interpreter, cls, size)
        for fn in in_run_order(interpreter, index.functions):
            analyse_function(interpreter, fn)
        analyse_statements(interpreter, index.statements)
    except FileOutOfBudget as exc:
        result.stopped = str(exc)  # what was proven stands; the rest of the file stays unknown
    for add in result.of(ResidualAdd):
        shapes = examine(add)
        if shapes is not None:
            result.residuals.append(shapes)
    return result


def _used_elsewhere(cls: ast.ClassDef, source: str) -> bool:
    """Whether the file calls the class (then it is a part, not the top-level model)."""
    return re.search(rf"(?<!class )\b{re.escape(cls.name)}\s*\(", source) is not None
