"""Secrets come from the environment only: a secret written in settings.toml or config/*.yaml is refused.

A file is committed, copied into images and read by everyone who can read the repository; a variable is set
where the deployment runs. So a `SecretStr` setting (or a table of them, like `credentials_keys`) found in a file
is a settings problem naming the file and the variable to use instead, and an empty variable is no secret at all:
it counts as missing, so "required" names it rather than an empty key passing as set.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr

KeyPath = tuple[str, ...]
# The sections dynaconf reads in every environment, besides the one SOKO_ENV names.
_EVERY_ENV = ("default", "global")


def is_secret(annotation: Any) -> bool:
    """`SecretStr`, optional or not, or a container of them (`dict[str, SecretStr]`)."""
    return annotation is SecretStr or any(is_secret(arg) for arg in get_args(annotation))


def secret_paths(model: type[BaseModel], prefix: KeyPath = ()) -> Iterator[KeyPath]:
    """Where `model` (and the models nested in it) takes secrets, as key paths."""
    for name, field in model.model_fields.items():
        if is_secret(field.annotation):
            yield (*prefix, name)
        elif (nested := _model_in(field.annotation)) is not None:
            yield from secret_paths(nested, (*prefix, name))


def drop_empty_secrets(table: Mapping[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """`table` without the secrets set to an empty string (an empty variable counts as missing)."""
    copy = _deep_copy(table)
    for path in secret_paths(model):
        parent = _lookup(copy, path[:-1])
        if isinstance(parent, dict) and isinstance(parent.get(path[-1]), str) and not parent[path[-1]].strip():
            del parent[path[-1]]
    return copy


def secrets_in_files(root: Path, env: str, tables: Mapping[str, type[BaseModel]]) -> list[str]:
    """One problem per secret a settings file sets; `tables` maps a dotted prefix ("" or "plugins.auth") to the
    model that validates what is under it."""
    problems = []
    for file, document in _documents(root):
        for section in (*_EVERY_ENV, env):
            data = _lower(document.get(section) or {})
            for prefix, model in tables.items():
                table = _lookup(data, tuple(prefix.split(".")) if prefix else ())
                for path in secret_paths(model):
                    if isinstance(table, Mapping) and _lookup(table, path) is not None:
                        dotted = ".".join((prefix, *path) if prefix else path)
                        variable = "SOKO_" + dotted.upper().replace(".", "__")
                        problems.append(
                            f"{dotted}: a secret, set in {file} [{section}]; secrets come from the environment "
                            f"only: remove it from {file} and set the environment variable {variable}"
                        )
    return sorted(set(problems))


def _documents(root: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The files dynaconf reads (see `load_raw`), parsed, each with its path relative to the project."""
    toml = root / "settings.toml"
    if toml.is_file():
        yield "settings.toml", tomllib.loads(toml.read_text())
    for path in sorted((root / "config").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if isinstance(document, Mapping):
            yield f"config/{path.name}", document


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, UnionType):
        return next((found for arg in get_args(annotation) if (found := _model_in(arg)) is not None), None)
    return None


def _lookup(data: Any, path: KeyPath) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _lower(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key).lower(): _lower(item) for key, item in value.items()}
    return value


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _deep_copy(item) for key, item in value.items()}
    return value
