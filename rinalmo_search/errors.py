"""The one error hierarchy of RiNALMo-Search.

The CLI turns every :class:`RinalmoSearchError` into a one-line message and a non-zero exit
code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class RinalmoSearchError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(RinalmoSearchError):
    """A user-supplied file or value is malformed (the message names the file and line)."""


class ConfigError(RinalmoSearchError):
    """A setting or configuration file is invalid or inconsistent."""


class StoreError(RinalmoSearchError):
    """The vector store refused an operation or holds incompatible data."""


class InferenceError(RinalmoSearchError):
    """A model could not be loaded or run (local or remote)."""


class ToolError(RinalmoSearchError):
    """An external program (MAFFT, Infernal, BLAST, ...) is missing or failed.

    Arguments:
        message: what went wrong, in one line.
        command: the command line that was run, if any.
        stderr: the program's standard error; its last lines are kept in the message.
    """

    def __init__(self, message: str, *, command: list[str] | None = None, stderr: str = "") -> None:
        self.command = command or []
        self.stderr = stderr
        tail = " | ".join(line for line in stderr.strip().splitlines()[-5:] if line.strip())
        super().__init__(f"{message}: {tail}" if tail else message)
