"""nbdetect's errors: what is wrong, where (the argument or sample), and what to do, in a few lines.

Every refusal a student can meet through a public cell function is an :class:`NbdetectError`. In a notebook
IPython shows ``_render_traceback_()`` instead of the traceback (a short message; ``%tb`` still prints the
full one); the CLI prints one line (``--debug`` for the trace). Subclasses also derive from the builtin
error a caller would catch (``ValueError``, ``FileNotFoundError``...), so ``except ValueError`` keeps working.
"""
from __future__ import annotations


class NbdetectError(Exception):
    """``what`` is wrong, ``where`` (argument / sample / file), and the ``fix``."""

    title = "nbdetect could not do that"

    def __init__(self, what: str, fix: str = "", where: str = ""):
        self.what, self.fix, self.where = what, fix, where
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [_sentence(self.what)]
        if self.where:
            parts.append(f"Where: {self.where}.")
        if self.fix:
            parts.append(f"Fix: {_sentence(self.fix)}")
        return " ".join(parts)

    def lines(self) -> list[str]:
        out = [f"{type(self).__name__}: {_sentence(self.what)}"]
        if self.where:
            out.append(f"  where: {self.where}")
        if self.fix:
            out.append(f"  fix:   {_sentence(self.fix)}")
        return out

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of the traceback (run %tb for the full one)."""
        red, bold, reset = "\x1b[31m", "\x1b[1m", "\x1b[0m"
        head, *rest = self.lines()
        return [f"{red}{bold}{head}{reset}", *rest, "  (the full traceback: run %tb in the next cell)"]


def _sentence(text: str) -> str:
    """``text`` ending with one full stop (not after a question mark)."""
    text = text.rstrip(".")
    return text if text.endswith(("?", "!")) else text + "."


class InputError(NbdetectError, ValueError):
    """An argument a cell was given cannot be used."""


class DataError(NbdetectError, ValueError):
    """A sample, an annotation or a dataset file is wrong."""


class MissingError(NbdetectError, FileNotFoundError):
    """A file, folder or notebook variable that is needed does not exist."""


class WriteError(NbdetectError, OSError):
    """A file cannot be written where it was asked (no such folder, no permission, a full disk)."""


class CheckpointError(NbdetectError, ValueError):
    """A checkpoint cannot be used for what was asked (wrong kind, other data, unreadable)."""


class RunError(NbdetectError, RuntimeError):
    """A run cannot start or continue (another run is active, its folder is taken)."""


class DistributedError(RunError):
    """A run on more than one process cannot start (fork after CUDA, no connection) or one of them failed."""


def choose_from(table: dict, name, argument: str):
    """``table[name]``, or an InputError listing the choices."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown {argument} {name!r}", where=argument,
                         fix=f"choose one of: {', '.join(map(str, table))}") from None


class reading:
    """``with reading(path, line=n):`` re-raises any error while reading a dataset file as a DataError that
    names the file (and line or annotation), instead of a bare ParseError / KeyError / ValueError."""

    def __init__(self, path, line: int | None = None, what: str = "", fix: str = ""):
        self.path, self.line, self.what, self.fix = path, line, what, fix

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, NbdetectError) or not isinstance(exc, Exception):
            return False
        where = f"{self.path}" + (f", line {self.line}" if self.line is not None else "")
        what = self.what or "this file could not be read"
        reason = " ".join(str(exc).split())  # a parser's message spans lines: one line, shortened
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        raise DataError(f"{what}: {type(exc).__name__}: {reason}", where=where,
                        fix=self.fix or "fix or remove this file (a truncated image: re-copy it; an annotation: "
                                         "check its format)") from exc


def positive_int(value, argument: str, fix: str) -> int:
    """``value`` as an int of at least 1 (numpy ints too); a bool, a fraction or a string is refused."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputError(f"{argument}={value!r} is not a whole number", where=argument, fix=fix)
    value = int(value)
    if value < 1:
        raise InputError(f"{argument}={value} must be at least 1", where=argument, fix=fix)
    return value
