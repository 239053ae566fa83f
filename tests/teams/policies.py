"""The policy the Teams tests run with (the scenario suite's, plus a Teams notify channel)."""

from __future__ import annotations

from teams_driver import CHANNEL

POLICY = f"""
admins: [sec-lead@example.com]
groups:
  dba-leads: [alice@example.com, carol@example.com]
providers:
  demo: {{type: noop}}
roles:
  prod-db-admin:
    description: Superuser on the production database
    provider: demo
    max_duration: 4h
    default_duration: 1h
    require_justification: true
    approval: {{required: true, approvers: [group:dba-leads], min_approvals: 1, timeout: 24h}}
    notify: ["teams:{CHANNEL}"]
    expiry_reminder: 10m
  vault-root:
    description: Root token on the vault
    provider: demo
    max_duration: 2h
    default_duration: 1h
    require_mfa: true
    require_justification: true
    approval: {{required: true, approvers: [group:dba-leads], min_approvals: 1, timeout: 24h,
               require_mfa: true}}
  staging-deploy:
    description: Deploy to staging
    provider: demo
    max_duration: 8h
    default_duration: 2h
    require_justification: false
assignments:
  - {{user: bob@example.com, role: prod-db-admin, type: eligible}}
  - {{user: bob@example.com, role: vault-root, type: eligible}}
  - {{user: bob@example.com, role: staging-deploy, type: eligible}}
  - {{user: alice@example.com, role: prod-db-admin, type: eligible}}
"""
