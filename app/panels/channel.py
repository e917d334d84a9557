"""Channel (Prevent): police screening before panel; consent before any support plan."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.panels.base import (
    Assessment,
    ConsentGiver,
    ConsentRecord,
    ConsentStatus,
    LongText,
    PanelConfig,
    PanelType,
    PersonFacts,
    ShortText,
    age_on,
)


class ConcernType(StrEnum):
    ISLAMIST = "islamist"
    EXTREME_RIGHT_WING = "extreme_right_wing"
    LEFT_WING_ANARCHIST_SINGLE_ISSUE = "left_wing_anarchist_single_issue"
    MIXED_UNCLEAR_UNSTABLE = "mixed_unclear_unstable"
    SCHOOL_MASSACRE = "school_massacre"
    OTHER = "other"


class ChannelForm(BaseModel):
    """Referral to the Channel panel (CTSA 2015 s.36-41)."""

    model_config = ConfigDict(extra="forbid", title="Channel referral form")

    panel_type: Literal["channel"] = "channel"
    concern_type: ConcernType
    concerns: LongText
    vulnerabilities: list[ShortText] = Field(default_factory=list, max_length=30)
    online_activity: LongText | None = None


class ScreeningOutcome(StrEnum):
    SUITABLE = "suitable"
    MORE_INFORMATION = "more_information"
    NOT_APPROPRIATE = "not_appropriate"


ADULT = 18


class Channel(PanelType):
    key = "channel"
    title = "Channel panel"
    reference_prefix = "CHN"
    form = ChannelForm
    defaults = PanelConfig()
    person_roles = ("subject", "parent_or_carer", "other")
    requires_screening = True
    isolated = True
    stages = (
        "information_gathering",
        "panel",
        "support_plan",
        "exited",
        "review_6_months",
        "review_12_months",
    )
    consent_gated_stages = ("support_plan",)

    def assess(self, form: BaseModel, config: PanelConfig) -> Assessment:
        assert isinstance(form, ChannelForm)
        return Assessment(eligible=True, computed={"concern_type": form.concern_type.value})

    def consent_problems(
        self, consent: ConsentRecord, people: list[PersonFacts], on: date
    ) -> list[str]:
        # Referral precedes consent (it is sought after panel), but sharing without it needs
        # its gateway recorded like any other panel.
        return super().consent_problems(consent, people, on)


def support_consent_problems(
    consent: ConsentRecord, subject_born: date | None, on: date
) -> list[str]:
    """Channel is voluntary: a support plan needs consent, a parent's for under-18s."""
    if consent.status is not ConsentStatus.GIVEN:
        return ["a support plan cannot start without consent"]
    minor = subject_born is not None and age_on(subject_born, on) < ADULT
    if minor and consent.given_by is not ConsentGiver.PARENT_OR_CARER:
        return ["the subject is under 18: a parent's or carer's consent is required"]
    return []


PANEL_TYPE = Channel()
