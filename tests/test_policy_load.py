"""The policy file: what parses, what is refused, and the exact YAML path of every error."""

from __future__ import annotations

import gc
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pimbot.domain.model import AssignmentType
from pimbot.policy import (
    PolicyError,
    bundled_example_path,
    load_policy,
    parse_policy,
    resolve_policy_path,
)
from pimbot.providers.registry import build_providers

DESIGN_EXAMPLE = """\
admins: [sec-lead@example.com]
auditors: [audit@example.com]
groups:
  dba-leads: [alice@example.com, carol@example.com]
providers:
  proddb: {type: postgres, dsn: "postgresql://pimbot@db/prod", login: "{email_local}", drift: alert}
  hooks:  {type: webhook, url: "https://iam.example.com/pim", secret_env: PIM_HOOK_SECRET}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: proddb
    grant: {role: app_admin}            # provider-specific
    max_duration: 4h
    default_duration: 1h
    require_mfa: true
    require_justification: true
    require_ticket: false               # or a regex the ticket must match
    approval: {required: true, approvers: [group:dba-leads], min_approvals: 1, timeout: 24h,
               require_mfa: false}      # true: approvers give a TOTP code too
    breakglass: {allowed: true, max_duration: 1h}
    notify: ["slack:#sec-alerts", "teams:19:abc@thread.tacv2"]   # bare "#name" = Slack
    expiry_reminder: 10m
assignments:
  - {user: bob@example.com, role: prod-db-admin, type: eligible, until: 2027-03-31}
  - {user: carol@example.com, role: prod-db-admin, type: active,
     from: "2026-12-01T09:00:00Z", until: "2026-12-01T17:00:00Z"}   # dates or ISO 8601 times
reviews:
  - {name: quarterly-prod, roles: [prod-db-admin], every: 90d, duration: 14d,
     reviewers: approvers, if_no_response: remove, recommend_after: 30d}
"""

BASE = """\
groups:
  dba-leads: [alice@example.com]
providers:
  proddb: {type: noop}
  hooks: {type: webhook, url: "https://iam.example.com/pim", secret_env: HOOK_SECRET}
"""


def problems(text: str) -> list[str]:
    """``path: message`` of every issue the policy has (failing if it has none)."""
    with pytest.raises(PolicyError) as caught:
        parse_policy(textwrap.dedent(text), "pimbot.yaml")
    return [f"{issue.path}: {issue.message}" for issue in caught.value.issues]


def role(body: str, name: str = "x") -> str:
    return BASE + f"roles:\n  {name}:\n" + textwrap.indent(textwrap.dedent(body), "    ")


def test_the_design_example_parses() -> None:
    policy = parse_policy(DESIGN_EXAMPLE)
    prod = policy.roles["prod-db-admin"]
    assert prod.max_duration == timedelta(hours=4)
    assert prod.require_mfa is True
    assert prod.approval.approvers == ("group:dba-leads",)
    assert policy.approvers_of(prod) == ("alice@example.com", "carol@example.com")
    assert prod.notify == ("slack:#sec-alerts", "teams:19:abc@thread.tacv2")
    assert prod.expiry_reminder == timedelta(minutes=10)
    assert policy.providers["proddb"].type == "postgres"
    assert policy.providers["proddb"].settings["dsn"] == "postgresql://pimbot@db/prod"
    assert policy.providers["hooks"].settings["secret_env"] == "PIM_HOOK_SECRET"
    bob, carol = policy.assignments
    assert bob.type is AssignmentType.ELIGIBLE
    assert bob.starts_at is None
    assert bob.ends_at == datetime(2027, 4, 1, tzinfo=UTC)  # the end of 2027-03-31
    assert carol.starts_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert carol.ends_at == datetime(2026, 12, 1, 17, tzinfo=UTC)
    (review,) = policy.reviews
    assert (review.every, review.duration) == (timedelta(days=90), timedelta(days=14))
    assert review.if_no_response == "remove"


def test_the_bundled_example_loads_with_its_cast() -> None:
    policy = load_policy(bundled_example_path())
    assert policy.admins == ("sec-lead@example.com",)
    assert set(policy.roles) == {"prod-db-admin", "staging-deploy", "prod-logs", "billing-read"}
    assert policy.roles["prod-db-admin"].approval.required
    assert not policy.roles["staging-deploy"].approval.required
    # the README's MFA step: self-service, with a code (no other role asks for one)
    assert [n for n, r in policy.roles.items() if r.require_mfa] == ["prod-logs"]
    assert not policy.roles["prod-logs"].approval.required
    assert policy.roles["billing-read"].require_ticket == "^(INC|CHG)-[0-9]+$"
    assert policy.roles["prod-db-admin"].notify == ("slack:#sec-alerts",)
    people = set(policy.people()) - set(policy.auditors)
    assert people == {
        "sec-lead@example.com",
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
    }
    bob_roles = {a.role for a in policy.assignments if a.user == "bob@example.com"}
    assert bob_roles == set(policy.roles)


def test_defaults_follow_the_design() -> None:
    policy = parse_policy(role("provider: proddb\n"))
    x = policy.roles["x"]
    assert x.require_justification and not x.require_mfa
    assert (x.default_duration, x.max_duration) == (timedelta(hours=1), timedelta(hours=8))
    assert not x.approval.required
    assert x.approval.timeout == timedelta(hours=24)
    assert x.approval.min_approvals == 1
    assert not x.breakglass.allowed
    assert x.breakglass.max_duration == timedelta(hours=1)


def test_a_short_max_duration_lowers_the_default() -> None:
    policy = parse_policy(role("provider: proddb\nmax_duration: 30m\n"))
    assert policy.roles["x"].default_duration == timedelta(minutes=30)


def test_emails_are_lower_cased_everywhere() -> None:
    text = BASE.replace("alice@", "Alice@") + textwrap.dedent("""\
        admins: [Sec-Lead@Example.COM]
        roles:
          x: {provider: proddb, approval: {required: true, approvers: [Bob@Example.com]}}
        assignments:
          - {user: CAROL@example.com, role: x, type: eligible}
        """)
    policy = parse_policy(text)
    assert policy.admins == ("sec-lead@example.com",)
    assert policy.groups["dba-leads"] == ("alice@example.com",)
    assert policy.roles["x"].approval.approvers == ("bob@example.com",)
    assert policy.assignments[0].user == "carol@example.com"
    assert policy.is_admin("SEC-LEAD@example.com")


def test_times_with_offsets_and_naive_times_become_utc() -> None:
    text = BASE + textwrap.dedent("""\
        roles: {x: {provider: proddb}}
        assignments:
          - {user: a@example.com, role: x, type: active,
             from: 2026-12-01T10:00:00+01:00, until: "2026-12-01 17:30"}
          - {user: b@example.com, role: x, type: eligible, from: 2026-12-02}
        """)
    first, second = parse_policy(text).assignments
    assert first.starts_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert first.ends_at == datetime(2026, 12, 1, 17, 30, tzinfo=UTC)
    assert second.starts_at == datetime(2026, 12, 2, tzinfo=UTC)


def test_duration_limits() -> None:
    assert problems(role("provider: proddb\nmax_duration: 99h\n")) == [
        "roles.x.max_duration: 99h is over the 24h limit"
    ]
    assert problems(role("provider: proddb\ndefault_duration: 2d\n")) == [
        "roles.x.default_duration: 2d is over the 24h limit"
    ]
    assert problems(role("provider: proddb\nbreakglass: {allowed: true, max_duration: 25h}\n")) == [
        "roles.x.breakglass.max_duration: 25h is over the 24h limit"
    ]
    assert problems(role("provider: proddb\napproval: {timeout: 8d}\n")) == [
        "roles.x.approval.timeout: 8d is over the 7d limit"
    ]
    assert problems(role("provider: proddb\nmax_duration: soon\n")) == [
        "roles.x.max_duration: 'soon' is not a duration; use 90s, 30m, 1h30m, 8h or 2d"
    ]


def test_long_timeouts_and_review_periods_are_allowed() -> None:
    text = role("provider: proddb\napproval: {timeout: 7d}\n") + textwrap.dedent("""\
        reviews:
          - {name: yearly, roles: [x], every: 365d, duration: 30d}
        """)
    policy = parse_policy(text)
    assert policy.roles["x"].approval.timeout == timedelta(days=7)
    assert policy.reviews[0].every == timedelta(days=365)


def test_default_longer_than_max() -> None:
    assert problems(role("provider: proddb\nmax_duration: 2h\ndefault_duration: 3h\n")) == [
        "roles.x.default_duration: 3h is longer than max_duration 2h"
    ]


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    found = problems(
        role("provider: proddb\nmax_duraton: 2h\napproval: {requried: true}\n") + "rolse: {}\n"
    )
    assert found == [
        "roles.x.approval.requried: unknown key (did you mean required?)",
        "roles.x.max_duraton: unknown key (did you mean max_duration?)",
        "rolse: unknown key (did you mean roles?)",
    ]


def test_unknown_provider_lists_the_known_ones() -> None:
    assert problems(role("provider: foo\n")) == [
        "roles.x.provider: unknown provider 'foo' (known: proddb, hooks)"
    ]


def test_provider_types_and_their_keys() -> None:
    text = """\
        providers:
          a: {type: ldap}
          b: {type: webhook, url: "ftp://x", secret: abc}
          c: {type: postgres}
        """
    assert problems(text) == [
        "providers.a.type: 'ldap' is not a provider type "
        "(one of: postgres, webhook, command, noop, entra-group, entra-role, azure-rbac)",
        "providers.b.url: 'ftp://x' is not an http:// or https:// URL",
        "providers.b.secret_env: is required",
        "providers.b.secret: unknown key (did you mean secret_env?)",
        "providers.c: give dsn or dsn_env (one of them)",
    ]


def test_approvers_must_be_emails_or_defined_groups() -> None:
    body = "provider: proddb\napproval: {required: true, approvers: [alice@example.com, bob]}\n"
    assert problems(role(body)) == [
        "roles.x.approval.approvers[1]: 'bob' is neither an email nor group:NAME"
    ]
    body = "provider: proddb\napproval: {required: true, approvers: [group:dbas]}\n"
    assert problems(role(body)) == [
        "roles.x.approval.approvers[0]: unknown group 'dbas' (known: dba-leads)"
    ]


def test_required_approval_needs_approvers() -> None:
    assert problems(role("provider: proddb\napproval: {required: true}\n")) == [
        "roles.x.approval.approvers: approval is required but no approvers are named"
    ]


def test_min_approvals_counts_people_after_group_expansion() -> None:
    body = (
        "provider: proddb\napproval: {required: true, min_approvals: 3,\n"
        "  approvers: [group:dba-leads, alice@example.com, bob@example.com]}\n"
    )
    assert problems(role(body)) == [
        "roles.x.approval.min_approvals: 3 approvals needed but only 2 approvers named "
        "(after expanding groups)"
    ]
    body = "provider: proddb\napproval: {required: true, approvers: [a@b.io], min_approvals: 0}\n"
    assert problems(role(body)) == [
        "roles.x.approval.min_approvals: 0 is below 1 (at least one approval is needed)"
    ]


def test_ticket_rules_must_compile() -> None:
    assert problems(role('provider: proddb\nrequire_ticket: "INC-(["\n')) == [
        "roles.x.require_ticket: 'INC-([' is not a valid regular expression: "
        "unterminated character set at position 5"
    ]


def test_notify_targets() -> None:
    body = 'provider: proddb\nnotify: ["#ops", "slack:C0123ABCD", "teams:19:a@thread.v2", "ops"]\n'
    assert problems(role(body)) == [
        "roles.x.notify[3]: 'ops' is not slack:#name, slack:CHANNELID, teams:CONVERSATION_ID "
        "or #name"
    ]
    body = 'provider: proddb\nnotify: ["#ops", "slack:C0123ABCD", "teams:19:a@thread.v2"]\n'
    notify = parse_policy(role(body)).roles["x"].notify
    assert notify == ("slack:#ops", "slack:C0123ABCD", "teams:19:a@thread.v2")


def test_assignment_errors() -> None:
    text = BASE + textwrap.dedent("""\
        roles: {x: {provider: proddb}}
        assignments:
          - {user: bob@example.com, role: y, type: eligible}
          - {user: bob@example.com, role: x, type: permanent}
          - {user: bob@example.com, role: x, type: active, from: 2026-12-02, until: 2026-12-01}
          - {user: bob, role: x, type: eligible, until: someday}
          - {user: carol@example.com, role: x, type: eligible}
          - {user: carol@example.com, role: x, type: eligible}
        """)
    assert problems(text) == [
        "assignments[1].type: 'permanent' is not eligible or active",
        "assignments[3].user: 'bob' is not an email",
        "assignments[3].until: 'someday' is not a date (2027-03-31) or an ISO 8601 time "
        "(2026-12-01T09:00:00Z)",
        "assignments[0].role: unknown role 'y' (known: x)",
        "assignments[2].until: 2026-12-02T00:00:00Z is not after from 2026-12-02T00:00:00Z",
        "assignments[5]: carol@example.com x eligible repeats assignments[4]",
    ]


def test_review_errors() -> None:
    text = role("provider: proddb\n") + textwrap.dedent("""\
        reviews:
          - {name: q, roles: [x, nope], every: 30d, duration: 60d, reviewers: [group:none, bob]}
          - {name: q, roles: [x], every: 30d, duration: 7d, reviewers: everyone}
        """)
    assert problems(text) == [
        "reviews[0].roles[1]: unknown role 'nope' (known: x)",
        "reviews[0].duration: 60d is longer than every (30d)",
        "reviews[0].reviewers[1]: 'bob' is neither an email nor group:NAME",
        "reviews[1].name: 'q' is used by reviews[0]",
        "reviews[1].reviewers: 'everyone' is not approvers, admins, self or a list of emails "
        "and group:NAME",
    ]


def test_review_reviewer_lists_name_defined_groups() -> None:
    text = role("provider: proddb\n") + textwrap.dedent("""\
        reviews:
          - {name: q, roles: [x], every: 30d, duration: 7d, reviewers: [group:nope]}
        """)
    assert problems(text) == ["reviews[0].reviewers[0]: unknown group 'nope' (known: dba-leads)"]
    ok = text.replace("group:nope", "group:dba-leads, Sam@example.com")
    assert parse_policy(ok).reviews[0].reviewers == "group:dba-leads,sam@example.com"


def test_every_error_is_reported_not_just_the_first() -> None:
    text = BASE + textwrap.dedent("""\
        admins: [root]
        roles:
          a: {provider: foo, max_duration: 99h}
          b: {provider: proddb, approval: {required: true}}
          bad name: {provider: proddb}
        assignments:
          - {user: bob@example.com, role: c, type: eligible}
        """)
    assert problems(text) == [
        "admins[0]: 'root' is not an email",
        "roles.a.max_duration: 99h is over the 24h limit",
        "roles.bad name: 'bad name' is not a role name (letters, digits, '-' and '_'; no spaces)",
        "roles.b.approval.approvers: approval is required but no approvers are named",
        "roles.a.provider: unknown provider 'foo' (known: proddb, hooks)",
        "assignments[0].role: unknown role 'c' (known: a, b, bad name)",
    ]


def test_a_broken_role_is_still_known_to_assignments() -> None:
    text = role("provider: proddb\nmax_duration: 99h\n") + textwrap.dedent("""\
        assignments: [{user: bob@example.com, role: x, type: eligible}]
        """)
    assert problems(text) == ["roles.x.max_duration: 99h is over the 24h limit"]


def test_yaml_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("roles:\n  x: {provider: proddb\n  y: 1\n", "pimbot.yaml")
    message = str(caught.value)
    assert message.startswith("pimbot.yaml: line 3, column ")
    assert "YAML error" in message


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("roles:\n  x: {provider: a}\n  x: {provider: b}\n", "pimbot.yaml")
    assert str(caught.value) == "pimbot.yaml: line 3, column 3: YAML error: duplicate key 'x'"


def test_duplicate_keys_are_refused_inside_a_list_item_too() -> None:
    text = ("admins: [a@example.com]\nassignments:\n"
            "  - {user: b@example.com, role: r, type: eligible}\n"
            "  - {user: b@example.com, role: r, role: s, type: eligible}\n")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "pimbot.yaml")
    assert str(caught.value) == "pimbot.yaml: line 4, column 36: YAML error: duplicate key 'role'"


def test_the_outer_duplicate_is_named_before_an_inner_one() -> None:
    """The document is read level by level, as PyYAML's safe constructor reads it."""
    text = "roles:\n  x: {provider: a, provider: b}\nadmins: []\nroles: {}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "pimbot.yaml")
    assert str(caught.value) == "pimbot.yaml: line 4, column 1: YAML error: duplicate key 'roles'"


@pytest.mark.parametrize("until", ["2027-02-30", "2027-13-01T09:00:00Z"])
def test_a_day_that_does_not_exist_is_a_yaml_error_at_its_line(until: str) -> None:
    text = f"admins: [a@example.com]\nassignments:\n  - {{user: b@example.com, until: {until}}}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "pimbot.yaml")
    expected = f"pimbot.yaml: line 3, column 34: YAML error: {until} is not a date or time ("
    assert str(caught.value).startswith(expected), caught.value


def test_anchors_and_aliases_still_work() -> None:
    policy = parse_policy("admins: &people [a@example.com, b@example.com]\nauditors: *people\n")
    assert policy.auditors == policy.admins == ("a@example.com", "b@example.com")


def test_the_garbage_collector_runs_again_after_a_parse() -> None:
    """The collector is paused while a policy is parsed (most of the parse's CPU otherwise),
    never left off: not after a good policy, not after a broken one."""
    parse_policy(DESIGN_EXAMPLE)
    assert gc.isenabled()
    with pytest.raises(PolicyError):
        parse_policy("roles: [", "pimbot.yaml")
    assert gc.isenabled()


def test_the_error_text_names_file_path_and_message_per_line(tmp_path: Path) -> None:
    path = tmp_path / "pimbot.yaml"
    path.write_text(role("provider: foo\nmax_duration: 99h\n"))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).splitlines() == [
        f"{path}: roles.x.max_duration: 99h is over the 24h limit",
        f"{path}: roles.x.provider: unknown provider 'foo' (known: proddb, hooks)",
    ]


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "absent.yaml")


def test_policy_path_resolution(tmp_path: Path) -> None:
    assert resolve_policy_path(None, tmp_path) == bundled_example_path()
    (tmp_path / "pimbot.yaml").write_text("admins: [a@example.com]\n")
    assert resolve_policy_path(None, tmp_path) == tmp_path / "pimbot.yaml"
    assert resolve_policy_path("other.yaml", tmp_path) == tmp_path / "other.yaml"
    assert resolve_policy_path("/etc/pim.yaml", tmp_path) == Path("/etc/pim.yaml")


def test_validated_providers_are_accepted_by_the_provider_registry() -> None:
    text = DESIGN_EXAMPLE.replace(
        "secret_env: PIM_HOOK_SECRET}", "secret_env: PIM_HOOK_SECRET, timeout: 5s}"
    ).replace(
        "providers:\n",
        "providers:\n  demo: {type: noop}\n"
        '  script: {type: command, grant: "/bin/pim grant", revoke: [/bin/pim, revoke],'
        " check: [/bin/pim, check], timeout: 30, pass_env: [HOME]}\n",
    )
    policy = parse_policy(text)
    hooks, script = policy.providers["hooks"], policy.providers["script"]
    assert hooks.settings == {
        "url": "https://iam.example.com/pim",
        "secret_env": "PIM_HOOK_SECRET",
        "timeout": 5.0,
    }
    assert script.settings["grant"] == ["/bin/pim", "grant"]
    built = build_providers(policy.providers, {"PIM_HOOK_SECRET": "s3cret"})
    assert set(built) == {"demo", "script", "proddb", "hooks"}


def test_the_slack_section_says_whether_guests_may_use_pimbot() -> None:
    assert parse_policy(BASE).chat_rules("slack").allow_guests is False
    assert parse_policy(BASE + "slack:\n").chat_rules("slack").allow_guests is False
    allowed = parse_policy(BASE + "slack: {allow_guests: true}\n")
    assert allowed.chat_rules("slack").allow_guests is True
    assert allowed.chat_rules("teams").allow_guests is False, "each platform has its own rules"


def test_slack_section_errors_have_their_path() -> None:
    assert problems(BASE + "slack: {allow_guest: true, allow_guests: sometimes}\n") == [
        "slack.allow_guests: 'sometimes' is not true or false",
        "slack.allow_guest: unknown key (did you mean allow_guests?)",
    ]
    assert problems(BASE + "slack: [allow_guests]\n") == ["slack: must be a mapping (key: value)"]
    assert problems(BASE + "slak: {}\n") == ["slak: unknown key (did you mean slack?)"]
