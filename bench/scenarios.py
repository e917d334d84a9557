"""The scenarios, as data: one entry per endpoint the benchmark drives.

Each scenario is sent to the service and to the baseline (bench/baseline.py) with the same
method, path, headers and body; its targets are ratios of the service's figures to the
baseline's. To benchmark a new endpoint, append a ``Scenario`` here (and, if it needs data,
a seeder in bench/fixtures.py that publishes the ids its path template names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from string import Formatter
from typing import Any

# Replaced in a request body by a value unique to each request (thread and request number),
# so that every write really changes the row it targets.
UNIQUE = "$n"


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    # A str.format template over the ids the seeders publish (Fixture.ids). Each name maps to
    # a list of ids, and successive requests take successive ids (round robin), so a write
    # scenario spreads over many rows instead of queueing on one row's lock.
    path: str
    # Which principal's token to send (a key of Fixture.principals).
    token: str
    # Minimum throughput as a fraction of the baseline's, per backend ("sqlite", "postgresql").
    min_throughput_ratio: dict[str, float]
    # The JSON body, if any; string values may contain UNIQUE, and "{name}" for the first id
    # the seeders publish under that name (e.g. "{dv_panel_id}").
    body: dict[str, Any] | None = None
    # Tail latency bound for the service: p99 at most this multiple of its own p50.
    max_p99_over_p50: float = 5.0
    headers: dict[str, str] = field(default_factory=dict)
    # The per-request UNIQUE value in letters only (for names: matching keeps only letters).
    unique_letters: bool = False
    # Needs the cases seed_cases inserts (run --cases N; the seeder is skipped otherwise).
    needs_cases: bool = False

    def url_paths(self, ids: dict[str, list[str]], limit: int = 10_000) -> list[str]:
        """The concrete paths to cycle through: the i-th takes the i-th id of each list."""
        names = [name for _, name, _, _ in Formatter().parse(self.path) if name]
        count = min(limit, max((len(ids[name]) for name in names), default=1))
        return [
            self.path.format(**{name: ids[name][i % len(ids[name])] for name in names})
            for i in range(count)
        ]

    def body_parts(self, ids: dict[str, list[str]] | None = None) -> tuple[str, str] | None:
        """The JSON body split around UNIQUE: (prefix, suffix); None when there is no body.

        A body without UNIQUE has the whole text as prefix and an empty suffix, and is sent
        as-is (``unique_body`` is False).
        """
        if self.body is None:
            return None
        text = json.dumps(self.body, separators=(",", ":"))
        for name, values in (ids or {}).items():
            if values:
                text = text.replace("{" + name + "}", values[0])
        prefix, _, suffix = text.partition(UNIQUE)
        return prefix, suffix

    @property
    def unique_body(self) -> bool:
        return self.body is not None and UNIQUE in json.dumps(self.body)

    def request_headers(self, token: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", **self.headers}
        if self.body is not None:
            headers.setdefault("Content-Type", "application/json")
        return headers


def dv_referral() -> dict[str, Any]:
    """A valid DV MARAC referral (as tests/builders.py dv_referral builds it) whose victim is
    someone new each request: a family name no one else has (UNIQUE in letters), and no date
    of birth or postcode shared with every other victim, so matching looks them up by name,
    finds no one, and creates the person. The perpetrator is the same each time (matched)."""
    return {
        "panel_id": "{dv_panel_id}",
        "referral_date": "2026-11-20",
        "referrer": {"name": "DC Sam Officer", "email": "sam.officer@police.example.org"},
        "people": [
            {
                "role": "victim",
                "details": {
                    "given_name": "Jane",
                    "family_name": f"Bench{UNIQUE}",
                    "safe_contact": {"phone": "07700 900123", "safe_times": "weekdays 10-12"},
                },
            },
            {
                "role": "perpetrator",
                "details": {
                    "given_name": "John",
                    "family_name": "Roe",
                    "date_of_birth": "1988-02-02",
                },
            },
        ],
        "form": {
            "criterion": "visible_high_risk",
            "dash_answers": ["yes"] * 15 + ["no"] * 9,
            "children_in_household": 2,
        },
        "consent": {
            "status": "not_sought",
            "lawful_basis": "crime_and_disorder_act_1998_s115",
            "reason": "Risk of serious harm; seeking consent would increase the risk",
        },
        "crime_reference": "CAD1234/20NOV26",
    }


SCENARIOS: list[Scenario] = [
    Scenario(
        name="agency-read",
        method="GET",
        path="/api/v1/agencies/{agency_id}",
        token="user",
        min_throughput_ratio={"sqlite": 0.4, "postgresql": 0.2},
    ),
    Scenario(
        name="agency-write",
        method="PATCH",
        path="/api/v1/agencies/{agency_id}",
        token="admin",
        # No If-Match: every request succeeds, and each sets a new address, so each is a real
        # update (row version bump) plus its audit event. Successive requests go to successive
        # agencies: 32 writers on one row would measure the row lock and the disk's fsync
        # latency (PostgreSQL holds the lock until the commit is flushed), not the service.
        body={"contact_email": f"bench-{UNIQUE}@example.org"},
        min_throughput_ratio={"sqlite": 0.2, "postgresql": 0.12},
    ),
    Scenario(
        name="case-read",
        method="GET",
        path="/api/v1/cases/{case_id}",
        # The DV MARAC's coordinator: a managing role on the panel, so sees all its cases.
        token="coordinator",
        min_throughput_ratio={"sqlite": 0.4, "postgresql": 0.2},
        needs_cases=True,
    ),
    Scenario(
        name="case-list",
        method="GET",
        path="/api/v1/cases?limit=50&panel_id={dv_panel_id}",
        token="coordinator",
        min_throughput_ratio={"sqlite": 0.2, "postgresql": 0.1},
        needs_cases=True,
    ),
    Scenario(
        name="referral-submit",
        method="POST",
        path="/api/v1/referrals",
        # A police representative on the DV MARAC, whose agency may refer to it.
        token="referrer",
        body=dv_referral(),
        unique_letters=True,
        # Among 10,000 cases and their referrals, as issue 4 asks: alone or with the others.
        needs_cases=True,
        min_throughput_ratio={"sqlite": 0.2, "postgresql": 0.1},
    ),
    Scenario(
        name="actions-overdue",
        method="GET",
        path="/api/v1/actions?overdue=true&limit=50",
        # An agency's daily check: the police representative's overdue actions (a third of
        # its share of the 20,000 actions on 10,000 cases); audited once per case shown.
        token="referrer",
        min_throughput_ratio={"sqlite": 0.2, "postgresql": 0.1},
        needs_cases=True,
    ),
    Scenario(
        name="agenda-read",
        method="GET",
        path="/api/v1/conferences/{conference_id}/listings",
        # The coordinator's agenda: 20 listed cases with their outstanding actions, and the
        # suggestions drawn from the panel's 10,000 cases; audited once per listed case.
        token="coordinator",
        min_throughput_ratio={"sqlite": 0.2, "postgresql": 0.1},
        needs_cases=True,
    ),
]
