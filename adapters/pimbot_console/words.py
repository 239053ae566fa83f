"""The console's own words (DESIGN.md, "The console adapter"), described as the grammar's
commands are, so ``help click`` answers like ``help activate`` (``commands.help_text``)."""

from __future__ import annotations

from pimbot.commands.catalog import Topic

CONSOLE_TOPICS: dict[str, Topic] = {topic.verb: topic for topic in (
    Topic("as", ("as EMAIL",), "act as that person from now on (console)",
          "Every line after it is typed by that person, so one terminal can play the "
          "requester, the approvers and the admin. The default is the first admin of the "
          "policy.", ("as bob@example.com", "as alice@example.com")),
    Topic("click", ("click N",), "press button N of the latest card shown to you (console)",
          "Cards print their buttons numbered, like [1] Approve [2] Deny; click presses one "
          "of the card most recently shown to the person you act as. A button that asks "
          "first (Cancel request, Deactivate) goes ahead: the click is the answer.",
          ("click 1", "click 2")),
    Topic("wait", ("wait DUR",), "let that much real time pass (console; for scripts)",
          "Waits in real time, at most 1h, then prints what happened meanwhile (grants, "
          "reminders, expiries). DUR is like 5s, 30m or 1h.", ("wait 5s", "wait 2m")),
    Topic("quit", ("quit",), "leave the console (or end the input)",
          "Stops reading once the work in flight is done; exit does the same.",
          ("quit",)),
)}
CONSOLE_TOPICS["exit"] = CONSOLE_TOPICS["quit"]
