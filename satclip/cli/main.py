"""The ``satclip`` command: one subcommand per module of this package (``info``, ``demo``,
``train``, ``embed``, ``evaluate``, ``embed-images``, ``locate``), each with ``add_arguments(parser)`` and ``run(args)``."""

from __future__ import annotations

import argparse
import os
import sys

from . import demo, embed, embed_images, evaluate, info, locate, train

COMMANDS = {"info": info, "demo": demo, "train": train, "embed": embed, "evaluate": evaluate,
            "embed-images": embed_images, "locate": locate}


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    p = argparse.ArgumentParser(prog="satclip", description="SatCLIP location encoders")
    p.add_argument("--version", action="version", version=f"satclip {__version__}")
    sub = p.add_subparsers(dest="cmd")
    for name, mod in COMMANDS.items():
        sp = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.__doc__))
        mod.add_arguments(sp)
        sp.set_defaults(fn=mod.run)
    return p


def _share_cores_with_the_writer() -> None:
    """The streaming embedder shares the cores between the encoder's OpenMP threads and its
    reader/writer threads; OpenMP threads that spin while waiting (libgomp's default) take CPU
    from the writer (benchmarks/results/embed-wait-policy.md: grid -> Parquet faster with passive
    waiting). libgomp reads the policy when torch loads, so it is set here, before anything
    imports torch, and never over a value the user set. The command only: ``import satclip``
    leaves the process alone."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv=None) -> int:
    _share_cores_with_the_writer()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:  # `satclip` alone: what it can do
        parser.print_help()
        return 0
    try:
        rc = args.fn(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows here, not in the interpreter's exit
        return rc
    except BrokenPipeError:  # `satclip info | head`: the reader had what it wanted; no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's exit flush does not fail again
        return 0


if __name__ == "__main__":
    sys.exit(main())
