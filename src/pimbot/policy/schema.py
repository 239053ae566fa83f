"""The policy file's shape as pydantic models (unknown keys are errors everywhere).

Each section item is validated on its own (see ``load.py``), so one bad role does not hide the
errors of the next. Checks that look across items (unknown provider, unknown group, default
over max) live in ``checks.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from pimbot.domain.windows import WindowError, parse_window
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
    LoginOverrides,
    NoResponseAction,
    NotifyTarget,
    OptDayDuration,
    OptDuration,
    OptText,
    PositiveInt,
    Principal,
    ProviderMode,
    Seconds,
    StartTime,
    Text,
    TicketRule,
    WeekDuration,
)

CHAT_SECTIONS = ("slack", "teams")  # one section per chat platform: who its adapter may let in
SECTIONS = (
    "admins", "auditors", "whois", "groups", "providers", "roles", "assignments", "reviews",
    "oncall", *CHAT_SECTIONS,
)
ONCALL_KINDS = {"pagerduty": "https://api.pagerduty.com", "opsgenie": "https://api.opsgenie.com"}
WHOIS_CHOICES = ("privileged", "everyone")
PROVIDER_TYPES = ("postgres", "webhook", "command", "noop", "entra-group", "entra-role",
                  "azure-rbac")


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


def _on_call_source(value: Any) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise PydanticCustomError("on_call", "{value} is not pagerduty:SCHEDULE_ID or "
                                  "opsgenie:SCHEDULE_ID", {"value": repr(value)})
    kind, _, schedule = value.partition(":")
    if kind not in ONCALL_KINDS or not schedule.strip():
        raise PydanticCustomError("on_call", "{value} is not pagerduty:SCHEDULE_ID or "
                                  "opsgenie:SCHEDULE_ID", {"value": repr(value)})
    return f"{kind}:{schedule.strip()}"


def _window(value: Any) -> str:
    try:
        return parse_window(str(value)).text
    except WindowError as exc:
        raise PydanticCustomError("window", str(exc)) from None


class AutoApproveSpec(Spec):
    on_call: Annotated[str, BeforeValidator(_on_call_source)] | None = None
    windows: list[Annotated[str, BeforeValidator(_window)]] = []
    outside: list[Annotated[str, BeforeValidator(_window)]] = []
    max_duration: OptDayDuration = None
    end_with_shift: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> AutoApproveSpec:
        kinds = [k for k in ("on_call", "windows", "outside") if getattr(self, k)]
        if len(kinds) != 1:
            raise PydanticCustomError("auto_approve", "give exactly one of on_call, windows "
                                      "or outside")
        if self.end_with_shift and not self.on_call:
            raise PydanticCustomError("auto_approve", "end_with_shift needs on_call")
        return self


class UsageCapSpec(Spec):
    count: PositiveInt
    per: WeekDuration


class EscalationSpec(Spec):
    after: WeekDuration
    to: list[Principal]


class OnCallSourceSpec(Spec):
    token_env: Text
    api_url: str | None = None


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
    auto_approve: AutoApproveSpec | None = None
    max_activations: UsageCapSpec | None = None
    escalate: list[EscalationSpec] = []


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


class ChatSpec(Spec):
    """``slack: {allow_guests: true}`` (or ``teams:``): guest accounts may use pimbot
    (people of other workspaces and organisations never can)."""

    allow_guests: bool = False


# --- providers: one model per type, so each type's keys are checked ---------------------------
# The keys match what ``pimbot.providers.registry`` reads; ``ProviderConfig.settings`` holds the
# keys as written (minus ``type``), validated, with ``timeout`` in seconds.


class ProviderSpec(Spec):
    type: Text
    # Drift detection (``pimbot.providers.drift``): "alert" checks every reconcile_every that
    # grants at the provider match activations and reports any difference to the role's
    # notify channels; "revoke" also removes holders pimbot did not grant (providers that can
    # list their holders), except those in ``allow``. "off" (or "ignore") checks nothing.
    drift: DriftAction = "off"
    reconcile_every: Seconds = 900.0
    allow: list[Text] = []  # holders drift never touches: break-glass accounts, apps
    # Provider calls in flight at once (``pimbot.providers.concurrency``; default 64).
    max_concurrency: Annotated[int, Field(ge=1, le=1000, strict=True)] | None = None


class NoopProvider(ProviderSpec):
    pass


class PostgresProvider(ProviderSpec):
    dsn: OptText = None  # e.g. postgresql://pimbot@db/prod
    dsn_env: OptText = None  # or the name of an environment variable holding the DSN
    login: Text = "{email_local}"  # the database login of a person: {email}, {email_local}
    logins: LoginOverrides = {}  # {EMAIL: LOGIN}: people whose login the template does not give
    drift: DriftAction = "alert"  # postgres checks for drift unless told to ignore it
    timeout: Seconds = 10.0


class WebhookProvider(ProviderSpec):
    url: HttpUrl
    secret_env: Text  # environment variable with the HMAC-SHA256 signing secret
    timeout: Seconds = 10.0


class CommandProvider(ProviderSpec):
    grant: CommandLine  # argv of the program to run for each action
    revoke: CommandLine
    check: CommandLine
    timeout: Seconds = 60.0
    pass_env: list[Text] = []  # environment variables passed on to the program


class MicrosoftProvider(ProviderSpec):
    """entra-group, entra-role, azure-rbac: one credential of four (checked, with GUIDs and
    URLs, by ``pimbot.providers.microsoft.settings``)."""

    tenant_id: Text
    client_id: OptText = None  # the app; for a managed identity, a user-assigned one
    client_secret_env: OptText = None  # environment variable holding the client secret
    certificate_path: OptText = None  # or a PEM / PKCS#12 file with key and certificate
    certificate_password_env: OptText = None
    managed_identity: bool = False
    workload_identity: bool = False
    federated_token_file: OptText = None  # default: $AZURE_FEDERATED_TOKEN_FILE
    authority: HttpUrl = "https://login.microsoftonline.com"
    graph_url: HttpUrl = "https://graph.microsoft.com"
    mode: ProviderMode = "direct"  # pim: Entra / Azure PIM schedule requests
    drift: DriftAction = "alert"
    timeout: Seconds = 20.0


class EntraGroupProvider(MicrosoftProvider):
    pass


class EntraRoleProvider(MicrosoftProvider):
    pass


class AzureRbacProvider(MicrosoftProvider):
    arm_url: HttpUrl = "https://management.azure.com"


PROVIDER_SPECS: dict[str, type[ProviderSpec]] = {
    "postgres": PostgresProvider,
    "webhook": WebhookProvider,
    "command": CommandProvider,
    "noop": NoopProvider,
    "entra-group": EntraGroupProvider,
    "entra-role": EntraRoleProvider,
    "azure-rbac": AzureRbacProvider,
}
