"""The `genfast` command (also `python -m genfast`): `genfast <workflow> <verb> ...`.

    genfast info                      versions, which ops are native on which device, build flags
    genfast bench --op NAME           reference vs torch.compile(reference) vs native, one process
    genfast style  transfer|apply|train|video|export-onnx
    genfast text   train|sample
    genfast gan | dream | rl | latent | adversarial  ...   (each workflow's own verbs)

Older spellings stay as aliases: `genfast stylize` (= style transfer, or style apply with --model),
`genfast train-stylizer` (= style train), `genfast video` (= style video), `genfast export-onnx`.

Each workflow's `cli.py` has `register(sub)`, which adds its parser through `command()` below; a
command parses its options into the library's arguments, calls the library and prints what it did.
What the library raises is turned into one line and an exit code in one place: genfast/cli/errors.py.
"""

from __future__ import annotations

import argparse
import importlib

from genfast.cli import errors

#: the workflows, in the order `genfast --help` lists them; each is genfast.<name>.cli with register(sub)
WORKFLOWS = ("style", "text", "gan", "dream", "rl", "latent", "adversarial")


def command(sub, name: str, func, *, prog: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """Add the command `name` under `sub` running `func(args)`; errors are reported as `prog`."""
    p = sub.add_parser(name, **kwargs)
    p.set_defaults(func=func, _parser=p, _prog=prog or p.prog)
    return p


def group(sub, name: str, **kwargs):
    """Add `genfast <name>` and return the subparsers its verbs go in."""
    p = sub.add_parser(name, **kwargs)
    return p.add_subparsers(dest=f"{name}_verb", required=True, metavar="VERB")


def build_parser() -> argparse.ArgumentParser:
    from genfast.cli import bench, info

    p = argparse.ArgumentParser(prog="genfast", description="Fast classic generative deep learning: "
                                "`genfast <workflow> <verb> -h` for each command.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="aliases kept for scripts: stylize, train-stylizer, video, export-onnx")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info.register(sub)
    bench.register(sub)
    for name in WORKFLOWS:
        try:
            module = importlib.import_module(f"genfast.{name}.cli")
        except ModuleNotFoundError as e:
            if e.name in (f"genfast.{name}", f"genfast.{name}.cli"):
                continue        # a workflow this build does not have yet
            raise
        module.register(sub)
    from genfast.style import cli as style_cli

    style_cli.register_aliases(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return errors.run(args)


__all__ = ["main", "build_parser", "command", "group", "WORKFLOWS"]
