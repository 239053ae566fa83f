"""A JSON Schema for the part of Adaptive Cards 1.5 that pimbot uses, checked with jsonschema.

Written for these tests from the Adaptive Cards 1.5 schema's definitions of the elements
pimbot sends (AdaptiveCard, TextBlock, RichTextBlock, TextRun, FactSet, Image, Input.Text,
Input.ChoiceSet, Action.Execute, Action.Submit, Action.ShowCard, Refresh): the same property
names, types, required properties, enum values (case-insensitive, as there) and
``additionalProperties: false``, so a misspelt or invented property fails as it would
against the full schema. Elements pimbot does
not use are not allowed here at all. Teams-specific limits are checked as well: version 1.5,
at most 6 actions, at most 60 ``refresh.userIds``, and ``Action.Execute`` everywhere a button
acts (with an ``Action.Submit`` fallback; a button that asks first is an ``Action.ShowCard``
whose card holds the one that acts).
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

DATE_OR_TIME = re.compile(r"\{\{[^}]*\}\}")
# Teams' rules: upper case, no spaces inside the braces or before the parenthesis, strict
# RFC 3339 times (a Z or an offset), SHORT / LONG / COMPACT for DATE.
RFC3339_CALL = re.compile(
    r"\{\{(DATE\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)(, (SHORT|LONG|COMPACT))?\)"
    r"|TIME\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)\))\}\}")


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "pattern": "(?i)^(" + "|".join(values) + ")$"}


SPACING = _enum("default", "none", "small", "medium", "large", "extraLarge", "padding")
COMMON = {"id": {"type": "string"}, "spacing": SPACING, "separator": {"type": "boolean"},
          "isVisible": {"type": "boolean"}}

TEXT_BLOCK = {
    "type": "object", "additionalProperties": False, "required": ["type", "text"],
    "properties": {
        "type": {"const": "TextBlock"}, "text": {"type": "string", "minLength": 1},
        "color": _enum("default", "dark", "light", "accent", "good", "warning", "attention"),
        "size": _enum("default", "small", "medium", "large", "extraLarge"),
        "weight": _enum("default", "lighter", "bolder"),
        "isSubtle": {"type": "boolean"}, "wrap": {"type": "boolean"},
        "maxLines": {"type": "number"}, **COMMON,
    },
}
TEXT_RUN = {
    "type": "object", "additionalProperties": False, "required": ["type", "text"],
    "properties": {
        "type": {"const": "TextRun"}, "text": {"type": "string"},
        "color": TEXT_BLOCK["properties"]["color"], "size": TEXT_BLOCK["properties"]["size"],
        "weight": TEXT_BLOCK["properties"]["weight"], "isSubtle": {"type": "boolean"},
        "italic": {"type": "boolean"}, "strikethrough": {"type": "boolean"},
        "underline": {"type": "boolean"}, "highlight": {"type": "boolean"},
        "fontType": _enum("default", "monospace"),
    },
}
RICH_TEXT_BLOCK = {
    "type": "object", "additionalProperties": False, "required": ["type", "inlines"],
    "properties": {
        "type": {"const": "RichTextBlock"},
        "inlines": {"type": "array", "minItems": 1, "items": TEXT_RUN},
        "horizontalAlignment": _enum("left", "center", "right"), **COMMON,
    },
}
FACT_SET = {
    "type": "object", "additionalProperties": False, "required": ["type", "facts"],
    "properties": {
        "type": {"const": "FactSet"},
        "facts": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["title", "value"],
            "properties": {"title": {"type": "string"}, "value": {"type": "string"}}}},
        **COMMON,
    },
}
IMAGE = {
    "type": "object", "additionalProperties": False, "required": ["type", "url"],
    "properties": {
        "type": {"const": "Image"},
        "url": {"type": "string", "pattern": "^(https://|data:image/(png|jpeg|gif);base64,)"},
        "altText": {"type": "string"}, "size": _enum("auto", "stretch", "small", "medium",
                                                     "large"),
        **COMMON,
    },
}
INPUT_COMMON = {"id": {"type": "string", "minLength": 1}, "label": {"type": "string"},
                "isRequired": {"type": "boolean"}, "errorMessage": {"type": "string"},
                "spacing": SPACING, "separator": {"type": "boolean"}}
INPUT_TEXT = {
    "type": "object", "additionalProperties": False, "required": ["type", "id"],
    "properties": {
        "type": {"const": "Input.Text"}, "isMultiline": {"type": "boolean"},
        "maxLength": {"type": "number"}, "placeholder": {"type": "string"},
        "regex": {"type": "string"}, "value": {"type": "string"},
        "style": _enum("text", "tel", "url", "email", "password"), **INPUT_COMMON,
    },
}
INPUT_CHOICE_SET = {
    "type": "object", "additionalProperties": False, "required": ["type", "id", "choices"],
    "properties": {
        "type": {"const": "Input.ChoiceSet"},
        "choices": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["title", "value"],
            "properties": {"type": {"const": "Input.Choice"}, "title": {"type": "string"},
                           "value": {"type": "string", "pattern": "^[^,]*$"}}}},
        "isMultiSelect": {"type": "boolean"}, "style": _enum("compact", "expanded", "filtered"),
        "value": {"type": "string"}, "placeholder": {"type": "string"},
        "wrap": {"type": "boolean"}, **INPUT_COMMON,
    },
}
ACTION_PROPS = {"title": {"type": "string", "minLength": 1}, "id": {"type": "string"},
                "style": _enum("default", "positive", "destructive"),
                "data": {"type": ["object", "string"]}}
ACTION_SUBMIT = {
    "type": "object", "additionalProperties": False, "required": ["type"],
    "properties": {"type": {"const": "Action.Submit"}, **ACTION_PROPS},
}
ACTION_EXECUTE = {
    "type": "object", "additionalProperties": False, "required": ["type", "verb"],
    "properties": {"type": {"const": "Action.Execute"}, "verb": {"type": "string",
                                                                 "minLength": 1},
                   "fallback": {"anyOf": [ACTION_SUBMIT, {"const": "drop"}]},
                   **ACTION_PROPS},
}
# A button that asks first: its card holds the question and the Action.Execute that goes
# ahead (the schema's Action.ShowCard; its card is an AdaptiveCard without a version).
ACTION_SHOW_CARD = {
    "type": "object", "additionalProperties": False, "required": ["type", "card"],
    "properties": {
        "type": {"const": "Action.ShowCard"}, **ACTION_PROPS,
        "card": {
            "type": "object", "additionalProperties": False, "required": ["type", "body"],
            "properties": {
                "type": {"const": "AdaptiveCard"},
                "body": {"type": "array", "minItems": 1,
                         "items": {"oneOf": [TEXT_BLOCK, RICH_TEXT_BLOCK]}},
                "actions": {"type": "array", "minItems": 1, "maxItems": 6,
                            "items": ACTION_EXECUTE},
            },
        },
    },
}
REFRESH = {
    "type": "object", "additionalProperties": False, "required": ["action"],
    "properties": {"type": {"const": "Refresh"}, "action": ACTION_EXECUTE,
                   "userIds": {"type": "array", "maxItems": 60,
                               "items": {"type": "string", "minLength": 1}}},
}
ADAPTIVE_CARD = {
    "type": "object", "additionalProperties": False, "required": ["type", "version", "body"],
    "properties": {
        "$schema": {"const": "http://adaptivecards.io/schemas/adaptive-card.json"},
        "type": {"const": "AdaptiveCard"}, "version": {"const": "1.5"},
        "body": {"type": "array", "minItems": 1, "items": {"oneOf": [
            TEXT_BLOCK, RICH_TEXT_BLOCK, FACT_SET, IMAGE, INPUT_TEXT, INPUT_CHOICE_SET]}},
        "actions": {"type": "array", "maxItems": 6,
                    "items": {"oneOf": [ACTION_EXECUTE, ACTION_SHOW_CARD]}},
        "refresh": REFRESH, "fallbackText": {"type": "string"},
    },
}


def assert_valid_card(card: Any) -> None:
    """Raise (with the failing path) unless ``card`` is valid for the schema above."""
    jsonschema.validate(card, ADAPTIVE_CARD, cls=jsonschema.Draft7Validator)
    ids = [e["id"] for e in card["body"] if str(e.get("type", "")).startswith("Input.")]
    assert len(ids) == len(set(ids)), f"input ids repeat: {ids}"
    for element in card["body"]:
        if element["type"] == "TextBlock":
            for call in DATE_OR_TIME.findall(element["text"]):
                assert RFC3339_CALL.fullmatch(call), f"DATE()/TIME() Teams cannot read: {call}"
