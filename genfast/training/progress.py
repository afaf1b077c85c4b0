"""The progress bar every long-running genfast loop shows (tqdm), built in one place."""

from __future__ import annotations


def progress_bar(total: int | None = None, *, desc: str, unit: str = "step", enabled: bool = True,
                 initial: int = 0, leave: bool = True):
    """A tqdm bar (to stderr, resizing with the terminal); `enabled=False` gives one that shows
    nothing but takes the same calls, so loops need no `if bar`."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True,
                leave=leave)


def postfix(bar, values: dict, fmt: str = ".3g") -> None:
    """Show `values` (name -> number) after the bar, without forcing a redraw."""
    bar.set_postfix({k: (format(v, fmt) if isinstance(v, float) else v) for k, v in values.items()}, refresh=False)
