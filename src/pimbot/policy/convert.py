"""Validated specs → the frozen domain ``Policy``."""

from __future__ import annotations

from pimbot.domain.model import (
    ApprovalRule,
    Assignment,
    AssignmentType,
    AutoApproveRule,
    BreakglassRule,
    ChatRules,
    Escalation,
    OnCallSourceConfig,
    Policy,
    ProviderConfig,
    ReviewSchedule,
    Role,
    UsageCap,
    WhoisVisibility,
)
from pimbot.policy.checks import default_duration_of, parse_reviewers
from pimbot.policy.schema import (
    ONCALL_KINDS,
    AssignmentSpec,
    ProviderSpec,
    ReviewSpec,
    RoleSpec,
)
from pimbot.policy.sections import Draft


def to_policy(draft: Draft) -> Policy:
    return Policy(
        admins=tuple(dict.fromkeys(draft.admins)),
        auditors=tuple(dict.fromkeys(draft.auditors)),
        groups={name: tuple(dict.fromkeys(members)) for name, members in draft.groups.items()},
        providers={name: to_provider(name, spec) for name, spec in draft.providers.items()},
        roles={name: to_role(name, spec) for name, spec in draft.roles.items()},
        assignments=tuple(to_assignment(spec) for _, spec in draft.assignments),
        reviews=tuple(to_review(spec) for _, spec in draft.reviews),
        chat={name: ChatRules(allow_guests=spec.allow_guests) for name, spec in draft.chat.items()},
        whois=WhoisVisibility(draft.whois),
        oncall={name: OnCallSourceConfig(kind=name, token_env=spec.token_env,
                                         api_url=spec.api_url or ONCALL_KINDS[name])
                for name, spec in draft.oncall.items()},
    )


def to_provider(name: str, spec: ProviderSpec) -> ProviderConfig:
    """``settings`` holds the keys as written (minus ``type``), validated; the provider
    registry applies its own defaults to the keys left out."""
    settings = spec.model_dump(exclude={"type"}, exclude_unset=True)
    return ProviderConfig(name=name, type=spec.type, settings=settings)


def to_role(name: str, spec: RoleSpec) -> Role:
    approval = spec.approval
    return Role(
        name=name,
        provider=spec.provider,
        description=spec.description,
        grant=dict(spec.grant),
        max_duration=spec.max_duration,
        default_duration=default_duration_of(spec),
        require_mfa=spec.require_mfa,
        require_justification=spec.require_justification,
        require_ticket=spec.require_ticket,
        approval=ApprovalRule(
            required=approval.required,
            approvers=tuple(dict.fromkeys(approval.approvers)),
            min_approvals=approval.min_approvals,
            timeout=approval.timeout,
            require_mfa=approval.require_mfa,
        ),
        breakglass=BreakglassRule(
            allowed=spec.breakglass.allowed, max_duration=spec.breakglass.max_duration
        ),
        notify=tuple(dict.fromkeys(spec.notify)),
        expiry_reminder=spec.expiry_reminder,
        auto_approve=None if spec.auto_approve is None else AutoApproveRule(
            on_call=spec.auto_approve.on_call, windows=tuple(spec.auto_approve.windows),
            outside=tuple(spec.auto_approve.outside),
            max_duration=spec.auto_approve.max_duration,
            end_with_shift=spec.auto_approve.end_with_shift),
        max_activations=None if spec.max_activations is None else UsageCap(
            spec.max_activations.count, spec.max_activations.per),
        escalate=tuple(Escalation(step.after, tuple(dict.fromkeys(step.to)))
                       for step in spec.escalate),
    )


def to_assignment(spec: AssignmentSpec) -> Assignment:
    return Assignment(
        user=spec.user,
        role=spec.role,
        type=AssignmentType(spec.type),
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
    )


def to_review(spec: ReviewSpec) -> ReviewSchedule:
    reviewers, _ = parse_reviewers(spec.reviewers, "reviewers")
    return ReviewSchedule(
        name=spec.name,
        roles=tuple(dict.fromkeys(spec.roles)),
        every=spec.every,
        duration=spec.duration,
        reviewers=reviewers if isinstance(reviewers, str) else ",".join(reviewers),
        if_no_response=spec.if_no_response,
        recommend_after=spec.recommend_after,
    )
