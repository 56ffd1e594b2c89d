"""The program ``--explain-confirm`` prints is made only of reproducers ``valid_spec`` accepts: layer
names of the confirmation child's whitelist, known keyword arguments, literal values, bounded sizes.
A reproducer can come from the result cache, which anyone who can write the cache folder can plant."""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List

import pytest

from convlint.confirm.program import program
from convlint.confirm.spec import ARGUMENT_NAMES, valid_spec
from convlint.limits import INT_LIMIT, MAX_ARGUMENTS, MAX_DESCRIPTION, MAX_LAYERS, MAX_TUPLE

CONV = ("Conv2d", {"in_channels": 4, "out_channels": 4, "kernel_size": (3, 3), "stride": (1, 1),
                   "padding": (0, 0), "dilation": (1, 1), "groups": 1})
ADD = {"op": "add", "input": [2, 4, 8, 8], "prefix": [], "branch": [CONV], "shortcut": [], "values": "planes=4"}
CONSUME = {"op": "consume", "input": [2, 4, 8, 8],
           "prefix": [("Permute", {"dims": (0, 2, 3, 1)}), ("Linear", {"in_features": 4, "out_features": 8}),
                      ("Permute", {"dims": (0, 3, 1, 2)})],
           "consumer": ("BatchNorm2d", {"num_features": 4})}
BUILD = {"op": "build", "layer": ["Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": [3, 3],
                                             "stride": [1, 1], "padding": "same", "dilation": [1, 1], "groups": 4}]}
PLANTED_ARGUMENT = "__import__('os').system('echo pwned')#"

ADD_PROGRAM = """import torch
from torch import nn

x = torch.randn(2, 4, 8, 8)
prefix = nn.Sequential()
branch = nn.Sequential(
    nn.Conv2d(in_channels=4, out_channels=4, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1),
)
shortcut = nn.Sequential()
t = prefix(x)
y = branch(t) + shortcut(t)
"""
CONSUME_PROGRAM = """import torch
from torch import nn


class Permute(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)

x = torch.randn(2, 4, 8, 8)
prefix = nn.Sequential(
    Permute(0, 2, 3, 1),
    nn.Linear(in_features=4, out_features=8),
    Permute(0, 3, 1, 2),
)
layer = nn.BatchNorm2d(num_features=4)
y = layer(prefix(x))
"""
BUILD_PROGRAM = """import torch
from torch import nn

nn.Conv2d(in_channels=4, out_channels=6, kernel_size=(3, 3), stride=(1, 1), padding='same', dilation=(1, 1), groups=4)
"""


def test_programs_are_printed_exactly():
    assert program(ADD) == ADD_PROGRAM
    assert program(CONSUME) == CONSUME_PROGRAM
    assert program(BUILD) == BUILD_PROGRAM


def test_a_reproducer_read_back_from_json_prints_the_same_program():
    """The cache keeps reproducers as JSON (tuples become lists): the program must not change."""
    for spec, text in ((ADD, ADD_PROGRAM), (CONSUME, CONSUME_PROGRAM), (BUILD, BUILD_PROGRAM)):
        assert program(json.loads(json.dumps(spec))) == text


def _with(spec: Dict[str, Any], change: Callable[[Dict[str, Any]], None]) -> Dict[str, Any]:
    changed = json.loads(json.dumps(spec))
    change(changed)
    return changed


def _set(path: List[Any], value: Any) -> Callable[[Dict[str, Any]], None]:
    """A change that sets the item at ``path`` (keys and indexes) to ``value``."""
    def change(spec: Dict[str, Any]) -> None:
        target: Any = spec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _add_argument(name: Any, value: Any) -> Callable[[Dict[str, Any]], None]:
    def change(spec: Dict[str, Any]) -> None:
        spec["branch"][0][1][name] = value
    return change


def _delete(key: str) -> Callable[[Dict[str, Any]], None]:
    def change(spec: Dict[str, Any]) -> None:
        del spec[key]
    return change


REFUSED = {  # one change to ADD each, each enough to refuse the reproducer
    "planted argument name": _add_argument(PLANTED_ARGUMENT, 1),
    "argument name with a space": _add_argument("in_channels ", 4),
    "keyword as argument name": _add_argument("lambda", 1),
    "unknown argument name": _add_argument("weights_path", 1),
    "layer name os.system": _set(["branch", 0, 0], "os.system"),
    "layer name with a call": _set(["branch", 0, 0], "Conv2d(1)"),
    "torch class not replayed": _set(["branch", 0, 0], "Sequential"),
    "layer name not a string": _set(["branch", 0, 0], 7),
    "layer of three items": _set(["branch", 0], ["Conv2d", {}, {}]),
    "arguments not a mapping": _set(["branch", 0, 1], [["in_channels", 4]]),
    "string value outside the set": _set(["branch", 0, 1, "padding"], "__import__('os')"),
    "nested list value": _set(["branch", 0, 1, "kernel_size"], [[3], [3]]),
    "string inside a tuple": _set(["branch", 0, 1, "kernel_size"], [3, "3"]),
    "bool inside a tuple": _set(["branch", 0, 1, "kernel_size"], [3, True]),
    "dict value": _set(["branch", 0, 1, "groups"], {"a": 1}),
    "int too large": _set(["branch", 0, 1, "groups"], INT_LIMIT),
    "int too small": _set(["branch", 0, 1, "groups"], -INT_LIMIT - 1),
    "float not finite": _set(["branch", 0, 1, "groups"], float("nan")),
    "float too large": _set(["branch", 0, 1, "groups"], 1e300),
    "tuple too long": _set(["branch", 0, 1, "kernel_size"], [3] * (MAX_TUPLE + 1)),
    "unknown op": _set(["op"], "exec"),
    "missing chain": _delete("shortcut"),
    "extra key": _set(["code"], "print(1)"),
    "chain not a list": _set(["prefix"], "Conv2d"),
    "chain too long": _set(["prefix"], [["Flatten", {}]] * (MAX_LAYERS + 1)),
    "too many layers in all": _set(["shortcut"], [["Flatten", {}]] * MAX_LAYERS),
    "too many arguments": _set(["branch", 0, 1], dict.fromkeys(sorted(ARGUMENT_NAMES)[:MAX_ARGUMENTS + 1], 1)),
    "empty input": _set(["input"], []),
    "input size 0": _set(["input", 2], 0),
    "input size a string": _set(["input", 2], "8"),
    "input size a bool": _set(["input", 0], True),
    "input of rank 6": _set(["input"], [2, 4, 8, 8, 8, 8]),
    "values text with an escape": _set(["values"], "planes=4\x1b[2J"),
    "values text too long": _set(["values"], "p" * (MAX_DESCRIPTION + 1)),
    "values text a list": _set(["values"], ["planes=4"]),
    "scaled_down text with a newline": _set(["scaled_down"], "scaled down\nimport os"),
    "permute with arguments besides dims": _set(["prefix"], [["Permute", {"dims": [0, 1], "x": 1}]]),
    "permute of no permutation": _set(["prefix"], [["Permute", {"dims": [0, 0, 1]}]]),
    "permute of strings": _set(["prefix"], [["Permute", {"dims": ["0"]}]]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_reproducer_off_the_whitelist_gives_no_program(name: str):
    assert valid_spec(ADD)
    changed = _with(ADD, REFUSED[name])
    assert changed != json.loads(json.dumps(ADD))  # the change changed something
    assert valid_spec(changed) is False
    assert program(changed) is None


def test_planted_argument_and_layer_names_never_reach_the_program():
    for changed in (_with(ADD, REFUSED["planted argument name"]), _with(ADD, REFUSED["layer name os.system"])):
        assert program(changed) is None
    assert program({"op": "build", "layer": ["os.system", {"command": "echo pwned"}]}) is None
    assert program({"op": "build", "layer": ["Conv2d", {PLANTED_ARGUMENT: 1}]}) is None


def test_not_a_mapping_is_refused():
    for spec in (None, [], "add", 3, [("op", "add")]):
        assert valid_spec(spec) is False


ACCEPTED_AT_THE_LIMIT = {  # the largest values the caps allow
    "largest int": _set(["branch", 0, 1, "groups"], INT_LIMIT - 1),
    "smallest int": _set(["branch", 0, 1, "groups"], -INT_LIMIT),
    "longest tuple": _set(["branch", 0, 1, "kernel_size"], [3] * MAX_TUPLE),
    "most layers in all": _set(["prefix"], [["Flatten", {}]] * (MAX_LAYERS - 1)),  # and the branch's one
    "most arguments": _set(["branch", 0, 1], dict.fromkeys(sorted(ARGUMENT_NAMES)[:MAX_ARGUMENTS], 1)),
    "rank 5 input": _set(["input"], [2, 4, 8, 8, 8]),
    "longest values text": _set(["values"], "p" * MAX_DESCRIPTION),
    "a scaled_down text": _set(["scaled_down"], "scaled down from input 2x3x4096x4096, 100000 channels as 9"),
    "finite float": _set(["branch", 0, 1, "groups"], 0.5),
    "None in a tuple": _set(["branch", 0, 1, "kernel_size"], [None, 7]),
    "no values text": _delete("values"),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED_AT_THE_LIMIT))
def test_the_caps_allow_what_they_say(name: str):
    assert valid_spec(_with(ADD, ACCEPTED_AT_THE_LIMIT[name])) is True


def test_the_longest_program_is_under_two_hundred_kilobytes():
    widest = ["Conv3d", dict.fromkeys(sorted(ARGUMENT_NAMES)[:MAX_ARGUMENTS], [-INT_LIMIT] * MAX_TUPLE)]
    at_most = dict(ADD, prefix=[widest] * (MAX_LAYERS - 2), branch=[widest], shortcut=[widest],
                   values="p" * MAX_DESCRIPTION)
    text = program(at_most)
    assert text is not None and 150_000 < len(text) < 200_000
