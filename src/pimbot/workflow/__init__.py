"""Async use cases: activation, approval, assignment, MFA, audit; PimCore is the facade."""
