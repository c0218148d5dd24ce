"""Sphinx configuration for linlim's documentation (build: ``make docs``)."""

project = "linlim"
author = "the linlim developers"
copyright = "2026, the linlim developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_member_order = "bysource"
exclude_patterns = ["_build"]
html_theme = "alabaster"
napoleon_use_ivar = True  # Attributes as fields: no duplicate targets for same-named attributes
