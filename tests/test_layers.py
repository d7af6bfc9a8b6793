"""Imports point down the floors: media decodes and encodes, networks know no registry, training
and evaluation do not reach up into the engine or the command line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import restorer

PACKAGE = Path(restorer.__file__).resolve().parent


def restorer_imports(path: Path) -> set[str]:
    """Every ``restorer.*`` module ``path`` imports, at any depth (lazy imports count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # from restorer import x
    return {n for n in found if n.split(".")[0] == "restorer"}


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# (files, modules they must not import)
RULES = [
    ("media/*.py", ("restorer.color", "restorer.engine", "restorer.render", "restorer.scenes",
                    "restorer.analysis", "restorer.cli", "restorer.gui")),
    ("nets/unet.py", ("restorer.nets.registry",)),
    ("nets/discriminator.py", ("restorer.nets.registry",)),
    ("train/*.py", ("restorer.engine", "restorer.render", "restorer.cli", "restorer.gui")),
    ("data/*.py", ("restorer.engine", "restorer.render", "restorer.cli", "restorer.gui")),
    ("evaluate.py", ("restorer.cli", "restorer.gui")),
    ("scenes.py", ("restorer.metrics", "restorer.engine", "restorer.cli")),
    ("metrics.py", ("restorer.scenes", "restorer.engine", "restorer.cli")),
]


@pytest.mark.parametrize("pattern, forbidden", RULES, ids=[r[0] for r in RULES])
def test_imports_point_down(pattern: str, forbidden: tuple[str, ...]) -> None:
    files = sorted(PACKAGE.glob(pattern))
    assert files, pattern
    offenders = {f.relative_to(PACKAGE).as_posix(): sorted(n for n in restorer_imports(f)
                                                            if _under(n, forbidden))
                 for f in files}
    assert not {k: v for k, v in offenders.items() if v}
