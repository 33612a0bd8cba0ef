"""Refusals that name the setting they concern, in the words of whoever gave it.

A :class:`SettingError` message is a template with placeholders for settings: ``{fmt}`` (the
setting with the value it was given, passed as a keyword), ``{fmt=parquet}`` (with another
value) and ``{fmt=}`` (its name alone). ``str(exc)`` spells them as the Python API does
(``fmt='npy'``, ``overwrite=True``, ``keep_cols``); :meth:`SettingError.cli` as the command line
does (``--format npy``, ``--overwrite``, ``--keep-cols``). The CLI prints ``exc.cli()``; nothing
rewrites messages after the fact.
"""

from __future__ import annotations

import re

# setting (the Python keyword) -> its command-line flag
FLAGS = {
    "fmt": "--format", "out_dtype": "--dtype", "overwrite": "--overwrite", "verify": "--verify",
    "keep_cols": "--keep-cols", "on_invalid": "--on-invalid", "lon_col": "--lon-col", "lat_col": "--lat-col",
    "id_col": "--id-col", "on_error": "--on-error", "sep": "--sep", "writers": "--writers", "publish_partial": "--publish-partial",
    "chunk_points": "--chunk-points", "device": "--device", "precision": "--precision",
    "allow_incomplete": "--allow-incomplete", "compression": "--compress", "sort": "--sort",
}
_FIELD = re.compile(r"\{(\w+)(=([^{}]*))?\}")


def _python(name: str, value, bare: bool) -> str:
    if bare:
        return name
    return f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"


def _cli(name: str, value, bare: bool) -> str:
    flag = FLAGS.get(name, "--" + name.replace("_", "-"))
    if bare or value is True:
        return flag
    return f"{flag} {value}"


class SettingError(ValueError):
    """A refusal about settings; see the module docstring for the template."""

    def __init__(self, template: str, **given):
        self.template, self.given = template, given
        super().__init__(self._render(_python))

    def _render(self, spell) -> str:
        def sub(m):
            name, has_value, literal = m.group(1), m.group(2) is not None, m.group(3)
            if not has_value:
                return spell(name, self.given.get(name), name not in self.given)
            if literal == "":
                return spell(name, None, True)
            value = {"True": True, "False": False}.get(literal, literal)
            return spell(name, value, False)
        return _FIELD.sub(sub, self.template)

    def cli(self) -> str:
        """The message with command-line flags."""
        return self._render(_cli)
