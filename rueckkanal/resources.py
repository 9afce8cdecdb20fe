"""The files the code reads at run time, shipped inside the package and found with :mod:`importlib.resources`.

Everything under ``rueckkanal/data/`` is package data (``[tool.setuptools.package-data]`` in ``pyproject.toml``):
the XAntragsstatus XSD (``xoev/``), its code lists (``xoev/codelisten/``), the DIN SPEC 91379 character list
(``xoev/din-spec-91379/``) and the default Fachverfahren mappings (``fachverfahren/``). Nothing is read relative to
a source tree or to the working directory, so an installed wheel behaves the same from any directory. A deployment
points at its own mappings with ``RK_FACHVERFAHREN_DIR``; the shipped ones are only the default.

The files are handed out as file-system paths, because lxml and the settings take paths. A package imported from
a zip archive has no such paths; that is a :class:`~rueckkanal.errors.ConfigError` naming the cause, never a
half-working process (pip always installs wheels unpacked).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from rueckkanal.errors import ConfigError


def data_path(*parts: str) -> Path:
    """The path of ``rueckkanal/data/<parts>`` in the installed package (it need not exist: callers report that)."""
    resource = files("rueckkanal").joinpath("data", *parts)
    if not isinstance(resource, Path):
        raise ConfigError(f"rueckkanal/data/{'/'.join(parts)}: the package must be installed unpacked, not zipped")
    return resource
