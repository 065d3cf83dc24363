"""The API reference's reading of the package's docstrings (Sphinx autodoc with napoleon).

The package documents module constants and class attributes with prose (``#: What it is: ...``),
not with napoleon's ``type: description`` convention, so an attribute docstring is read as
description only; a leading phrase before a colon is not taken for a type. Names of the
libraries the package builds on (NumPy, torch, pathlib, submitit, anywidget) are not cross-linked:
the book builds offline, without their inventories. Shapes and prose in a field's type slot
(``(size, size) uint8``) name no class, so undotted targets and private names are not checked
either; a dotted name of the package that does not resolve still fails the build.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.ext.napoleon.docstring import GoogleDocstring

#: Modules outside the package whose classes the signatures and fields name.
EXTERNAL = r"(numpy|pathlib|torch|submitit|anywidget|PIL|pandas|matplotlib|ipywidgets|concurrent)(\..*)?"


def _description_only(self: GoogleDocstring) -> list[str]:
    return self._format_field("", "", self._dedent(self._consume_to_end()))


def _ignore_external(app: Sphinx, config) -> None:
    ignored = [("py:class", EXTERNAL), ("py:class", r"[^.]*"), ("py:class", r".*\._[A-Za-z].*")]
    config.nitpick_ignore_regex = [*config.nitpick_ignore_regex, *ignored]


def setup(app: Sphinx) -> dict:
    GoogleDocstring._parse_attribute_docstring = _description_only
    app.connect("config-inited", _ignore_external)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
