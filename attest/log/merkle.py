"""The Merkle tree over tiles: pure functions, no I/O (RFC 9162 section 2.1, C2SP tlog-tiles).

Tree state is stored as C2SP hash tiles of height 8: the tile at level L, index N holds the
hashes of the perfect subtrees of height 8L numbered 256N .. 256N+255 (a partial tile, fewer).
A node of any height h is computed from the tile row at level h // 8. Proofs are planned as
lists of node addresses first (:func:`inclusion_plan`, :func:`consistency_plan`), so the
caller reads every tile it needs in one query, then :func:`resolve` hashes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from attest.verify._tlog import leaf_hash, node_hash

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Node",
    "append",
    "consistency_plan",
    "edge_tiles",
    "inclusion_plan",
    "parse_tile_index",
    "resolve",
    "root_plan",
    "tile_path_index",
    "tiles_for",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

Node = tuple[int, int]  # (height, index): the perfect subtree over leaves [i*2^h, (i+1)*2^h)
Tiles = Mapping[tuple[int, int], bytes]  # (level, index) -> concatenated 32-byte hashes


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2), RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees that make up [start, end), left to right (start aligned)."""
    nodes: list[Node] = []
    while start < end:
        height = (end - start).bit_length() - 1
        while start & ((1 << height) - 1):
            height -= 1
        nodes.append((height, start >> height))
        start += 1 << height
    return nodes


# Each proof element is the hash of a range: a right fold of its perfect subtrees.
Plan = list[list[Node]]


def inclusion_plan(index: int, size: int) -> Plan:
    """RFC 9162 section 2.1.3.1 PATH(m, D[n]) as ranges, leaf to root."""
    out: Plan = []

    def path(m: int, start: int, end: int) -> None:
        n = end - start
        if n == 1:
            return
        k = _largest_power_below(n)
        if m < k:
            path(m, start, start + k)
            out.append(_range_nodes(start + k, end))
        else:
            path(m - k, start + k, end)
            out.append(_range_nodes(start, start + k))

    path(index, 0, size)
    return out


def consistency_plan(first: int, second: int) -> Plan:
    """RFC 9162 section 2.1.4.1 PROOF(m, D[n]) as ranges (empty when m is 0 or m == n)."""
    out: Plan = []

    def subproof(m: int, start: int, end: int, whole: bool) -> None:
        n = end - start
        if m == n:
            if not whole:
                out.append(_range_nodes(start, end))
            return
        k = _largest_power_below(n)
        if m <= k:
            subproof(m, start, start + k, whole)
            out.append(_range_nodes(start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            out.append(_range_nodes(start, start + k))

    if 0 < first < second:
        subproof(first, 0, second, True)
    return out


def root_plan(size: int) -> Plan:
    return [_range_nodes(0, size)] if size else []


def tiles_for(plan: Plan) -> set[tuple[int, int]]:
    """The (level, index) of every tile the plan's nodes are computed from."""
    needed: set[tuple[int, int]] = set()
    for element in plan:
        for height, index in element:
            level, sub = divmod(height, TILE_HEIGHT)
            first = index << sub
            last = first + (1 << sub) - 1
            needed.update((level, n) for n in range(first // TILE_WIDTH, last // TILE_WIDTH + 1))
    return needed


def _node(tiles: Tiles, height: int, index: int) -> bytes:
    level, sub = divmod(height, TILE_HEIGHT)
    first = index << sub
    tile = tiles[(level, first // TILE_WIDTH)]
    offset = (first % TILE_WIDTH) * 32
    count = 1 << sub
    if len(tile) < offset + count * 32:
        raise KeyError((level, first // TILE_WIDTH))
    row = [tile[offset + 32 * i : offset + 32 * (i + 1)] for i in range(count)]
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def resolve(plan: Plan, tiles: Tiles) -> list[bytes]:
    """The hashes of a plan, from tiles (KeyError when a needed tile is missing or short)."""
    out = []
    for element in plan:
        hashes = [_node(tiles, h, i) for h, i in element]
        value = hashes[-1]
        for left in reversed(hashes[:-1]):
            value = node_hash(left, value)
        out.append(value)
    return out


def edge_tiles(size: int) -> list[tuple[int, int, int]]:
    """The partial tiles of a tree of ``size`` leaves: (level, index, width) per level."""
    out = []
    level, count = 0, size
    while count:
        if count % TILE_WIDTH:
            out.append((level, count // TILE_WIDTH, count % TILE_WIDTH))
        count //= TILE_WIDTH
        level += 1
    return out


def _tile_root(hashes: list[bytes]) -> bytes:
    row = hashes
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def append(size: int, edges: Tiles, leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Append ``leaves`` (leaf bytes) to a tree of ``size``: every tile that changed.

    ``edges`` holds the tree's partial tiles (:func:`edge_tiles`); the answer maps
    (level, index) to the tile's new contents, full tiles (256 hashes) included.
    """
    rows: dict[int, list[bytes]] = {}
    counts: dict[int, int] = {}
    for level, index, width in edge_tiles(size):
        tile = edges[(level, index)]
        if len(tile) != width * 32:
            raise ValueError(f"tile {level}/{index} has {len(tile) // 32} hashes, not {width}")
        rows[level] = [tile[32 * i : 32 * (i + 1)] for i in range(width)]
    changed: dict[tuple[int, int], bytes] = {}

    def push(level: int, value: bytes) -> None:
        count = counts.setdefault(level, size // TILE_WIDTH**level)
        row = rows.setdefault(level, [])
        row.append(value)
        counts[level] = count + 1
        changed[(level, count // TILE_WIDTH)] = b"".join(row)
        if len(row) == TILE_WIDTH:
            rows[level] = []
            push(level + 1, _tile_root(row))

    for leaf in leaves:
        push(0, leaf_hash(leaf))
    return changed


def tile_path_index(index: int) -> str:
    """C2SP tlog-tiles: N in groups of three digits, every group but the last prefixed x."""
    digits = f"{index:d}"
    digits = digits.zfill((len(digits) + 2) // 3 * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_index(parts: list[str]) -> int | None:
    """N from its path segments (``x001``, ``x234``, ``067``), or None when not canonical."""
    if not parts or len(parts) > 7:
        return None
    *head, last = parts
    # ASCII digits only: str.isdigit() admits superscripts, which int() refuses.
    if not all(len(p) == 4 and p[0] == "x" and p[1:].isascii() and p[1:].isdigit() for p in head):
        return None
    if not (len(last) == 3 and last.isascii() and last.isdigit()):
        return None
    value = int("".join(p[1:] for p in head) + last)
    if tile_path_index(value) != "/".join(parts):
        return None  # a leading x000 group: not the canonical encoding
    return value
