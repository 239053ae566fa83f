"""Load a policy file: YAML → validated specs → ``pimbot.domain.model.Policy``."""

from __future__ import annotations

import contextlib
import gc
import logging
import re
from collections import deque
from collections.abc import Hashable, Iterator
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pimbot.domain.model import Policy
from pimbot.policy.checks import check_draft
from pimbot.policy.convert import to_policy
from pimbot.policy.issues import PolicyError, PolicyIssue
from pimbot.policy.provider_checks import check_providers
from pimbot.policy.sections import read_sections

logger = logging.getLogger(__name__)

DEFAULT_FILE = "pimbot.yaml"


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; raise PolicyError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [PolicyIssue("", f"cannot be read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), [PolicyIssue("", "is not UTF-8 text")]) from exc
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy YAML; raise PolicyError listing every problem with its YAML path."""
    with _collector_paused():
        document = _read_yaml(text, source)
        draft, issues = read_sections(document)
        issues.extend(check_draft(draft))
        issues.extend(check_providers(draft))
        if issues:
            raise PolicyError(source, issues)
        policy = to_policy(draft)
    logger.debug(
        "policy loaded",
        extra={"source": source, "role_count": len(policy.roles)},
    )
    return policy


def bundled_example_path() -> Path:
    """The example policy shipped inside the package (used when there is no pimbot.yaml)."""
    return Path(str(resources.files("pimbot.policy").joinpath("example.yaml")))


def resolve_policy_path(env_value: str | None, cwd: Path) -> Path:
    """``PIMBOT_POLICY`` if set; else ``./pimbot.yaml`` if it exists; else the bundled example."""
    if env_value and env_value.strip():
        explicit = Path(env_value.strip()).expanduser()
        return explicit if explicit.is_absolute() else cwd / explicit
    local = cwd / DEFAULT_FILE
    if local.is_file():
        return local
    return bundled_example_path()


# libyaml's parser when PyYAML was built with it (about ten times faster on a policy with
# thousands of assignments); the safe constructor either way.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR, _MAP, _SEQ, _TIMESTAMP = (f"tag:yaml.org,2002:{kind}"
                                for kind in ("str", "map", "seq", "timestamp"))
_Queue = deque[tuple[Any, Any]]  # (a mapping or sequence node, its container to fill)
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # 2027-03-31: the safe constructor's date


class _StrictLoader(_SafeBase):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses duplicate keys (PyYAML would silently keep the last one).

    It builds plain mappings, sequences and strings (nearly all of a policy) itself and
    hands every other node (numbers, booleans, timestamps, explicit tags) to the safe
    constructor. Same documents, same errors, found in the same order: the safe
    constructor fills containers breadth first (each mapping's keys are all checked for
    duplicates before its values are built), and so does this, through one queue instead
    of a generator per container (a third of the parse at thousands of assignments)."""

    def construct_document(self, node: yaml.Node) -> Any:
        queue: _Queue = deque()
        data = self._begin(node, queue)
        while queue:
            container_node, container = queue.popleft()
            if isinstance(container, dict):
                self._fill_mapping(container_node, container, queue)
            else:
                container.extend(self._begin(item, queue) for item in container_node.value)
        pending: list[Any] = self.state_generators  # type: ignore[has-type]  # the base's
        while pending:  # (explicit tags: !!set, !!omap)
            self.state_generators = list[Any]()
            for generator in pending:
                for _ in generator:
                    pass
            pending = self.state_generators
        self.constructed_objects = dict[Any, Any]()
        self.recursive_objects = dict[Any, Any]()
        self.deep_construct = False
        return data

    def _begin(self, node: Any, queue: _Queue) -> Any:
        """The node's value, or its container, empty, queued to be filled."""
        tag, kind = node.tag, node.__class__
        if kind is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            if tag == _TIMESTAMP:
                return self._timestamp(node)
            return self.construct_object(node)
        if node in self.constructed_objects:  # an alias of a container
            return self.constructed_objects[node]
        container: dict[Any, Any] | list[Any]
        if kind is yaml.MappingNode and tag == _MAP:
            container = {}
        elif kind is yaml.SequenceNode and tag == _SEQ:
            container = []
        else:
            return self.construct_object(node)
        self.constructed_objects[node] = container
        queue.append((node, container))
        return container

    def _timestamp(self, node: Any) -> Any:
        """``2027-03-31`` (a date) or an ISO 8601 time; a day that does not exist is a YAML
        error at its line (PyYAML raises a bare ValueError)."""
        try:
            if _PLAIN_DATE.fullmatch(node.value):
                return date.fromisoformat(node.value)
            return self.construct_object(node)
        except ValueError as exc:
            problem = f"{node.value} is not a date or time ({exc})"
            raise yaml.constructor.ConstructorError(
                None, None, problem, node.start_mark) from None

    def _fill_mapping(self, node: Any, mapping: dict[Any, Any],
                      queue: _Queue) -> None:
        keys = [self._begin(key_node, queue) for key_node, _ in node.value]
        try:
            distinct = len(set(keys)) == len(keys)  # equal keys are duplicates (1 and 1.0 too)
        except TypeError:
            distinct = False  # an unhashable key: the checks below say which
        if not distinct:
            self._check_keys(node, keys)
        for (_, value_node), key in zip(node.value, keys, strict=True):
            mapping[key] = self._begin(value_node, queue)

    @staticmethod
    def _check_keys(node: Any, keys: list[Any]) -> None:
        seen: set[Any] = set()
        for (key_node, _), key in zip(node.value, keys, strict=True):
            if isinstance(key, list | dict):
                continue  # unhashable; reported below, as the safe constructor does
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        for key_node, _ in (pair for pair, key in zip(node.value, keys, strict=True)
                            if not isinstance(key, Hashable)):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key",
                key_node.start_mark)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """For the explicit tags the safe constructor builds (``!!set``, ``!!omap``)."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue  # unhashable; the base constructor reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a policy is parsed and validated.

    A policy of 5,000 assignments allocates a few hundred thousand containers (libyaml's
    nodes, the document, the validated specs), nearly all alive until the parse ends: with
    CPython's thresholds the collector ran through them again and again, two thirds of the
    parse's CPU. None of them form cycles that need the collector (reference counting frees
    them), so it is paused for the parse and resumed after, as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or "invalid YAML"
        raise PolicyError(source, [PolicyIssue("", f"{where}YAML error: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise PolicyError(source, [PolicyIssue("", f"YAML error: {exc}")]) from exc
