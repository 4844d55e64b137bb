"""MkDocs hook: render rfsym's reStructuredText-flavoured docstrings as Markdown.

The docstrings are written for ``doctest`` and Sphinx-style readers: ``>>>`` examples,
``:func:`name``` roles and ``::`` literal blocks. mkdocstrings renders docstrings with the site's
Markdown extensions, so one preprocessor registered here turns doctest blocks into ``pycon``
code blocks, roles into code spans and ``::`` into ``:``. The pages themselves are untouched
except for the same conversions (they use fenced code already).
"""

from __future__ import annotations

import re

from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

_ROLE = re.compile(r":(?:func|class|meth|data|mod|attr|obj|exc|py:\w+):`~?([^`]+)`")


class _DocstringPreprocessor(Preprocessor):
    def run(self, lines):
        out, in_fence, in_doctest = [], False, False
        for line in lines:
            stripped = line.lstrip()
            if stripped.startswith("```"):
                in_fence = not in_fence
            if in_fence:
                out.append(line)
                continue
            if not in_doctest and stripped.startswith(">>>"):
                indent = line[: len(line) - len(stripped)]
                out.append(f"{indent}```pycon")
                in_doctest = True
            elif in_doctest and not stripped:
                out.append(f"{indent}```")
                in_doctest = False
            if not in_doctest:
                line = _ROLE.sub(r"`\1`", line)
                if line.rstrip().endswith("::") and not line.rstrip().endswith(":::"):
                    line = line.rstrip()[:-1]
            out.append(line)
        if in_doctest:
            out.append(f"{indent}```")
        return out


class DocstringExtension(Extension):
    def extendMarkdown(self, md):  # noqa: N802 (Markdown's API)
        md.preprocessors.register(_DocstringPreprocessor(md), "rfsym_docstrings", 40)


@event_priority(100)
def on_config(config):
    config.markdown_extensions.append(DocstringExtension())
    return config
