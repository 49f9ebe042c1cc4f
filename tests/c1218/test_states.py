"""The session state table: every (state, service) pair."""

from __future__ import annotations

import itertools

import pytest

from mepgate.c1218.services import Service
from mepgate.c1218.states import TRANSITIONS, SessionState, allowed, next_state
from mepgate.errors import LocalProtocolError

B, ID, S = SessionState.BASE, SessionState.IDENTIFIED, SessionState.SESSION

EXPECTED = {
    (B, Service.IDENT): ID,
    (ID, Service.NEGOTIATE): ID,
    (ID, Service.LOGON): S,
    (S, Service.SECURITY): S,
    (S, Service.READ): S,
    (S, Service.PARTIAL_READ): S,
    (S, Service.WRITE): S,
    (S, Service.PARTIAL_WRITE): S,
    (S, Service.WAIT): S,
    (S, Service.LOGOFF): ID,
    (B, Service.TERMINATE): B,
    (ID, Service.TERMINATE): B,
    (S, Service.TERMINATE): B,
}


def test_the_table_is_exactly_the_expected_one() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("state", "service"), list(itertools.product(SessionState, Service)))
def test_every_state_and_service(state: SessionState, service: Service) -> None:
    if (state, service) in EXPECTED:
        assert allowed(state, service)
        assert next_state(state, service) is EXPECTED[state, service]
    else:
        assert not allowed(state, service)
        with pytest.raises(LocalProtocolError, match="not allowed"):
            next_state(state, service)


def test_a_typical_session_walks_the_table() -> None:
    state = B
    for service in (
        Service.IDENT,
        Service.NEGOTIATE,
        Service.LOGON,
        Service.SECURITY,
        Service.PARTIAL_READ,
        Service.READ,
        Service.WAIT,
        Service.LOGOFF,
        Service.TERMINATE,
    ):
        state = next_state(state, service)
    assert state is B


def test_every_state_is_described() -> None:
    assert all(state.describe() for state in SessionState)
