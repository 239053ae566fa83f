"""Who is on call now, from PagerDuty or Opsgenie (for on-call auto-approval rules)."""

from pimbot.oncall.sources import OnCallSource, Shift, build_oncall_sources

__all__ = ["OnCallSource", "Shift", "build_oncall_sources"]
