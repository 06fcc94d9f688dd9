"""Consent: robots.txt rules, the ``X-Robots-Tag`` rule, and the user-agent token both are matched on.

The policy (what is fetched when, what an unreachable robots.txt means): ``docs/download.md`` ("Consent").
Fetching robots.txt is the fetcher's job (it shares the request path, the guard and the host slots).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

DEFAULT_USER_AGENT = "waon_hf/0.1 (+https://github.com/waon-hf/waon_hf)"
X_ROBOTS_DIRECTIVES = frozenset({"noai", "noimageai", "noindex", "noimageindex"})
ROBOTS_MAX_BYTES = 512 * 1024  # the part of a robots.txt that is read, as Google does
ROBOTS_CACHE_MAX = 100_000  # hosts whose robots.txt one step instance remembers, per process


def user_agent_token(user_agent: str) -> str:
    """``"mycrawl/1.0 (+https://...)"`` -> ``"mycrawl"``: the name robots.txt groups are matched on."""
    return user_agent.strip().split("/", 1)[0].split(" ", 1)[0].lower() or "*"


def x_robots_refuses(values: Iterable[str], token: str, directives: Iterable[str] = X_ROBOTS_DIRECTIVES) -> bool:
    """img2dataset's X-Robots-Tag rule: ``[token:] d1, d2`` values with no token or our token count."""
    wanted = set(directives)
    for value in values:
        parts = value.split(":", 1)
        agent = parts[0].strip().lower() if len(parts) == 2 else None
        found = {d.strip().lower() for d in parts[-1].split(",")}
        if (agent is None or agent == token) and found & wanted:
            return True
    return False


@dataclasses.dataclass
class RobotsRules:
    """What one host's robots.txt says; ``unreachable`` means "disallow everything, retry later".

    Rules are matched by protego (RFC 9309: ``*`` and ``$`` wildcards, the longest matching rule wins,
    ``Allow`` on a tie); the group is the one whose user-agent line matches our product token.
    """

    parser: Any = None  # a protego.Protego; None: no robots.txt, all allowed
    unreachable: str | None = None
    status: str = "robots_unreachable"  # or timeout / connection_error when the host itself is down

    @classmethod
    def parse(cls, text: str) -> RobotsRules:
        from protego import Protego

        return cls(Protego.parse(text))

    def allows(self, token: str, url: str) -> bool:
        return self.parser is None or self.parser.can_fetch(url, token)

    def crawl_delay(self, token: str) -> float | None:
        """The ``Crawl-delay`` (seconds) of our group, or None when it sets none."""
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(token)
        return delay if delay else None
