"""The policy file: YAML schema (pydantic), load into ``domain.Policy``, plan/apply to the store."""

from pimbot.policy.issues import PolicyError, PolicyIssue
from pimbot.policy.load import (
    bundled_example_path,
    load_policy,
    parse_policy,
    resolve_policy_path,
)

__all__ = [
    "PolicyError",
    "PolicyIssue",
    "bundled_example_path",
    "load_policy",
    "parse_policy",
    "resolve_policy_path",
]
