"""Domestic abuse MARAC: SafeLives referral criteria over the 24-question DASH RIC."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.panels.base import Assessment, Cadence, LongText, PanelConfig, PanelType

HIGH, MEDIUM = 14, 10


class DashAnswer(StrEnum):
    YES = "yes"
    NO = "no"
    NOT_KNOWN = "not_known"


class Criterion(StrEnum):
    VISIBLE_HIGH_RISK = "visible_high_risk"
    PROFESSIONAL_JUDGEMENT = "professional_judgement"
    POTENTIAL_ESCALATION = "potential_escalation"


class DvMaracForm(BaseModel):
    """Referral to the domestic abuse MARAC. The DASH score is computed, never sent."""

    model_config = ConfigDict(extra="forbid", title="DV MARAC referral form")

    panel_type: Literal["dv_marac"] = "dv_marac"
    criterion: Criterion
    dash_answers: list[DashAnswer] = Field(
        min_length=24, max_length=24, description="The 24 DASH RIC answers, in question order"
    )
    professional_judgement_reasons: LongText | None = None
    incidents_last_12_months: int | None = Field(default=None, ge=0, le=1000)
    children_in_household: int = Field(default=0, ge=0, le=30)
    idva_referral_made: bool = False
    pregnant: bool | None = None


def dash_band(score: int) -> Literal["standard", "medium", "high"]:
    if score >= HIGH:
        return "high"
    return "medium" if score >= MEDIUM else "standard"


class DvMarac(PanelType):
    key = "dv_marac"
    title = "Domestic abuse MARAC"
    reference_prefix = "DVM"
    form = DvMaracForm
    defaults = PanelConfig(meeting_cadence=Cadence.FORTNIGHTLY, escalation_threshold=3)
    person_roles = ("victim", "perpetrator", "child_in_household", "other")

    def assess(self, form: BaseModel, config: PanelConfig) -> Assessment:
        assert isinstance(form, DvMaracForm)
        score = sum(answer is DashAnswer.YES for answer in form.dash_answers)
        band = dash_band(score)
        computed = {"dash_score": score, "dash_band": band}
        reasons: list[str] = []
        if form.criterion is Criterion.VISIBLE_HIGH_RISK and score < HIGH:
            reasons.append(
                f"visible high risk needs {HIGH} or more 'yes' answers; the DASH score is {score}"
            )
        if form.criterion is Criterion.PROFESSIONAL_JUDGEMENT and not (
            form.professional_judgement_reasons
        ):
            reasons.append("professional judgement needs professional_judgement_reasons")
        if form.criterion is Criterion.POTENTIAL_ESCALATION:
            incidents = form.incidents_last_12_months
            if incidents is None or incidents < config.escalation_threshold:
                reasons.append(
                    "potential escalation needs incidents_last_12_months of at least "
                    f"{config.escalation_threshold} (this panel's threshold)"
                )
        # Professional judgement may raise a case to high risk, never lower the actuarial score.
        risk = "high" if not reasons else band
        return Assessment(eligible=not reasons, reasons=reasons, computed=computed, risk_level=risk)


PANEL_TYPE = DvMarac()
