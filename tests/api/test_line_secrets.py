"""Issue 11: an hw seat's password given to POST /v1/lines is stored sealed with
CC_SECRET_KEY, never returned; other channels' lines take none; without a key it is refused
with the field named, and nothing is stored."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlmodel import Session, select

from core.secrets import unseal
from store.models import AgentLine
from tests.api.conftest import Harness, provision_lines

KEY = Fernet.generate_key().decode()
SEAT = {"channel": "hw", "agent": "10042", "number": "+861088000042", "password": "s3cret-pw"}


@pytest.fixture(autouse=True)
def provisioned(harness: Harness) -> None:
    """The operator gave the tenant the seat and a number (issue 20)."""
    provision_lines(harness, "hw", SEAT["agent"])
    provision_lines(harness, "e9", "+861088000043")


def stored(harness: Harness, agent: str) -> AgentLine | None:
    with Session(harness.state.engine) as session:
        return session.exec(select(AgentLine).where(AgentLine.agent == agent)).first()


async def test_a_seat_password_is_stored_sealed_and_never_returned(harness: Harness) -> None:
    harness.state.settings.secret_key = KEY
    created = await harness.api.post("/v1/lines", json=SEAT)
    assert created.status_code == 201, created.text
    listed = await harness.api.get("/v1/lines", params={"channel": "hw"})
    assert SEAT["password"] not in created.text + listed.text
    row = stored(harness, SEAT["agent"])
    assert row is not None and row.secret is not None
    assert SEAT["password"] not in row.secret  # sealed, not plain
    assert unseal(row.secret, KEY) == SEAT["password"]


async def test_a_webhook_channels_line_takes_no_password(harness: Harness) -> None:
    harness.state.settings.secret_key = KEY
    body = {**SEAT, "channel": "e9", "agent": "+861088000043", "number": "+861088000043"}
    refused = await harness.api.post("/v1/lines", json=body)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "password"
    assert stored(harness, body["agent"]) is None


async def test_without_a_secret_key_a_password_is_refused(harness: Harness) -> None:
    harness.state.settings.secret_key = ""
    refused = await harness.api.post("/v1/lines", json=SEAT)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "password"
    assert SEAT["password"] not in refused.text
    assert stored(harness, SEAT["agent"]) is None


async def test_a_seat_without_a_password_signs_in_with_the_channels_default(
    harness: Harness,
) -> None:
    body = {key: value for key, value in SEAT.items() if key != "password"}
    assert (await harness.api.post("/v1/lines", json=body)).status_code == 201
    row = stored(harness, SEAT["agent"])
    assert row is not None and row.secret is None
