"""Load a policy file: YAML → validated specs → ``pimbot.domain.model.Policy``."""

from __future__ import annotations

import logging
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


class _StrictLoader(_SafeBase):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses duplicate keys (PyYAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
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
