"""Prevention Panel and Serious Violence and Gangs Panel: early intervention for young people."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.panels.base import (
    Assessment,
    ConsentRecord,
    ConsentStatus,
    PanelConfig,
    PanelType,
    PersonFacts,
    RiskBand,
    ShortText,
)


class YouthForm(BaseModel):
    """Risk and protective factors of a young person; consent is required."""

    model_config = ConfigDict(extra="forbid")

    risk_factors: list[ShortText] = Field(min_length=1, max_length=30)
    protective_factors: list[ShortText] = Field(default_factory=list, max_length=30)
    school_or_college: ShortText | None = None
    suggested_interventions: list[
        Literal["mentoring", "education", "housing_move", "youth_work", "family_support", "other"]
    ] = Field(default_factory=list, max_length=6)


class PreventionForm(YouthForm):
    model_config = ConfigDict(extra="forbid", title="Prevention Panel referral form")

    panel_type: Literal["prevention"] = "prevention"


class GangsForm(YouthForm):
    model_config = ConfigDict(extra="forbid", title="Gangs Panel referral form")

    panel_type: Literal["gangs"] = "gangs"
    known_associations: list[ShortText] = Field(default_factory=list, max_length=30)


class YouthPanel(PanelType):
    person_roles: ClassVar[tuple[str, ...]] = ("subject", "parent_or_carer", "other")

    def assess(self, form: BaseModel, config: PanelConfig) -> Assessment:
        assert isinstance(form, YouthForm)
        risk: RiskBand = (
            "high" if len(form.risk_factors) > len(form.protective_factors) + 2 else "medium"
        )
        computed = {
            "risk_factors": len(form.risk_factors),
            "protective_factors": len(form.protective_factors),
        }
        return Assessment(eligible=True, computed=computed, risk_level=risk)

    def consent_problems(
        self, consent: ConsentRecord, people: list[PersonFacts], on: date
    ) -> list[str]:
        if consent.status is not ConsentStatus.GIVEN or consent.given_by is None:
            return ["this panel is voluntary: consent of the young person or a parent is required"]
        return []


class Prevention(YouthPanel):
    key = "prevention"
    title = "Prevention Panel"
    reference_prefix = "PRV"
    form = PreventionForm


class Gangs(YouthPanel):
    key = "gangs"
    title = "Serious Violence and Gangs Panel"
    reference_prefix = "GNG"
    form = GangsForm


PREVENTION = Prevention()
GANGS = Gangs()
