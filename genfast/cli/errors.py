"""One map from exception types to what the command line prints and its exit code.

Library errors carry their own clear message (naming the argument, what was expected, what came);
commands do not catch them. Here they become one line on stderr, "genfast <command>: <message>",
and an exit code:

    0    done
    1    the work failed for a reason outside the arguments (a disk error while writing, ...)
    2    a bad argument or input: the message says which and why
    130  interrupted (Ctrl-C); training checkpointed first and says where

An ArgumentError names its argument by its Python name (`steps`); the message then shows the
command's own option for it (`--steps`), read off the parser, never off the message text.
Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

from genfast.training.interrupt import TrainingInterrupted

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: errors whose message already says what is wrong with the input (checked in this order)
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, LookupError, FileNotFoundError,
                                                  IsADirectoryError, NotADirectoryError, ImportError,
                                                  FloatingPointError)


def _option_name(parser, argument: str) -> str | None:
    """The command-line spelling of the library argument `argument` in `parser`, if it has one."""
    if parser is None:
        return None
    for action in parser._actions:   # argparse keeps no public list of its actions
        if action.dest == argument:
            longs = [s for s in action.option_strings if s.startswith("--")]
            if longs:
                return longs[0]
            if action.option_strings:
                return action.option_strings[0]
            return action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    return None


def message(e: BaseException, parser=None) -> str:
    """The line the user sees for `e`."""
    argument = getattr(e, "argument", None)      # ArgumentError, or an exception made by checks.named
    if argument is not None and getattr(e, "where", None) is None:
        option = _option_name(parser, argument)
        if option is not None:
            return f"{option}: {e.detail}"
    if isinstance(e, TrainingInterrupted):
        return f"{e}; run the same command again to continue" if e.checkpoint is not None else str(e)
    if isinstance(e, KeyboardInterrupt):
        return str(e) or "interrupted"
    return str(e) or type(e).__name__


def exit_code(e: BaseException) -> int | None:
    """The exit code for `e`, or None for an unexpected exception (a bug: re-raised)."""
    if isinstance(e, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    from genfast._native import NativeUnavailableError

    if isinstance(e, USER_ERRORS + (NativeUnavailableError,)):
        return EXIT_USAGE
    if isinstance(e, OSError):
        return EXIT_FAILED
    return None


def run(args) -> int:
    """Call the command's function; map what it raises to a message and an exit code."""
    prog = getattr(args, "_prog", "genfast")
    try:
        code = args.func(args)
    except (Exception, KeyboardInterrupt) as e:    # noqa: BLE001 - mapped below, re-raised when unknown
        code = exit_code(e)
        if code is None:
            raise
        print(f"{prog}: {message(e, getattr(args, '_parser', None))}", file=sys.stderr)
        return code
    return EXIT_OK if code is None else code
