"""``pimbot providers check``: each provider's credentials and permissions, tested against the
live service without granting anything. Providers that can (``Probing``) probe themselves;
the webhook and command providers have no read-only way to be tested and say so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from pimbot.domain.model import Policy
from pimbot.ports import Clock, SystemClock
from pimbot.providers.errors import ProviderConfigError, ProviderError
from pimbot.providers.holders import ProbeFinding, ProbeOutcome, ProbeReport, Probing
from pimbot.providers.registry import build_providers

_NOTHING_TO_PROBE = {
    "noop": "grants nothing anywhere",
    "webhook": "a webhook has no read-only call to test; its first grant tests it",
    "command": "a command has no read-only call to test; its first grant tests it",
}


async def check_providers(policy: Policy, env: Mapping[str, str], *,
                          http: aiohttp.ClientSession | None = None,
                          clock: Clock | None = None) -> list[ProbeReport]:
    """One report per provider the policy configures, in the policy's order."""
    reports: list[ProbeReport] = []
    for name, config in policy.providers.items():
        grants: list[Mapping[str, Any]] = [
            role.grant for role in policy.roles.values() if role.provider == name]
        try:
            provider = build_providers({name: config}, env, http=http,
                                       clock=clock or SystemClock())[name]
        except ProviderConfigError as exc:
            reports.append(ProbeReport(name, config.type, [
                ProbeFinding(ProbeOutcome.PROBLEM, "configuration", str(exc))]))
            continue
        try:
            if isinstance(provider, Probing):
                findings = await provider.probe(grants)
            else:
                findings = [ProbeFinding(ProbeOutcome.SKIPPED, "nothing to test",
                                         _NOTHING_TO_PROBE.get(config.type, ""))]
        except ProviderError as exc:
            findings = [ProbeFinding(ProbeOutcome.PROBLEM, "probe", exc.message)]
        finally:
            await provider.close()
        reports.append(ProbeReport(name, config.type, findings))
    return reports


def format_reports(reports: list[ProbeReport]) -> str:
    lines: list[str] = []
    for report in reports:
        verdict = "ok" if report.ok else "PROBLEMS"
        lines.append(f"{report.provider} ({report.type}): {verdict}")
        for finding in report.findings:
            detail = f" — {finding.detail}" if finding.detail else ""
            lines.append(f"  {finding.outcome.value:<8} {finding.what}{detail}")
    return "\n".join(lines)
