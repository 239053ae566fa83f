"""The policy file's shape as pydantic models (unknown keys are errors everywhere).

Each section item is validated on its own (see ``load.py``), so one bad role does not hide the
errors of the next. Checks that look across items (unknown provider, unknown group, default
over max) live in ``checks.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pimbot.policy.fields import (
    AssignmentKind,
    CommandLine,
    DayDuration,
    DriftAction,
    Duration,
    Email,
    EndTime,
    HttpUrl,
    JsonMapping,
    NoResponseAction,
    NotifyTarget,
    OptCommandLine,
    OptDayDuration,
    OptDuration,
    OptText,
    PositiveInt,
    Principal,
    StartTime,
    Text,
    TicketRule,
    WeekDuration,
)

SECTIONS = ("admins", "auditors", "groups", "providers", "roles", "assignments", "reviews")
PROVIDER_TYPES = ("postgres", "webhook", "command", "noop", "entra", "azure")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovalSpec(Spec):
    required: bool = False
    approvers: list[Principal] = []
    min_approvals: PositiveInt = 1
    timeout: WeekDuration = timedelta(hours=24)
    require_mfa: bool = False


class BreakglassSpec(Spec):
    allowed: bool = False
    max_duration: DayDuration = timedelta(hours=1)


class RoleSpec(Spec):
    description: str = ""
    provider: Text
    grant: JsonMapping = {}
    max_duration: DayDuration = timedelta(hours=8)
    default_duration: OptDayDuration = None  # None: 1h, or max_duration when that is shorter
    require_mfa: bool = False
    require_justification: bool = True
    require_ticket: TicketRule = False
    approval: ApprovalSpec = ApprovalSpec()
    breakglass: BreakglassSpec = BreakglassSpec()
    notify: list[NotifyTarget] = []
    expiry_reminder: OptDuration = None


class AssignmentSpec(Spec):
    user: Email
    role: Text
    type: AssignmentKind
    starts_at: StartTime = Field(default=None, alias="from")
    ends_at: EndTime = Field(default=None, alias="until")


class ReviewSpec(Spec):
    name: Text
    roles: list[Text]
    every: Duration
    duration: Duration
    reviewers: Any = "approvers"  # "approvers", "admins" or a list; checked in checks.py
    if_no_response: NoResponseAction = "keep"
    recommend_after: OptDuration = None


# --- providers: one model per type, so each type's keys are checked ---------------------------


class ProviderSpec(Spec):
    type: Text
    drift: DriftAction = "alert"  # what a failed check() does: alert, revoke, or ignore


class NoopProvider(ProviderSpec):
    pass


class PostgresProvider(ProviderSpec):
    dsn: OptText = None  # e.g. postgresql://pimbot@db/prod
    dsn_env: OptText = None  # or the name of an environment variable holding the DSN
    login: Text = "{email_local}"  # the database login of a person: {email}, {email_local}


class WebhookProvider(ProviderSpec):
    url: HttpUrl
    secret_env: OptText = None  # environment variable with the HMAC-SHA256 signing secret
    timeout: Duration = timedelta(seconds=10)


class CommandProvider(ProviderSpec):
    grant: CommandLine  # argv; placeholders {email} {role} {activation_id} {expires_at}
    revoke: CommandLine
    check: OptCommandLine = None  # exit 0: held, 1: not held
    timeout: Duration = timedelta(seconds=30)


class EntraProvider(ProviderSpec):
    tenant_id: Text
    client_id: Text
    client_secret_env: Text
    graph_url: HttpUrl = "https://graph.microsoft.com/v1.0/"
    login_url: HttpUrl = "https://login.microsoftonline.com/"


class AzureProvider(ProviderSpec):
    tenant_id: Text
    client_id: Text
    client_secret_env: Text
    management_url: HttpUrl = "https://management.azure.com/"
    login_url: HttpUrl = "https://login.microsoftonline.com/"


PROVIDER_SPECS: dict[str, type[ProviderSpec]] = {
    "postgres": PostgresProvider,
    "webhook": WebhookProvider,
    "command": CommandProvider,
    "noop": NoopProvider,
    "entra": EntraProvider,
    "azure": AzureProvider,
}
