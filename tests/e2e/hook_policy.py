"""A policy whose provider is a webhook pointing at the test's local receiver."""

from __future__ import annotations

from pathlib import Path

from console_process import console_env
from webhook_receiver import WebhookReceiver

SECRET_ENV = "E2E_HOOK_SECRET"

HOOK_POLICY = """\
admins: [sec-lead@example.com]
groups:
  dba-leads: [alice@example.com, carol@example.com]
providers:
  hooks: {{type: webhook, url: "{url}", secret_env: {secret_env}, timeout: 5s}}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: hooks
    grant: {{role: app_admin}}
    max_duration: 4h
    default_duration: 1h
    require_justification: true
    approval: {{required: true, approvers: ["group:dba-leads"], min_approvals: 1}}
  staging-deploy:
    description: Deploy to the staging cluster
    provider: hooks
    grant: {{group: staging-deployers}}
    max_duration: 8h
  quick-fix:
    description: A role whose requests time out after two seconds
    provider: hooks
    grant: {{role: fixer}}
    approval: {{required: true, approvers: ["group:dba-leads"], timeout: 2s}}
assignments:
  - {{user: bob@example.com, role: prod-db-admin, type: eligible}}
  - {{user: bob@example.com, role: staging-deploy, type: eligible}}
  - {{user: bob@example.com, role: quick-fix, type: eligible}}
  - {{user: alice@example.com, role: prod-db-admin, type: eligible}}
"""


def hook_policy_env(directory: Path, receiver: WebhookReceiver) -> dict[str, str]:
    """Environment for ``pimbot run`` on the console with ``HOOK_POLICY`` and the secret."""
    policy = directory / "hook-policy.yaml"
    policy.write_text(HOOK_POLICY.format(url=receiver.url, secret_env=SECRET_ENV), encoding="utf-8")
    return console_env(directory, policy, **{SECRET_ENV: receiver.secret.decode()})
