"""The layering of aviary's packages, checked two ways.

- At run time: `import aviary`, `import aviary.core`, `import aviary.conversion` ... load no
  framework (checked in a fresh interpreter).
- In the source: every module under src/aviary is parsed with `ast`, and every import it makes is
  checked against the layer it belongs to (a failure lists every offending `file:line import`):

  - `aviary.core` imports only the stdlib, numpy and `aviary.core` at module level, and no other
    aviary package anywhere (a framework only inside a function).
  - `aviary.conversion` imports only the stdlib, numpy, `aviary.core` and `aviary.conversion` at
    module level, and never an aviary framework package (`aviary.pt`, `.tf`, `.flax`): the
    frameworks register what it needs from them.
  - `aviary.pt`, `aviary.tf` and `aviary.flax` never import another framework's package or library.
  - `aviary.commands`, `aviary.cli` and `aviary/__init__` import no framework at module level.

Imports inside a function are lazy (they run when the function is called);
`importlib.import_module("<a constant name>")` counts as an import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

FRAMEWORKS = ("torch", "tensorflow", "jax", "flax", "keras")
SRC = Path(__file__).resolve().parents[1] / "src"
# The third-party libraries of each framework package.
FRAMEWORK_LIBRARIES = {
    "pt": ("torch",),
    "tf": ("tensorflow", "keras", "tensorflow_text", "tf_keras"),
    "flax": ("jax", "jaxlib", "flax", "optax"),
}
ALL_FRAMEWORK_LIBRARIES = tuple(lib for libs in FRAMEWORK_LIBRARIES.values() for lib in libs)
FRAMEWORK_PACKAGES = tuple(f"aviary.{fw}" for fw in FRAMEWORK_LIBRARIES)


@pytest.mark.parametrize(
    "statement",
    [
        "import aviary",
        "import aviary.core",
        "import aviary.conversion",
        "import aviary.tf, aviary.flax",
        "from aviary import BertConfig; BertConfig().to_json_string()",
        "import aviary.cli",
    ],
)
def test_no_framework_is_imported(statement: str) -> None:
    code = (
        f"{statement}\nimport sys\n"
        f"loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{statement!r} imported {result.stdout.strip()}"


# -- the imports in the source --------------------------------------------------------------------


@dataclass
class Import:
    """One import of a module: what it imports, where, and whether it runs at module level."""

    where: str  # file:line
    text: str  # the statement, as written
    target: str  # the imported module
    module_level: bool

    def within(self, *names: str) -> bool:
        """Whether the imported module is one of `names` or inside one of them."""
        return any(self.target == name or self.target.startswith(name + ".") for name in names)

    def __str__(self) -> str:
        where = "" if self.module_level else " (in a function)"
        return f"{self.where} {self.text}{where}"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(source: str, name: str, where: str) -> list[Import]:
    """Every import the module `name` (source text `source`, shown as `where`) makes at run time
    (`if TYPE_CHECKING:` blocks are skipped)."""
    package = name if where.endswith("__init__.py") else name.rpartition(".")[0]
    found: list[Import] = []

    def add(node: ast.stmt | ast.expr, target: str, module_level: bool) -> None:
        found.append(Import(f"{where}:{node.lineno}", ast.unparse(node), target, module_level))

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child, module_level)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name, module_level)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != "__future__":
                add(node, target, module_level)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node, node.args[0].value, module_level)
        inner = module_level and not isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
        )
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(source, filename=where), True)
    return found


def source_imports(path: Path) -> list[Import]:
    where = str(path.relative_to(SRC.parent))
    return imports_of(path.read_text(encoding="utf-8"), module_name(path), where)


def layer_of(path: Path) -> str:
    """`core`, `conversion`, `pt`, `tf`, `flax`, `commands`, or `top` (aviary/__init__, cli)."""
    parts = path.relative_to(SRC / "aviary").parts
    return parts[0] if len(parts) > 1 else "top"


def is_stdlib(target: str) -> bool:
    return target.partition(".")[0] in sys.stdlib_module_names


def offence(layer: str, imp: Import) -> str | None:
    """Why `imp` breaks the layering of `layer`, or None."""
    own = f"aviary.{layer}"
    if layer == "core":
        if imp.within("aviary") and not imp.within("aviary.core"):
            return "core imports no other aviary package"
        if imp.module_level and not (is_stdlib(imp.target) or imp.within("numpy", "aviary.core")):
            return "core imports only the stdlib, numpy and aviary.core at module level"
    elif layer == "conversion":
        if imp.within(*FRAMEWORK_PACKAGES, "aviary.commands", "aviary.cli"):
            return "conversion imports no framework package (frameworks register into it)"
        allowed = ("numpy", "aviary.core", "aviary.conversion")
        if imp.module_level and not (is_stdlib(imp.target) or imp.within(*allowed)):
            return "conversion imports only the stdlib, numpy and aviary.core at module level"
    elif layer in FRAMEWORK_LIBRARIES:
        others = [fw for fw in FRAMEWORK_LIBRARIES if fw != layer]
        if imp.within(*(f"aviary.{fw}" for fw in others)):
            return f"{own} never imports another framework package"
        if imp.within(*(lib for fw in others for lib in FRAMEWORK_LIBRARIES[fw])):
            return f"{own} never imports another framework's library"
        if imp.within("aviary.commands", "aviary.cli"):
            return f"{own} never imports the command line"
    elif imp.module_level and imp.within(*ALL_FRAMEWORK_LIBRARIES, *FRAMEWORK_PACKAGES):
        # commands, cli, aviary/__init__: imported at every start of the command line
        return f"{layer} imports frameworks only inside functions"
    return None


SOURCES = sorted((SRC / "aviary").rglob("*.py"))
LAYERS = ("core", "conversion", "pt", "tf", "flax", "commands", "top")


def test_every_module_belongs_to_a_layer() -> None:
    assert SOURCES, f"no sources under {SRC}"
    assert {layer_of(path) for path in SOURCES} <= set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_respect_the_layering(layer: str) -> None:
    offending = [
        f"{imp}  <- {reason}"
        for path in SOURCES
        if layer_of(path) == layer
        for imp in source_imports(path)
        if (reason := offence(layer, imp)) is not None
    ]
    assert not offending, f"{len(offending)} import(s) break the layering:\n" + "\n".join(offending)


def test_the_checker_sees_offences() -> None:
    """The checker itself: framework imports at module level and in a function, in conversion
    and in core."""
    source = (
        "import torch\nfrom aviary.tf.modeling_utils import load_keras_model\n"
        "def f():\n    import jax\n    from . import formats\n"
    )
    found = imports_of(source, "aviary.conversion.probe", "aviary/conversion/probe.py")
    assert [(imp.target, imp.module_level) for imp in found] == [
        ("torch", True),
        ("aviary.tf.modeling_utils", True),
        ("jax", False),
        ("aviary.conversion", False),
    ]
    assert [offence("conversion", imp) is not None for imp in found] == [True, True, False, False]
    assert [offence("core", imp) is not None for imp in found] == [True, True, False, True]
