"""Help texts: an overview of every command, and details with examples for one."""

from __future__ import annotations

from pimbot.commands.catalog import TOPICS, unknown_command

_PREFIXES = ("/pim ", "pim ")


def help_text(topic: str | None = None, prefix: str = "pim") -> str:
    """The overview (no topic) or one command's help; commands are shown with ``prefix``."""
    lead = f"{prefix} " if prefix else ""
    if topic is None or not topic.strip():
        return _overview(lead)
    key = topic.strip().lower()
    for known in _PREFIXES:
        key = key.removeprefix(known)
    key = key.split()[0] if key.split() else key
    if key not in TOPICS:
        raise unknown_command(key, in_help=True)
    return _details(key, lead)


def _overview(lead: str) -> str:
    lines = ["Commands (times are UTC; DUR is like 30m, 1h30m, 8h or 2d):"]
    for topic in TOPICS.values():
        syntax = " | ".join(f"{lead}{form}" for form in topic.syntax)
        lines.append(f"  {syntax} — {topic.summary}")
    lines.append(f"Details and examples: {lead}help COMMAND, like {lead}help activate")
    return "\n".join(lines)


def _details(key: str, lead: str) -> str:
    topic = TOPICS[key]
    lines = [f"{lead}{syntax}" for syntax in topic.syntax]
    lines.append(f"{topic.summary[:1].upper()}{topic.summary[1:]}.")
    lines.append(topic.details)
    lines.append("Examples:")
    lines += [f"  {lead}{example}" for example in topic.examples]
    return "\n".join(lines)
