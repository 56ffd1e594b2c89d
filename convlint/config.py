"""``[tool.convlint]`` in the nearest ``pyproject.toml`` (or the one ``--config`` names)."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .limits import MAX_CONFIG_BYTES, MAX_INPUT_SIZE
from .storage import NotRegularFile, TooLarge, read_limited

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib  # (Python 3.10 and older)

KNOWN_KEYS = {"select", "ignore", "confirm", "input-size", "exclude", "python"}


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file and the key."""


@dataclass
class Config:
    select: List[str] = field(default_factory=lambda: ["CVL"])
    ignore: List[str] = field(default_factory=list)
    confirm: bool = True
    input_size: Optional[List[int]] = None
    exclude: List[str] = field(default_factory=list)
    python: Optional[str] = None  # the environment whose libraries the code imports (its interpreter or folder)
    path: Optional[str] = None


def find_pyproject(start: str) -> Optional[str]:
    here = os.path.abspath(start)
    if os.path.isfile(here):
        here = os.path.dirname(here)
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def load(path: Optional[str], known_codes: Sequence[str]) -> Config:
    """``[tool.convlint]`` of ``path`` (defaults when None); ``ConfigError`` names what is wrong."""
    if path is None:
        return Config()
    data = _read_toml(path)
    tool = data.get("tool", {})
    section = tool.get("convlint", {}) if isinstance(tool, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.convlint] must be a table")
    unknown = sorted(set(section) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key in [tool.convlint]: {', '.join(unknown)}")
    config = Config(path=path)
    for key in ("select", "ignore", "exclude"):
        if key in section:
            value = section[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{path}: [tool.convlint] {key} must be a list of strings")
            setattr(config, key, list(value))
    for code in config.select + config.ignore:
        check_code(code, known_codes, path)
    if "confirm" in section:
        if not isinstance(section["confirm"], bool):
            raise ConfigError(f"{path}: [tool.convlint] confirm must be true or false")
        config.confirm = section["confirm"]
    if "input-size" in section:
        config.input_size = parse_input_size(section["input-size"], path)
    if "python" in section:
        value = section["python"]
        if not isinstance(value, str) or not value or "\0" in value:
            raise ConfigError(f"{path}: [tool.convlint] python must be the path of an interpreter or environment")
        # relative to the config's folder, as a project's `.venv` is written
        config.python = os.path.join(os.path.dirname(os.path.abspath(path)), value)
    return config


def _read_toml(path: str) -> Dict[str, Any]:
    """A TOML file's tables; any way it cannot be read (not a regular file, too large, not UTF-8,
    not TOML, nested past Python's recursion limit) is a ``ConfigError`` naming the file."""
    try:
        raw = read_limited(path, MAX_CONFIG_BYTES)
        tables: Dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
        return tables
    except NotRegularFile:
        raise ConfigError(f"{path}: cannot read configuration: not a regular file") from None
    except TooLarge:
        raise ConfigError(f"{path}: cannot read configuration: larger than {MAX_CONFIG_BYTES >> 20} MB") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read configuration: not valid UTF-8 (at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    except (RecursionError, MemoryError):
        raise ConfigError(f"{path}: cannot read configuration: nested too deeply") from None


def check_code(code: str, known_codes: Sequence[str], where: str) -> None:
    if not any(k.startswith(code) for k in known_codes):
        raise ConfigError(f"{where}: unknown rule code or prefix: {code}")


def parse_input_size(value: object, where: str) -> List[int]:
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.lower().split("x")]
        except ValueError:
            value = None
    if not isinstance(value, list) or not 2 <= len(value) <= 4 or \
            not all(type(v) is int and 0 < v <= MAX_INPUT_SIZE for v in value):  # (not bool: True is an int)
        raise ConfigError(f"{where}: input-size must be C,H,W positive integers, e.g. [3, 224, 224]")
    return [int(v) for v in value]
