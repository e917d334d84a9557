"""Community Risk MARAC: adults at high risk outside other processes; fire risk and clutter."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.panels.base import Assessment, Cadence, LongText, PanelConfig, PanelType, RiskBand


class RiskArea(StrEnum):
    SELF_NEGLECT = "self_neglect"
    HOARDING = "hoarding"
    FIRE_RISK = "fire_risk"
    EXPLOITATION = "exploitation"
    SUBSTANCE_MISUSE = "substance_misuse"
    MENTAL_HEALTH = "mental_health"
    REFUSING_SERVICES = "refusing_services"
    OTHER = "other"


class CommunityMaracForm(BaseModel):
    """Referral to the Community Risk MARAC."""

    model_config = ConfigDict(extra="forbid", title="Community MARAC referral form")

    panel_type: Literal["community_marac"] = "community_marac"
    risk_areas: list[RiskArea] = Field(min_length=1, max_length=len(RiskArea))
    clutter_rating: int | None = Field(
        default=None, ge=1, le=9, description="Clutter image rating 1-9; required for hoarding"
    )
    has_capacity: Literal["yes", "no", "not_assessed"]
    fire_brigade_involved: bool = False
    summary: LongText
    emergency: bool = Field(
        default=False, description="Very high risk: ask for an emergency meeting"
    )


class CommunityMarac(PanelType):
    key = "community_marac"
    title = "Community Risk MARAC"
    reference_prefix = "CRM"
    form = CommunityMaracForm
    defaults = PanelConfig(meeting_cadence=Cadence.MONTHLY)
    person_roles = ("subject", "household_member", "other")

    def assess(self, form: BaseModel, config: PanelConfig) -> Assessment:
        assert isinstance(form, CommunityMaracForm)
        reasons = []
        if RiskArea.HOARDING in form.risk_areas and form.clutter_rating is None:
            reasons.append("hoarding needs a clutter_rating (1-9)")
        fire = RiskArea.FIRE_RISK in form.risk_areas or (form.clutter_rating or 0) >= 7
        computed = {"fire_risk": fire, "clutter_rating": form.clutter_rating}
        risk: RiskBand = "high" if form.emergency or fire else "medium"
        return Assessment(eligible=not reasons, reasons=reasons, computed=computed, risk_level=risk)


PANEL_TYPE = CommunityMarac()
