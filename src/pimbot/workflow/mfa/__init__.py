"""MFA inside chat: the TOTP verifier, enrolment commands and QR codes."""

from pimbot.workflow.mfa.service import MfaService

__all__ = ["MfaService"]
