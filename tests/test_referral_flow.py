"""A DV MARAC referral from a partner agency to an open case, through the real API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models.agency import AgencyKind
from app.permissions import Scope
from app.security import Security
from tests.builders import (
    bearer,
    client_token,
    dv_referral,
    give_role,
    make_agency,
    make_client,
    make_panel,
    make_user,
    user_token,
)


def test_referral_to_case(client: TestClient, session: Session, security: Security) -> None:
    council = make_agency(session, "Council", AgencyKind.LOCAL_AUTHORITY)
    police = make_agency(session, "Police", AgencyKind.POLICE)
    panel = make_panel(session, "dv_marac", [council, police])
    coordinator = make_user(session, security, council)
    give_role(session, panel, coordinator.id, "coordinator")
    gateway = make_client(session, security, police, [Scope.REFERRALS_WRITE])
    partner = bearer(client_token(security, gateway))
    coord = bearer(user_token(security, coordinator))

    r = client.post("/api/v1/referrals", json=dv_referral(panel.id), headers=partner)
    assert r.status_code == 201, r.text
    referral = r.json()
    assert referral["assessment"]["dash_score"] == 15
    assert referral["status"] == "submitted"

    low = client.post("/api/v1/referrals", json=dv_referral(panel.id, yes=9), headers=partner)
    assert low.status_code == 422
    assert "DASH score is 9" in low.json()["detail"]

    d = client.post(
        f"/api/v1/referrals/{referral['id']}/decision",
        json={"decision": "accept"},
        headers=coord,
    )
    assert d.status_code == 200, d.text
    case_id = d.json()["case_id"]
    case = client.get(f"/api/v1/cases/{case_id}", headers=coord)
    assert case.status_code == 200, case.text
    assert case.json()["reference"].startswith("DVM-")
    assert {p["role"] for p in case.json()["people"]} == {"victim", "perpetrator"}
    # The partner system sees its referral's status, but not the case.
    mine = client.get(f"/api/v1/referrals/{referral['id']}", headers=partner)
    assert mine.status_code == 200
    assert mine.json()["status"] == "accepted"
    assert mine.json()["case_id"] is None
    assert client.get(f"/api/v1/cases/{case_id}", headers=partner).status_code == 403
