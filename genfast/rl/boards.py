"""The rules of the two games and how a board becomes a table index: the one place they are written.

Tic-tac-toe. Cell a = 3 * row + col (0..8) is PettingZoo's action a and the flat index of its
(3, 3, 2) observation (`observation[a // 3, a % 3]`); a board is nine cells, EMPTY, X or O, and its
code is sum(cell[a] * 3**a) (0 .. 3**9 - 1 = 19682). X moves first. The table engines index
positions by code (genfast.ops.rl_tictactoe_td); `outcome_table()` tells them which codes end the game.

Flippers. A 3 x 3 board of tiles, each with a dot on one side; bit a of a board (0..511) is 1 when
tile a shows its dot. A move flips one tile (board ^ 1 << a); the goal is exactly three dots in one
row or one column and blank tiles everywhere else (`FLIPPERS_GOALS`, six boards).

Both games look the same from the eight symmetries of the square (`SYMMETRIES`, permutations of the
cells); `tictactoe_index_map(symmetry=True)` and `flippers_index_map(symmetry=True)` let symmetric
positions share one table entry.
"""

from __future__ import annotations

import functools

import numpy as np

from genfast.checks import ArgumentError, is_int

CELLS = 9
EMPTY, X, O = 0, 1, 2
MARKS = {EMPTY: " ", X: "X", O: "O"}
POW3 = tuple(3 ** a for a in range(CELLS))
CODES = 3 ** CELLS                      # 19683 tic-tac-toe codes
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8),   # rows
         (0, 3, 6), (1, 4, 7), (2, 5, 8),   # columns
         (0, 4, 8), (2, 4, 6))              # diagonals
#: outcome_table() values
ONGOING, X_WINS, O_WINS, DRAW = 0, 1, 2, 3


def _symmetries() -> tuple[tuple[int, ...], ...]:
    """The 8 symmetries of the square as cell permutations: cell a goes to cell perm[a]."""
    maps = [lambda r, c: (r, c), lambda r, c: (c, 2 - r), lambda r, c: (2 - r, 2 - c), lambda r, c: (2 - c, r),
            lambda r, c: (c, r), lambda r, c: (r, 2 - c), lambda r, c: (2 - r, c), lambda r, c: (2 - c, 2 - r)]
    return tuple(tuple(3 * m(a // 3, a % 3)[0] + m(a // 3, a % 3)[1] for a in range(CELLS)) for m in maps)


SYMMETRIES = _symmetries()


# ------------------------------------------------------------------------------------ tic-tac-toe

def encode(cells) -> int:
    """The code of nine cells (EMPTY, X, O)."""
    return sum(int(v) * POW3[a] for a, v in enumerate(cells))


def decode(code: int) -> list[int]:
    """The nine cells of a code."""
    check_code(code)
    return [(code // POW3[a]) % 3 for a in range(CELLS)]


def check_code(code, name: str = "code") -> int:
    if not is_int(code) and not isinstance(code, np.integer):
        raise ArgumentError(name, f"expected a board code (an integer in [0, {CODES - 1}]), got {code!r}")
    if not 0 <= int(code) < CODES:
        raise ArgumentError(name, f"expected a board code in [0, {CODES - 1}], got {int(code)}")
    return int(code)


def winner(cells) -> int:
    """X or O when that player has three in a line, else EMPTY."""
    for a, b, c in LINES:
        if cells[a] != EMPTY and cells[a] == cells[b] == cells[c]:
            return cells[a]
    return EMPTY


def outcome(cells) -> int:
    """ONGOING, X_WINS, O_WINS or DRAW (a full board without a line)."""
    w = winner(cells)
    if w == X:
        return X_WINS
    if w == O:
        return O_WINS
    return DRAW if all(v != EMPTY for v in cells) else ONGOING


def to_move(cells) -> int:
    """Whose turn it is on a board of legal play: X when both have as many marks."""
    return X if sum(v == X for v in cells) == sum(v == O for v in cells) else O


def legal_moves(cells) -> list[int]:
    """The empty cells of a board whose game is not over (none once it is)."""
    if outcome(cells) != ONGOING:
        return []
    return [a for a in range(CELLS) if cells[a] == EMPTY]


def is_legal_position(cells) -> bool:
    """A board that legal play reaches: X has as many marks as O or one more, and at most the
    player who moved last has a line (and X, moving first, wins with one mark more)."""
    nx, no = sum(v == X for v in cells), sum(v == O for v in cells)
    if nx - no not in (0, 1):
        return False
    xl = any(cells[a] == cells[b] == cells[c] == X for a, b, c in LINES)
    ol = any(cells[a] == cells[b] == cells[c] == O for a, b, c in LINES)
    return not (xl and ol) and not (xl and nx == no) and not (ol and nx != no)


def render(cells, *, numbers: bool = False) -> str:
    """The board as text; `numbers` shows each empty cell's move number (1-9 = action 0-8)."""
    def show(a):
        return str(a + 1) if numbers and cells[a] == EMPTY else MARKS[cells[a]]
    rows = [" " + " | ".join(show(3 * r + c) for c in range(3)) for r in range(3)]
    return "\n---+---+---\n".join(rows)


def board_text(cells) -> str:
    """A board in one line for error messages: 'X.O|...|..X'."""
    ch = {EMPTY: ".", X: "X", O: "O"}
    return "|".join("".join(ch[cells[3 * r + c]] for c in range(3)) for r in range(3))


def check_move(cells, move) -> int:
    """`move` if it is legal on `cells`, else an ArgumentError naming the move and the board."""
    if not (is_int(move) or isinstance(move, np.integer)) or not 0 <= int(move) < CELLS:
        raise ArgumentError("move", f"expected a cell in [0, 8], got {move!r} on the board {board_text(cells)}")
    move = int(move)
    if outcome(cells) != ONGOING:
        raise ArgumentError("move", f"move {move}: the game is over on the board {board_text(cells)}")
    if cells[move] != EMPTY:
        raise ArgumentError("move", f"move {move}: cell {move} is taken ({MARKS[cells[move]]}) on the board "
                                    f"{board_text(cells)}")
    return move


@functools.lru_cache(maxsize=None)
def _cells() -> np.ndarray:
    codes = np.arange(CODES)
    table = np.stack([(codes // POW3[a]) % 3 for a in range(CELLS)], axis=1).astype(np.int8)
    table.setflags(write=False)
    return table


def cells_table() -> np.ndarray:
    """decode() of every code, (19683, 9) int8 (read-only)."""
    return _cells()


@functools.lru_cache(maxsize=None)
def _outcomes() -> np.ndarray:
    table = np.array([outcome(cells) for cells in _cells().tolist()], dtype=np.int8)
    table.setflags(write=False)
    return table


def outcome_table() -> np.ndarray:
    """outcome() of every code, (19683,) int8 (read-only): what the engines use to end a game."""
    return _outcomes()


@functools.lru_cache(maxsize=None)
def _reachable() -> tuple[int, ...]:
    seen, frontier = {0}, [0]
    while frontier:
        nxt = []
        for code in frontier:
            cells = decode(code)
            mark = to_move(cells)
            for a in legal_moves(cells):
                child = code + mark * POW3[a]
                if child not in seen:
                    seen.add(child)
                    nxt.append(child)
        frontier = nxt
    return tuple(sorted(seen))


def reachable_codes() -> tuple[int, ...]:
    """Every position legal play reaches from the empty board (5 478, terminal ones included), sorted."""
    return _reachable()


def transform(cells, perm) -> list[int]:
    out = [EMPTY] * CELLS
    for a in range(CELLS):
        out[perm[a]] = cells[a]
    return out


def canonical(code: int) -> int:
    """The smallest code among the eight symmetric images of a board."""
    cells = decode(code)
    return min(encode(transform(cells, perm)) for perm in SYMMETRIES)


@functools.lru_cache(maxsize=None)
def _ttt_map(symmetry: bool) -> np.ndarray:
    if symmetry:   # canonical() of every code at once: cell perm[a] of an image is cell a of the board
        cells, pow3 = _cells().astype(np.int64), np.array(POW3, dtype=np.int64)
        images = [cells[:, np.argsort(perm)] @ pow3 for perm in SYMMETRIES]
        table = np.min(images, axis=0)
    else:
        table = np.arange(CODES, dtype=np.int64)
    table.setflags(write=False)
    return table


def tictactoe_index_map(symmetry: bool = False) -> np.ndarray:
    """code -> table entry, (19683,) int64: the identity, or with `symmetry` the canonical code."""
    return _ttt_map(bool(symmetry))


# ------------------------------------------------------------- PettingZoo tictactoe_v3 observations

def to_observation(cells, mark: int, *, turn: bool) -> dict:
    """tictactoe_v3's observation of `cells` for the player of `mark` (turn: whether it is to move)."""
    planes = np.zeros((3, 3, 2), dtype=np.int8)
    for a in range(CELLS):
        if cells[a] != EMPTY:
            planes[a // 3, a % 3, 0 if cells[a] == mark else 1] = 1
    mask = np.array([int(turn and v == EMPTY) for v in cells], dtype=np.int8)
    return {"observation": planes, "action_mask": mask}


def read_observation(observation, name: str = "observation") -> tuple[list[int], int, bool]:
    """(cells, the observer's mark, whether it is the observer's turn) from PettingZoo tictactoe_v3's
    observation: a dict with "observation" (3, 3, 2) (plane 0: the observer's marks, plane 1: the
    other player's; [a // 3, a % 3] is cell a) and "action_mask" (9,); or the (3, 3, 2) planes
    alone (then the observer is taken to be the player to move)."""
    mask = None
    if isinstance(observation, dict):
        if "observation" not in observation:
            raise ArgumentError(name, f"expected PettingZoo's dict with 'observation' and 'action_mask', got the "
                                      f"keys {sorted(observation)}")
        mask = observation.get("action_mask")
        observation = observation["observation"]
    planes = np.asarray(observation)
    if planes.shape != (3, 3, 2) or not np.isin(planes, (0, 1)).all():
        raise ArgumentError(name, f"expected (3, 3, 2) planes of 0/1 (PettingZoo tictactoe_v3), got shape "
                                  f"{planes.shape}" + ("" if planes.shape != (3, 3, 2) else " with other values"))
    planes = planes.astype(np.int8)
    mine, theirs = planes[..., 0].reshape(CELLS), planes[..., 1].reshape(CELLS)
    if (mine & theirs).any():
        raise ArgumentError(name, f"cells {np.flatnonzero(mine & theirs).tolist()} hold both players' marks")
    d = int(mine.sum()) - int(theirs.sum())
    if d not in (-1, 0, 1):
        raise ArgumentError(name, f"{int(mine.sum())} against {int(theirs.sum())} marks cannot come from legal play")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (CELLS,) or not np.isin(mask, (0, 1)).all():
            raise ArgumentError(name, f"expected action_mask of nine 0/1, got {mask.tolist()}")
        mask = mask.astype(np.int8)
    if d == 1:
        me = X                  # X has moved once more than O
    elif d == -1:
        me = O
    elif any(mine[a] and mine[b] and mine[c] or theirs[a] and theirs[b] and theirs[c] for a, b, c in LINES):
        me = O if any(mine[a] and mine[b] and mine[c] for a, b, c in LINES) else X   # O's last move won
    else:
        me = O if mask is not None and not mask.any() else X    # X to move: the observer unless its mask is empty
    other = O if me == X else X
    cells = [me if mine[a] else other if theirs[a] else EMPTY for a in range(CELLS)]
    if not is_legal_position(cells):
        raise ArgumentError(name, f"the board {board_text(cells)} cannot come from legal play")
    turn = to_move(cells) == me and outcome(cells) == ONGOING
    if mask is not None and outcome(cells) == ONGOING:     # (tictactoe_v3 leaves a mask on a finished board)
        if mask.any() and not turn:
            raise ArgumentError(name, f"action_mask {mask.tolist()} offers moves, but the board "
                                      f"{board_text(cells)} is not the observer's turn")
        if mask.any() and mask.tolist() != [int(v == EMPTY) for v in cells]:
            raise ArgumentError(name, f"action_mask {mask.tolist()} does not match the empty cells of the board "
                                      f"{board_text(cells)}")
        turn = bool(mask.any())
    return cells, me, turn


# ----------------------------------------------------------------------------------------- flippers

BOARDS = 2 ** CELLS                     # 512 flippers boards
FLIPPERS_GOALS = tuple(sorted([0b111 << (3 * r) for r in range(3)] + [0b001001001 << c for c in range(3)]))


def is_goal(board: int) -> bool:
    return board in FLIPPERS_GOALS


def flip(board: int, move: int) -> int:
    return board ^ (1 << move)


def check_board(board, name: str = "board") -> int:
    if not (is_int(board) or isinstance(board, np.integer)) or not 0 <= int(board) < BOARDS:
        raise ArgumentError(name, f"expected a flippers board in [0, {BOARDS - 1}], got {board!r}")
    return int(board)


def bits(board: int) -> np.ndarray:
    """The nine tiles of a board (1: dot), (9,) int8: the Gymnasium observation."""
    return np.array([(board >> a) & 1 for a in range(CELLS)], dtype=np.int8)


def from_bits(tiles) -> int:
    return sum(int(v) << a for a, v in enumerate(tiles))


def render_flippers(board: int, *, dot: str = "o", blank: str = ".") -> str:
    return "\n".join(" ".join(dot if board >> (3 * r + c) & 1 else blank for c in range(3)) for r in range(3))


def parse_flippers(text: str, name: str = "board") -> int:
    """A board from nine 0/1 (or o/.) characters row by row ('010010010'; spaces, '|' and '/' are
    ignored) or from its number 0-511."""
    raw = str(text).strip()
    if raw.isascii() and raw.isdigit() and len(raw) != CELLS:
        return check_board(int(raw), name)
    tiles = [ch for ch in raw if ch not in " |/,"]
    ones, zeros = set("1oO#*x"), set("0.-_")
    if len(tiles) != CELLS or any(ch not in ones | zeros for ch in tiles):
        raise ArgumentError(name, f"expected nine tiles (0/1 or o/., row by row, e.g. 010010010) or a number "
                                  f"0-511, got {raw!r}")
    return sum(1 << a for a, ch in enumerate(tiles) if ch in ones)


def read_flippers(observation, name: str = "observation") -> int:
    """The board (0..511) of a Gymnasium Flippers observation: nine 0/1 tiles (row by row), the
    board number itself, or text (parse_flippers)."""
    if is_int(observation) or isinstance(observation, np.integer):
        return check_board(observation, name)
    if isinstance(observation, str):
        return parse_flippers(observation, name)
    tiles = np.asarray(observation)
    if tiles.shape != (CELLS,) or not np.isin(tiles, (0, 1)).all():
        raise ArgumentError(name, f"expected nine 0/1 tiles (the Flippers observation) or a board number 0-511, got "
                                  f"{tiles.tolist() if tiles.size <= 16 else tiles.shape}")
    return from_bits(tiles)


def goal_mask() -> np.ndarray:
    """(512,) bool: which boards are goals."""
    mask = np.zeros(BOARDS, dtype=bool)
    mask[list(FLIPPERS_GOALS)] = True
    return mask


def transform_board(board: int, perm) -> int:
    return sum(1 << perm[a] for a in range(CELLS) if board >> a & 1)


@functools.lru_cache(maxsize=None)
def _flippers_map(symmetry: bool) -> np.ndarray:
    if not symmetry:
        table = np.arange(BOARDS * CELLS, dtype=np.int64).reshape(BOARDS, CELLS)
    else:
        table = np.array([[min(transform_board(s, p) * CELLS + p[a] for p in SYMMETRIES) for a in range(CELLS)]
                          for s in range(BOARDS)], dtype=np.int64)
    table.setflags(write=False)
    return table


def flippers_index_map(symmetry: bool = False) -> np.ndarray:
    """(board, move) -> table entry, (512, 9) int64: board * 9 + move, or with `symmetry` the
    smallest such entry among the eight symmetric images of the pair."""
    return _flippers_map(bool(symmetry))
