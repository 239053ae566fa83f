"""Help texts: an overview of every command, and details with examples for one.

An adapter with words of its own (the console's ``as``, ``click``, ``wait``, ``quit``)
describes them as ``Topic``s too and passes them as ``own``: ``help click`` is then answered
in the same shape as ``help activate``, without the command prefix (they are not commands of
the grammar, so no platform sends them)."""

from __future__ import annotations

from collections.abc import Mapping

from pimbot.commands.catalog import TOPICS, Topic, unknown_command

_PREFIXES = ("/pim ", "pim ")


def help_text(topic: str | None = None, prefix: str = "pim",
              own: Mapping[str, Topic] | None = None) -> str:
    """The overview (no topic) or one command's help; commands are shown with ``prefix``;
    ``own``: the adapter's own words, by word."""
    lead = f"{prefix} " if prefix else ""
    if topic is None or not topic.strip():
        return _overview(lead)
    key = topic_word(topic)
    if own and key in own:
        return _details(own[key], "")
    if key not in TOPICS:
        raise unknown_command(key, in_help=True)
    return _details(TOPICS[key], lead)


def topic_word(topic: str) -> str:
    """The word ``help TOPIC`` asks about (``/pim activate now`` → ``activate``)."""
    key = topic.strip().lower()
    for known in _PREFIXES:
        key = key.removeprefix(known)
    return key.split()[0] if key.split() else key


def _overview(lead: str) -> str:
    lines = ["Commands (times are UTC; DUR is like 30m, 1h30m, 8h or 2d):"]
    for topic in TOPICS.values():
        syntax = " | ".join(f"{lead}{form}" for form in topic.syntax)
        lines.append(f"  {syntax} — {topic.summary}")
    lines.append(f"Details and examples: {lead}help COMMAND, like {lead}help activate")
    return "\n".join(lines)


def _details(topic: Topic, lead: str) -> str:
    lines = [f"{lead}{syntax}" for syntax in topic.syntax]
    lines.append(f"{topic.summary[:1].upper()}{topic.summary[1:]}.")
    lines.append(topic.details)
    lines.append("Examples:")
    lines += [f"  {lead}{example}" for example in topic.examples]
    return "\n".join(lines)
