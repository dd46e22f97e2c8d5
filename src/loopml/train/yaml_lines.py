"""Load YAML and remember the line every key and list item came from.

Pydantic reports a bad value by its location (``("split", "folds")``); a person fixing a
project file wants ``loopml.yaml:14``. PyYAML's composer keeps a start mark on each node, so
the file is composed once, converted to plain Python objects, and every path is mapped to the
1-based line of its key (for mapping entries) or of its value (for list items).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from loopml.errors import ConfigError

__all__ = ["LocatedYAML", "load_yaml"]

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class LocatedYAML:
    """A parsed YAML document and the line of each path in it."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    filename: str = "<yaml>"

    def line_of(self, loc: Sequence[Any]) -> int | None:
        """The line of the deepest known path along ``loc``.

        Locations from pydantic may carry extra parts that are not in the document (the tag of
        a discriminated union, ``function-after[...]``), so unknown parts are skipped rather
        than ending the walk.
        """
        best = self.lines.get(())
        path: Path = ()
        for part in loc:
            candidate = (*path, part)
            if candidate in self.lines:
                path = candidate
                best = self.lines[candidate]
        return best


def load_yaml(text: str, *, filename: str = "<yaml>") -> LocatedYAML:
    """Parse ``text`` (one document) into data plus a path → line map.

    Raises :class:`ConfigError` naming the file and line for a syntax error.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        started = exc.context_mark
        context = ""
        if exc.context and started is not None and (mark is None or started.line != mark.line):
            context = f" ({exc.context} started on line {started.line + 1})"
        raise ConfigError(
            f"{where}: not valid YAML: {exc.problem}{context}",
            hint="check the indentation and quoting near that line",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{filename}: not valid YAML: {exc}", hint=None) from None
    if node is None:
        return LocatedYAML(data=None, lines={}, filename=filename)
    lines: dict[Path, int] = {(): node.start_mark.line + 1}
    _index(node, (), lines)
    constructor = yaml.SafeLoader(text)
    try:
        data = constructor.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        raise ConfigError(f"{where}: {exc.problem}", hint=None) from None
    finally:
        constructor.dispose()
    return LocatedYAML(data=data, lines=lines, filename=filename)


def _index(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _index(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            lines[child] = item.start_mark.line + 1
            _index(item, child, lines)
