"""Module interfaces for the offline Terraform checks.

A module's interface is what `terraform validate` checks a call against: its
variables (name, type constraint, whether it has a default), its outputs, and
its `terraform {}` block (`required_version`, `required_providers`). This file
reads those declarations

* of a local module, from its directory;
* of an Azure Verified Module at a release tag, from a directory holding the
  module's `variables*.tf`, `outputs.tf` and `terraform.tf` as published at
  that tag (`<schemas>/<module>/<tag>/`, by default `../shared/schemas/avm`
  next to the repository, or `$AVM_SCHEMAS_DIR`), and otherwise from the
  module's own repository at that tag, downloaded once into a cache.

It also holds the two small languages the checks need: Terraform type
constraints (`map(object({ name = optional(string, null) }))`) and version
constraints (`>= 1.9, < 2.0`, `~> 2.4`).
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

SERIALIZATION = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCHEMAS_DIR = REPO_ROOT.parent / "shared" / "schemas" / "avm"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "avm"
# The release archive of a module's repository at a tag; {repo} is the GitHub
# repository name (terraform-azurerm-<module>), {tag} the tag (v0.5.1).
ARCHIVE_URL = "https://github.com/Azure/{repo}/archive/refs/tags/{tag}.tar.gz"
INTERFACE_FILE = re.compile(r"^(variables.*|outputs|terraform)\.tf$")


def schemas_dir() -> Path:
    return Path(os.environ.get("AVM_SCHEMAS_DIR") or DEFAULT_SCHEMAS_DIR)


def cache_dir() -> Path:
    return Path(os.environ.get("AVM_CACHE_DIR") or DEFAULT_CACHE_DIR)


def archive_url() -> str:
    return os.environ.get("AVM_ARCHIVE_URL") or ARCHIVE_URL


# --- type constraints ---------------------------------------------------------


@dataclass
class TypeNode:
    """A parsed type constraint. `kind` is a primitive name, `any`, or a
    collection/structural kind; `attributes` maps object attribute names to
    (type, optional)."""

    kind: str
    element: TypeNode | None = None
    attributes: dict[str, tuple[TypeNode, bool]] = field(default_factory=dict)
    elements: list[TypeNode] = field(default_factory=list)

    def __str__(self) -> str:
        if self.kind in ("list", "set", "map"):
            return f"{self.kind}({self.element})"
        if self.kind == "object":
            return "object({" + ", ".join(sorted(self.attributes)) + "})"
        if self.kind == "tuple":
            return "tuple([" + ", ".join(str(e) for e in self.elements) + "])"
        return self.kind


TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<ident>[A-Za-z_][A-Za-z0-9_-]*)|(?P<number>\d+(?:\.\d+)?)'
    r"|(?P<punct>[(){}\[\],=:])|(?P<other>.))",
    re.DOTALL,
)


class TypeSyntaxError(ValueError):
    pass


class _TypeParser:
    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        for match in TOKEN.finditer(text):
            token = match.group(match.lastgroup) if match.lastgroup else ""
            if token.strip():
                self.tokens.append(token)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise TypeSyntaxError(f"expected {expected or 'a token'}, found {token!r}")
        self.pos += 1
        return token

    def skip_expression(self) -> None:
        """Skip a default value up to the `)` that closes optional(...)."""
        depth = 0
        while True:
            token = self.peek()
            if token is None:
                raise TypeSyntaxError("unterminated optional(...)")
            if token in "([{" and len(token) == 1:
                depth += 1
            elif token in ")]}" and len(token) == 1:
                if depth == 0:
                    return
                depth -= 1
            self.pos += 1

    def parse(self) -> TypeNode:
        name = self.take()
        if name in ("string", "number", "bool", "any"):
            return TypeNode(name)
        if name in ("list", "set", "map"):
            self.take("(")
            element = self.parse()
            self.take(")")
            return TypeNode(name, element=element)
        if name == "tuple":
            self.take("(")
            self.take("[")
            elements = []
            while self.peek() != "]":
                elements.append(self.parse())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            self.take(")")
            return TypeNode("tuple", elements=elements)
        if name == "object":
            self.take("(")
            self.take("{")
            attributes: dict[str, tuple[TypeNode, bool]] = {}
            while self.peek() != "}":
                key = self.take().strip('"')
                if self.peek() not in ("=", ":"):
                    raise TypeSyntaxError(f"expected = after attribute {key!r}")
                self.take()
                attributes[key] = self.parse_attribute()
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            self.take(")")
            return TypeNode("object", attributes=attributes)
        raise TypeSyntaxError(f"unknown type {name!r}")

    def parse_attribute(self) -> tuple[TypeNode, bool]:
        if self.peek() == "optional":
            self.take()
            self.take("(")
            node = self.parse()
            if self.peek() == ",":
                self.take(",")
                self.skip_expression()
            self.take(")")
            return node, True
        return self.parse(), False


def parse_type(text: str) -> TypeNode:
    """Parse a type constraint as python-hcl2 renders it (`${map(string)}`)."""
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    parser = _TypeParser(text)
    node = parser.parse()
    if parser.peek() is not None:
        raise TypeSyntaxError(f"unexpected {parser.peek()!r} after the type")
    return node


def is_expression(value: Any) -> bool:
    """An HCL expression python-hcl2 could not turn into a literal value."""
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def check_value(value: Any, node: TypeNode, path: str) -> list[str]:
    """Problems of a literal value against a type: unknown and missing object
    attributes, at any depth. Expressions are not evaluated; they pass."""
    if value is None or is_expression(value) or node.kind == "any":
        return []
    problems: list[str] = []
    if node.kind == "object":
        if not isinstance(value, dict):
            return [f"{path} must be an object ({node}), found {type(value).__name__}"]
        for key in sorted(value):
            if key not in node.attributes:
                known = ", ".join(sorted(node.attributes))
                problems.append(f'{path} has no attribute "{key}" (the type declares {known})')
            else:
                problems += check_value(value[key], node.attributes[key][0], f"{path}.{key}")
        for key, (_, optional) in sorted(node.attributes.items()):
            if not optional and key not in value:
                problems.append(f'{path} lacks the required attribute "{key}"')
    elif node.kind == "map" and node.element is not None:
        if isinstance(value, dict):
            for key in sorted(value):
                problems += check_value(value[key], node.element, f"{path}[{key!r}]")
    elif node.kind in ("list", "set") and node.element is not None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                problems += check_value(item, node.element, f"{path}[{index}]")
    elif node.kind == "tuple" and isinstance(value, list):
        for index, (item, element) in enumerate(zip(value, node.elements)):
            problems += check_value(item, element, f"{path}[{index}]")
    return problems


# --- version constraints ------------------------------------------------------

Version = tuple[int, int, int]
CONSTRAINT = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$")


def parse_version(text: str) -> Version:
    match = re.fullmatch(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*", text)
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(p or 0) for p in match.groups())  # type: ignore[return-value]


def _satisfies_one(version: Version, constraint: str) -> bool:
    match = CONSTRAINT.match(constraint)
    if not match:
        raise ValueError(f"not a version constraint: {constraint!r}")
    op = match.group(1) or "="
    parts = [p for p in match.groups()[1:] if p is not None]
    target = tuple(int(p) for p in parts) + (0,) * (3 - len(parts))
    if op == "=":
        return version == target
    if op == "!=":
        return version != target
    if op == ">=":
        return version >= target
    if op == ">":
        return version > target
    if op == "<=":
        return version <= target
    if op == "<":
        return version < target
    # ~>: the rightmost given part may grow. `~> 2.4` is >= 2.4, < 3.0;
    # `~> 2.4.1` is >= 2.4.1, < 2.5.0; `~> 2` is >= 2.0.0, < 3.0.0.
    if version < target:
        return False
    prefix = max(len(parts) - 1, 1)
    upper = list(target[:prefix])
    upper[-1] += 1
    upper_version = tuple(upper) + (0,) * (3 - len(upper))
    return version < upper_version


def satisfies(version: Version | str, constraints: str) -> bool:
    """Whether a version meets every comma-separated constraint."""
    if isinstance(version, str):
        version = parse_version(version)
    return all(_satisfies_one(version, c) for c in constraints.split(",") if c.strip())


def minimum_version(constraints: str) -> Version | None:
    """The lowest version the constraints allow (from `>=`, `>`, `=`, `~>`), or
    None when they set no lower bound."""
    lowest: Version | None = None
    for constraint in constraints.split(","):
        match = CONSTRAINT.match(constraint)
        if not match or match.group(1) in ("<", "<=", "!="):
            continue
        parts = [int(p) for p in match.groups()[1:] if p is not None]
        bound = tuple(parts) + (0,) * (3 - len(parts))
        if match.group(1) == ">":
            bound = (bound[0], bound[1], bound[2] + 1)
        if lowest is None or bound > lowest:
            lowest = bound  # type: ignore[assignment]
    return lowest


def format_version(version: Version) -> str:
    return ".".join(str(p) for p in version)


# --- interfaces ---------------------------------------------------------------


@dataclass
class VariableSpec:
    name: str
    type_text: str | None
    required: bool
    validations: list[str] = field(default_factory=list)

    def type_node(self) -> TypeNode | None:
        if not self.type_text:
            return None
        try:
            return parse_type(self.type_text)
        except TypeSyntaxError:
            return None


@dataclass
class Interface:
    """What a module declares, wherever it was read from."""

    where: str
    variables: dict[str, VariableSpec] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    required_version: str | None = None
    # local name -> (source, version constraint)
    required_providers: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def _parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=SERIALIZATION)


def read_interface(directory: Path, where: str, files: list[Path] | None = None) -> Interface:
    """Read the declarations of the `.tf` files in a directory."""
    interface = Interface(where=where)
    for path in files if files is not None else sorted(directory.glob("*.tf")):
        parsed = _parse(path)
        for entry in parsed.get("variable", []):
            for name, body in entry.items():
                body = body or {}
                type_text = body.get("type")
                interface.variables[name] = VariableSpec(
                    name=name,
                    type_text=None if type_text is None else str(type_text),
                    required="default" not in body,
                    validations=[str(v.get("condition", "")) for v in body.get("validation", []) or []],
                )
        for entry in parsed.get("output", []):
            interface.outputs.update(entry)
        for block in parsed.get("terraform", []):
            if block.get("required_version") is not None:
                interface.required_version = str(block["required_version"])
            for providers in block.get("required_providers", []):
                for local, spec in providers.items():
                    if isinstance(spec, dict):
                        source = str(spec.get("source", f"hashicorp/{local}"))
                        version = spec.get("version")
                        interface.required_providers[local] = (source, None if version is None else str(version))
    return interface


def registry_parts(source: str) -> tuple[str, str, str]:
    """`Azure/avm-res-keyvault-vault/azurerm` -> (namespace, name, provider)."""
    namespace, name, provider = source.split("/")
    return namespace, name, provider


def tag_for(version: str) -> str:
    return version if version.startswith("v") else f"v{version}"


class InterfaceNotFound(Exception):
    pass


def _download(name: str, tag: str, target: Path) -> None:
    repo = f"terraform-azurerm-{name}"
    url = archive_url().format(repo=repo, tag=tag)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https URL or a test's file URL)
            data = response.read()
    except (urllib.error.URLError, OSError) as err:
        raise InterfaceNotFound(f"cannot download {url}: {err}") from err
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            parts = member.name.split("/")
            # <repo>-<version>/<file>: only the top-level interface files.
            if member.isfile() and len(parts) == 2 and INTERFACE_FILE.match(parts[1]):
                handle = archive.extractfile(member)
                if handle is not None:
                    found[parts[1]] = handle.read()
    if not any(n.startswith("variables") for n in found):
        raise InterfaceNotFound(f"{url} has no top-level variables*.tf")
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    for file_name, content in found.items():
        (partial / file_name).write_bytes(content)
    partial.rename(target)


def registry_interface(source: str, version: str) -> Interface:
    """The interface of a registry module at a version: from the schemas
    directory, else from the cache, else downloaded from the module's
    repository at that tag."""
    _, name, _ = registry_parts(source)
    tag = tag_for(version)
    local = schemas_dir() / name / tag
    if local.is_dir() and any(local.glob("variables*.tf")):
        return read_interface(local, f"{local}")
    cached = cache_dir() / name / tag
    if not cached.is_dir():
        if os.environ.get("AVM_OFFLINE") == "1":
            raise InterfaceNotFound(
                f"{name} {tag} is neither in {schemas_dir()} nor in {cache_dir()} (AVM_OFFLINE=1: not downloading)"
            )
        cached.parent.mkdir(parents=True, exist_ok=True)
        _download(name, tag, cached)
    return read_interface(cached, f"{cached}")


# --- validation conditions that need Terraform 1.12 ---------------------------

# Before Terraform 1.12, `a || b` and `a && b` evaluated both sides, so a guard
# such as `var.x == null || length(var.x) > 0` failed when x was null.
SHORT_CIRCUIT = re.compile(
    r"var\.(?P<name>[A-Za-z0-9_]+)\s*(?:==\s*null\s*\|\||!=\s*null\s*&&)(?P<rest>.*)", re.DOTALL
)
SHORT_CIRCUIT_SINCE: Version = (1, 12, 0)


def _fails_on_null(name: str, expression: str) -> bool:
    """Whether an expression uses var.<name> in a way that errors on null: an
    attribute or index, a function argument (other than can/try), a for."""
    n = re.escape(name)
    return bool(
        re.search(rf"var\.{n}\s*[.\[]", expression)
        or re.search(rf"\b(?!can\b|try\b|coalesce\b)[a-z_]+\(\s*var\.{n}\b", expression)
        or re.search(rf"\bin\s+var\.{n}\b", expression)
    )


def short_circuit_guards(interface: Interface) -> list[tuple[str, str]]:
    """(variable, condition) pairs whose validation relies on `||`/`&&`
    short-circuiting to guard a null value."""
    found = []
    for variable in interface.variables.values():
        for condition in variable.validations:
            for match in SHORT_CIRCUIT.finditer(condition):
                if _fails_on_null(match.group("name"), match.group("rest")):
                    found.append((variable.name, condition.strip().removeprefix("${").removesuffix("}")))
                    break
    return found
