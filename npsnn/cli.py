"""What every ``python -m npsnn <command>`` shares.

* :func:`config_arg`: the one parser of ``--config`` (a JSON object, or the path of a JSON
  file holding one);
* :class:`UsageError` and :func:`fail`: bad input is reported as one line on stderr with
  exit code 2, never as a traceback;
* :func:`parse`: argparse without ``SystemExit`` (``--help`` returns 0, a usage error 2).

The commands themselves live with their wing (``train/cli.py``, ``golden/cli.py``,
``io/cli.py``, ...); ``npsnn/__main__.py`` lists them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


class UsageError(ValueError):
    """Bad command-line input: printed as one line, exit code 2."""


def fail(prog: str, error) -> int:
    """Print ``<prog>: error: <message>`` on stderr -> exit code 2."""
    text = str(error)
    if isinstance(error, KeyError):          # KeyError reprs its argument; show it plainly
        text = str(error.args[0]) if error.args else text
    elif isinstance(error, OSError) and error.strerror and error.filename is not None:
        text = f"{error.filename}: {error.strerror}"     # not "[Errno 28] ...: 'x'"
    print(f"{prog}: error: {text}", file=sys.stderr)
    return 2


def parse(parser: argparse.ArgumentParser, argv):
    """-> (namespace, None), or (None, exit code) for ``--help`` (0) or a usage error (2,
    already printed by argparse)."""
    try:
        return parser.parse_args(list(argv)), None
    except SystemExit as e:
        return None, int(e.code or 0)


def config_arg(text: str, flag: str = "--config") -> dict:
    """A model config from the command line: a JSON object, or the path of a ``.json``
    file that holds one. -> dict; :class:`UsageError` otherwise (also for a file beyond
    ``npsnn.io.limits.MAX_TEXT_BYTES`` or JSON nested beyond ``MAX_DEPTH``)."""
    from .io.limits import load_json, read_file
    try:
        is_file = Path(text).is_file()
    except (OSError, ValueError):            # e.g. a long JSON string: "file name too long"
        is_file = False
    if is_file:
        try:
            text = read_file(text, "JSON config", "MAX_TEXT_BYTES").decode("utf-8")
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise UsageError(f"{flag}: cannot read {text} ({e})") from None
    elif text.strip().endswith(".json"):
        raise UsageError(f"{flag} {text}: no such file")
    try:
        config = load_json(text, flag)
    except ValueError as e:
        raise UsageError(f"{e}: it is neither a JSON object nor a .json file; e.g. "
                         f"{flag} '{{\"dim\": 48, \"depths\": [1, 2, 1]}}'") from None
    if not isinstance(config, dict):
        raise UsageError(f"{flag} must be a JSON object, got {type(config).__name__}")
    return config
