"""What every panel type declares: its referral form, eligibility, consent rule, configuration.

A panel type is one module in this package and one line in its registry; nothing else in the
code base knows which panel types exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ConsentStatus(StrEnum):
    GIVEN = "given"
    REFUSED = "refused"
    NOT_SOUGHT = "not_sought"


class LawfulBasis(StrEnum):
    """Gateways for sharing without consent (see the information-sharing agreement)."""

    CDA_1998_S115 = "crime_and_disorder_act_1998_s115"
    UK_GDPR_6_1_E_9_2_G = "uk_gdpr_art6_1_e_art9_2_g"
    DPA_2018_SCH1_PARA18 = "dpa_2018_sch1_para18_safeguarding"
    CTSA_2015_S38 = "ctsa_2015_s38"
    CJA_2003_S325 = "cja_2003_s325"
    DPA_2018_PART3 = "dpa_2018_part3_law_enforcement"


class ConsentGiver(StrEnum):
    SUBJECT = "subject"
    PARENT_OR_CARER = "parent_or_carer"


class ConsentRecord(BaseModel):
    """Consent to share, as recorded at referral or later on the case."""

    model_config = ConfigDict(extra="forbid")

    status: ConsentStatus
    given_by: ConsentGiver | None = None
    lawful_basis: LawfulBasis | None = None
    reason: LongText | None = None


class Cadence(StrEnum):
    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"


class PanelConfig(BaseModel):
    """Per-panel configuration; each panel type supplies its defaults."""

    model_config = ConfigDict(extra="forbid")

    repeat_window_days: int = Field(default=365, ge=1, le=3650)
    escalation_threshold: int = Field(default=3, ge=1, le=100)
    meeting_cadence: Cadence = Cadence.MONTHLY
    minutes_due_working_days: int = Field(default=3, ge=1, le=30)
    retention_years: int = Field(default=6, ge=1, le=100)


class PanelConfigUpdate(BaseModel):
    """Overrides of a panel's configuration (only the fields given change)."""

    model_config = ConfigDict(extra="forbid")

    repeat_window_days: int | None = Field(default=None, ge=1, le=3650)
    escalation_threshold: int | None = Field(default=None, ge=1, le=100)
    meeting_cadence: Cadence | None = None
    minutes_due_working_days: int | None = Field(default=None, ge=1, le=30)
    retention_years: int | None = Field(default=None, ge=1, le=100)


RiskBand = Literal["standard", "medium", "high"]


@dataclass(frozen=True)
class Assessment:
    """The service's own reading of a referral form: never the client's."""

    eligible: bool
    reasons: list[str] = field(default_factory=list)
    computed: dict[str, Any] = field(default_factory=dict)
    risk_level: RiskBand | None = None


@dataclass(frozen=True)
class PersonFacts:
    role: str
    date_of_birth: date | None


class PanelType:
    """Base class of the panel-type plug-ins."""

    key: ClassVar[str]
    title: ClassVar[str]
    reference_prefix: ClassVar[str]
    form: ClassVar[type[BaseModel]]
    defaults: ClassVar[PanelConfig] = PanelConfig()
    # The roles people can have in a referral of this type; the first is the subject.
    person_roles: ClassVar[tuple[str, ...]] = ("subject",)
    # Referrals are screened (e.g. Channel's police gateway) before a coordinator decides.
    requires_screening: ClassVar[bool] = False
    # Cases of this type are visible only to the panel's own members, never shared further.
    isolated: ClassVar[bool] = False
    # Case stages, in order; the first is where a new case starts.
    stages: ClassVar[tuple[str, ...]] = ("open",)
    # Stages that cannot begin until consent to the panel's support is given.
    consent_gated_stages: ClassVar[tuple[str, ...]] = ()

    def assess(self, form: BaseModel, config: PanelConfig) -> Assessment:
        """Decide whether the referral meets this panel's criteria, with reasons."""
        raise NotImplementedError

    def consent_problems(
        self, consent: ConsentRecord, people: list[PersonFacts], on: date
    ) -> list[str]:
        """Why this consent record is not enough for a referral (empty when it is)."""
        if consent.status is not ConsentStatus.GIVEN and (
            consent.lawful_basis is None or consent.reason is None
        ):
            return ["without consent, the lawful basis for sharing and the reason must be recorded"]
        return []

    def schema(self) -> dict[str, Any]:
        return self.form.model_json_schema()


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
