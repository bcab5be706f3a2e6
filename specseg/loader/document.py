"""A parsed spec document: plain data plus the source position of every node.

Both readers (YAML and JSON) produce a small node tree; :func:`to_document`
turns it into plain Python data and two position tables keyed by spec path.
Aliased YAML subtrees are shared nodes in the tree, so expanding them is
where a node budget stops "billion laughs" documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specseg.errors import Location, SpecError, SpecIssue, SpecPath

#: A spec is a few dozen nodes; this leaves room for large ``metadata`` while
#: making alias bombs fail fast instead of exhausting memory.
MAX_NODES = 100_000
#: Real specs nest about five levels deep; 64 leaves room for metadata and
#: keeps every recursive walk far from Python's recursion limit.
MAX_DEPTH = 64


@dataclass
class Node:
    """Base class of parsed nodes; ``location`` is where the node starts."""

    location: Location


@dataclass
class ScalarNode(Node):
    """A scalar whose Python value is already resolved (str, int, float, bool, None)."""

    value: Any = None


@dataclass
class SeqNode(Node):
    """A sequence of nodes."""

    items: list[Node] = field(default_factory=list)


@dataclass
class MapNode(Node):
    """A mapping; keys are strings with their own locations, order kept."""

    items: list[tuple[str, Location, Node]] = field(default_factory=list)


@dataclass
class Document:
    """Plain data plus where each value and each mapping key was written.

    ``values[path]`` is the location of the value at ``path``;
    ``keys[path]`` is the location of the key that introduced ``path``.
    """

    data: Any
    file: str
    values: dict[SpecPath, Location] = field(default_factory=dict)
    keys: dict[SpecPath, Location] = field(default_factory=dict)

    def locate(self, path: SpecPath, prefer_key: bool = False) -> Location | None:
        """The best location for ``path``: the node itself, else its nearest ancestor."""
        probe = tuple(path)
        while True:
            table_order = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            for table in table_order:
                if probe in table:
                    return table[probe]
            if not probe:
                return None
            probe = probe[:-1]


def to_document(root: Node, file: str, max_nodes: int = MAX_NODES) -> Document:
    """Flatten a node tree into a :class:`Document`, enforcing a node budget (:data:`MAX_NODES` by default)."""
    doc = Document(data=None, file=file)
    budget = [max_nodes]

    def build(node: Node, path: SpecPath) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise SpecError(
                [
                    SpecIssue(
                        f"document expands to more than {max_nodes} nodes "
                        "(YAML aliases multiply content); refusing to load it"
                        if max_nodes >= MAX_NODES
                        else f"the spec, its bases and its --set values hold more than {MAX_NODES} nodes together; refusing to load this part",
                        path,
                        node.location,
                    )
                ]
            )
        doc.values[path] = node.location
        if isinstance(node, ScalarNode):
            return node.value
        if isinstance(node, SeqNode):
            return [build(child, path + (i,)) for i, child in enumerate(node.items)]
        assert isinstance(node, MapNode)
        out: dict[str, Any] = {}
        for key, key_loc, child in node.items:
            doc.keys[path + (key,)] = key_loc
            out[key] = build(child, path + (key,))
        return out

    doc.data = build(root, ())
    return doc
