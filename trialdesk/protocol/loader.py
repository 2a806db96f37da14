"""Reading a study file: YAML with line numbers, includes, schema, consistency, one report.

:func:`load_study` returns a frozen :class:`~trialdesk.protocol.schema.Study` or raises
:class:`~trialdesk.protocol.errors.StudyFileError` listing *every* problem as
``file:line: name: message``; it never lets a traceback through for a bad file.

Steps: read ``study.yaml`` and the files it includes with ruamel.yaml's composer, keeping the
file and line of every key and list element; merge the includes; validate the shape with the
pydantic schema (elements whose shape is wrong are dropped so that the rest can still be checked);
check consistency (:mod:`trialdesk.protocol.checks`); hash the merged content.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

import trialdesk
from trialdesk.lib.hashing import canonical_json, sha256_hex

from .checks import check_study
from .errors import Problem, StudyFileError
from .schema import Setting, Study

#: The main file of a study directory.
STUDY_FILE = "study.yaml"
#: Where study ids are resolved: the repository's ``studies/`` folder.
STUDIES_DIR = Path(trialdesk.__file__).resolve().parents[1] / "studies"

#: Sections an included file may contribute: lists are appended, ``settings`` merged by key.
INCLUDABLE_LISTS = ("forms", "codelists", "edit_checks", "eligibility", "endpoints")
INCLUDABLE_MAPPINGS = ("settings",)
_LIST_SECTIONS = (
    "arms",
    "sites",
    "strata",
    "visits",
    "forms",
    "codelists",
    "edit_checks",
    "eligibility",
    "endpoints",
)
_DICT_SECTIONS = ("schedule", "settings", "registry_ids")
#: Stand-ins for required header keys whose value is wrong, so that the rest is still checked.
_PLACEHOLDERS: dict[str, Any] = {
    "id": "study",
    "version": "0",
    "title": "study",
    "sponsor": {"name": "sponsor"},
}
_PATTERN_WORDS = {
    r"^[A-Z][A-Z0-9_]*$": "a code: capital letters, digits and _, starting with a letter",
    r"^[a-z][a-z0-9_]*$": "a key: small letters, digits and _, starting with a letter",
    r"^[A-Za-z][A-Za-z0-9_]*$": "an identifier: letters, digits and _, starting with a letter",
    r"^\S(.*\S)?$": "a non-empty text without surrounding spaces",
    r"^[a-z][a-z0-9-]*$": "a study id: small letters, digits and -",
    r"^\d+(\.\d+)*$": 'a version number such as "1.0" (quote it)',
}

#: The keys and list indices leading to a node: ``("forms", 3, "item_groups", 0, "items", 2)``.
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class _Location:
    file: str
    line: int


@dataclass
class _Document:
    """Plain data merged from all files, with the location of every key path."""

    data: dict[str, Any]
    locations: dict[KeyPath, _Location]
    problems: list[Problem] = field(default_factory=list)

    def locate(self, path: KeyPath) -> tuple[_Location, KeyPath]:
        """The location of the deepest known node on ``path``, and that node's path."""
        for end in range(len(path), -1, -1):
            location = self.locations.get(path[:end])
            if location is not None:
                return location, path[:end]
        raise AssertionError("the root of a document always has a location")

    def problem(self, path: KeyPath, name: str, message: str) -> Problem:
        location, _ = self.locate(path)
        return Problem(location.file, location.line, name, message)


def resolve_study_path(id_or_path: str | Path) -> Path:
    """The study directory or file for a study id (under :data:`STUDIES_DIR`) or a path.

    An existing path wins; otherwise a bare id such as ``ns-dupi`` names ``STUDIES_DIR/ns-dupi``.
    """
    path = Path(id_or_path)
    if path.exists() or not re.fullmatch(r"[a-z][a-z0-9-]*", str(id_or_path)):
        return path
    return STUDIES_DIR / str(id_or_path)


def load_study(path: str | Path) -> Study:
    """Load, validate and check a study file.

    Parameters
    ----------
    path : str or Path
        A study directory (holding ``study.yaml``) or the ``study.yaml`` file itself.

    Returns
    -------
    Study
        The frozen study, with :attr:`~Study.sha256` set to the SHA-256 of the canonical JSON of
        the merged content (independent of comments, layout and how it is split into files).

    Raises
    ------
    StudyFileError
        With every problem found, each as ``file:line: name: message``.
    """
    main = Path(path)
    if main.is_dir() or (not main.exists() and main.suffix not in (".yaml", ".yml")):
        main = main / STUDY_FILE
    document = _read_document(main)
    if document is None:
        raise StudyFileError([Problem(str(main), None, main.name, "no such study file")])
    if document.problems and not document.data:
        raise StudyFileError(document.problems)
    study, problems = _validate(document)
    problems = list(dict.fromkeys(document.problems + problems))
    if study is None or problems:
        problems.sort(key=lambda p: (p.file != str(main), p.file, p.line or 0))
        raise StudyFileError(problems)
    return study.model_copy(update={"sha256": sha256_hex(canonical_json(document.data))})


# ------------------------------------------------------------------------------------------------
# Reading YAML


class _Reader:
    """Plain data from one YAML file, with the line of every key and list element.

    The file is composed into nodes by ruamel.yaml's safe composer (which keeps each node's
    line); scalars are built by its safe constructor. Duplicate keys are problems.
    """

    def __init__(self, file: str, yaml: YAML) -> None:
        self.file = file
        self.locations: dict[KeyPath, _Location] = {(): _Location(file, 1)}
        self.problems: list[Problem] = []
        self.constructor = yaml.constructor

    def plain(self, node: Node, path: KeyPath) -> Any:
        if isinstance(node, MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self.plain(key_node, path))
                line = key_node.start_mark.line + 1
                if key in result:
                    first = self.locations[path + (key,)].line
                    self.problems.append(
                        Problem(self.file, line, key, f"duplicate key (first on line {first})")
                    )
                    continue
                self.locations[path + (key,)] = _Location(self.file, line)
                result[key] = self.plain(value_node, path + (key,))
            return result
        if isinstance(node, SequenceNode):
            result_list = []
            for index, element in enumerate(node.value):
                self.locations[path + (index,)] = _Location(self.file, element.start_mark.line + 1)
                result_list.append(self.plain(element, path + (index,)))
            return result_list
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, dt.date):
            return value.isoformat()
        return value


def _read_yaml(file: Path) -> tuple[Any, dict[KeyPath, _Location], list[Problem]]:
    """The plain data of a YAML file (None if it cannot be read), its locations and problems."""
    shown = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        return None, {}, [Problem(shown, None, file.name, f"cannot be read: {reason}")]
    yaml = YAML(typ="safe", pure=True)
    reader = _Reader(shown, yaml)
    try:
        node = yaml.compose(text)
        data = None if node is None else reader.plain(node, ())
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"YAML syntax error: {error.problem}"
        if error.context:
            message += f" ({error.context})"
        return None, {}, [Problem(shown, line, "yaml", message)]
    except YAMLError as error:
        return None, {}, [Problem(shown, None, "yaml", f"YAML error: {error}")]
    return data, reader.locations, reader.problems


def _read_document(main: Path) -> _Document | None:
    if not main.is_file():
        return None
    data, locations, problems = _read_yaml(main)
    document = _Document({}, locations or {(): _Location(str(main), 1)}, problems)
    if data is None and problems:
        return document
    if not isinstance(data, dict):
        document.problems.append(
            document.problem((), main.name, "a study file is a mapping of keys to values")
        )
        return document
    document.data = data
    includes = data.pop("include", None)
    if includes is not None:
        _merge_includes(document, main.parent, includes)
    _normalise_forms(document)
    return document


def _merge_includes(document: _Document, folder: Path, includes: Any) -> None:
    if not isinstance(includes, list) or not all(isinstance(entry, str) for entry in includes):
        document.problems.append(
            document.problem(("include",), "include", "include is a list of file names or globs")
        )
        return
    root = folder.resolve()
    for index, pattern in enumerate(includes):
        matches = sorted(folder.glob(pattern))
        outside = [m for m in matches if not m.resolve().is_relative_to(root)]
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts or outside:
            message = "included files must be inside the study directory"
            document.problems.append(document.problem(("include", index), pattern, message))
            continue
        if not matches:
            message = "no file matches this include"
            document.problems.append(document.problem(("include", index), pattern, message))
        for file in matches:
            _merge_file(document, file)


def _merge_file(document: _Document, file: Path) -> None:
    data, locations, problems = _read_yaml(file)
    document.problems.extend(problems)
    if data is None and problems:
        return
    if not isinstance(data, dict):
        document.problems.append(Problem(str(file), 1, file.name, "an included file is a mapping"))
        return
    allowed = INCLUDABLE_LISTS + INCLUDABLE_MAPPINGS
    for key, value in data.items():
        here = locations[(key,)]
        if key not in allowed:
            message = f"an included file may only hold {', '.join(allowed)}"
            document.problems.append(Problem(here.file, here.line, key, message))
            continue
        document.locations.setdefault((key,), here)
        if key in INCLUDABLE_LISTS:
            _append_list(document, key, value, locations, here)
        else:
            _merge_mapping(document, key, value, locations, here)


def _append_list(
    document: _Document, key: str, value: Any, locations: dict[KeyPath, _Location], here: _Location
) -> None:
    target = document.data.setdefault(key, [])
    if not isinstance(value, list) or not isinstance(target, list):
        document.problems.append(Problem(here.file, here.line, key, f"{key} is a list"))
        return
    for index, element in enumerate(value):
        _move_locations(document, locations, (key, index), (key, len(target)))
        target.append(element)


def _merge_mapping(
    document: _Document, key: str, value: Any, locations: dict[KeyPath, _Location], here: _Location
) -> None:
    target = document.data.setdefault(key, {})
    if not isinstance(value, dict) or not isinstance(target, dict):
        document.problems.append(Problem(here.file, here.line, key, f"{key} is a mapping"))
        return
    for name, element in value.items():
        if name in target:
            first = document.locations[(key, name)]
            where = locations[(key, name)]
            message = f"{key} {name!r} is declared twice (also at {first.file}:{first.line})"
            document.problems.append(Problem(where.file, where.line, name, message))
            continue
        _move_locations(document, locations, (key, name), (key, name))
        target[name] = element


def _move_locations(
    document: _Document, locations: dict[KeyPath, _Location], source: KeyPath, target: KeyPath
) -> None:
    size = len(source)
    for path, location in locations.items():
        if path[:size] == source:
            document.locations[target + path[size:]] = location


def _normalise_forms(document: _Document) -> None:
    """A form may list ``items`` directly: they become one group named after the form."""
    forms = document.data.get("forms")
    if not isinstance(forms, list):
        return
    for index, form in enumerate(forms):
        if not isinstance(form, dict) or "items" not in form:
            continue
        base: KeyPath = ("forms", index)
        if "item_groups" in form:
            document.problems.append(
                document.problem(
                    base + ("items",), "items", "a form has either items or item_groups, not both"
                )
            )
            continue
        group = {"code": form.get("code"), "label": form.get("label"), "items": form.pop("items")}
        moved = {
            base + ("item_groups", 0, "items") + path[len(base) + 1 :]: location
            for path, location in document.locations.items()
            if path[: len(base) + 1] == base + ("items",)
        }
        items_location = document.locations[base + ("items",)]
        moved[base + ("item_groups",)] = items_location
        moved[base + ("item_groups", 0)] = items_location
        document.locations.update(moved)
        form["item_groups"] = [group]


# ------------------------------------------------------------------------------------------------
# Validating


def _validate(document: _Document) -> tuple[Study | None, list[Problem]]:
    """The study, or the problems of its shape and consistency (and no study)."""
    data = document.data
    context = {"constants": _setting_constants(data.get("settings"))}
    kept: dict[str, list[int]] = {}
    broken: dict[str, set[str]] = {}
    problems: list[Problem] = []
    try:
        study = Study.model_validate(data, context=context)
    except ValidationError as error:
        errors = error.errors()
        problems = [_problem_from_error(document, error) for error in errors]
        pruned, kept, broken = _prune(data, errors)
        if pruned is None:
            return None, problems
        try:
            study = Study.model_validate(pruned, context=context)
        except ValidationError:
            return None, problems
    for finding in check_study(study, broken=broken):
        path = finding.path
        if len(path) > 1 and path[0] in kept and isinstance(path[1], int):
            path = (path[0], kept[str(path[0])][path[1]], *path[2:])
        problems.append(document.problem(path, finding.name, finding.message))
    return (None if problems else study), problems


def _setting_constants(settings: Any) -> dict[str, Any]:
    if not isinstance(settings, dict):
        return {}
    constants = {}
    for key, raw in settings.items():
        try:
            constants[f"settings.{key}"] = Setting.model_validate(raw).value
        except ValidationError:
            continue
    return constants


def _prune(
    data: dict[str, Any], errors: list[Any]
) -> tuple[dict[str, Any] | None, dict[str, list[int]], dict[str, set[str]]]:
    """Drop the elements whose shape is wrong, so the rest can still be checked."""
    drop: dict[str, set[Any]] = {}
    pruned = dict(data)
    for error in errors:
        loc = error["loc"]
        section = loc[0] if loc else None
        if section in _LIST_SECTIONS + _DICT_SECTIONS and len(loc) > 1:
            drop.setdefault(section, set()).add(loc[1])
        elif section in Study.model_fields and not Study.model_fields[section].is_required():
            drop.setdefault(section, set())
            pruned.pop(section, None)
        elif section in _PLACEHOLDERS:
            pruned[section] = _PLACEHOLDERS[section]
        else:
            return None, {}, {}
    kept: dict[str, list[int]] = {}
    broken: dict[str, set[str]] = {}
    for section, keys in drop.items():
        value = data.get(section)
        broken[section] = set()
        if isinstance(value, list):
            kept[section] = [i for i in range(len(value)) if i not in keys]
            pruned[section] = [value[i] for i in kept[section]]
            broken[section] = {_code_of(value[i]) for i in keys if isinstance(i, int)}
        elif isinstance(value, dict):
            pruned[section] = {k: v for k, v in value.items() if k not in keys}
            broken[section] = {str(k) for k in keys}
    return pruned, kept, broken


def _code_of(element: Any) -> str:
    if isinstance(element, dict):
        return str(element.get("code", element.get("id", "")))
    return ""


def _problem_from_error(document: _Document, error: Mapping[str, Any]) -> Problem:
    path = tuple(part for part in error["loc"] if part != "[key]")
    location, known = document.locate(path)
    shown = known
    if error["type"] == "missing" and len(path) > len(known):
        shown = known + (path[len(known)],)
    name = _render(document.data, shown) or Path(location.file).name
    return Problem(location.file, location.line, name, _message(error, path))


def _render(data: Any, path: KeyPath) -> str:
    """A dotted name for a key path, with codes for list elements: ``forms.NASA.items.x.max``."""
    parts: list[str] = []
    node = data
    skip_group = False
    for position, part in enumerate(path):
        following = path[position + 1 : position + 3]
        if part == "item_groups" and len(following) == 2 and following[1] == "items":
            skip_group = True
            node = node.get(part) if isinstance(node, dict) else None
            continue
        if isinstance(part, int):
            element = node[part] if isinstance(node, list) and part < len(node) else None
            node = element
            if skip_group:
                skip_group = False
                continue
            code = _code_of(element)
            parts.append(code or str(part))
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts)


def _message(error: Mapping[str, Any], path: KeyPath) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _allowed_keys(path[:-1])
        hint = difflib.get_close_matches(key, allowed, n=1)
        if hint:
            return f"unknown key {key!r} (did you mean {hint[0]!r}?)"
        return f"unknown key {key!r}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        words = _PATTERN_WORDS.get(pattern, f"text matching {pattern}")
        return f"{error['input']!r} is not {words}"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind in (
        "model_type",
        "dict_type",
        "list_type",
        "int_type",
        "int_parsing",
        "bool_type",
        "bool_parsing",
        "string_type",
        "float_type",
        "literal_error",
        "date_from_datetime_parsing",
        "date_parsing",
        "int_from_float",
        "greater_than_equal",
        "less_than_equal",
        "too_short",
        "too_long",
    ):
        message = f"{message} (found {error['input']!r})"
    return message


def _allowed_keys(path: KeyPath) -> list[str]:
    """The keys the schema allows at a key path (for 'did you mean' hints)."""
    annotation: Any = Study
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(part, str) or part not in annotation.model_fields:
                return []
            annotation = annotation.model_fields[part].annotation
        else:
            origin = typing.get_origin(annotation)
            if origin in (list, dict):
                annotation = typing.get_args(annotation)[-1]
            else:
                return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
