"""The optical password: accepted forms, refusals with advice, never shown."""

from __future__ import annotations

import pytest

from mepgate.c1218.keys import Password, parse_password
from mepgate.c1218.services import SecurityRequest, parse_request, security_request
from mepgate.proto.errors import InvalidKeyError

RK = "A1B2C3D4E5F6A7B8C9D0"  # 20 characters that look like hex but are sent as ASCII


def test_twenty_characters_are_sent_as_ascii() -> None:
    password = parse_password(f"  {RK} ")
    assert password.value == RK.encode("ascii")
    assert password.entered_as == "ascii"


def test_hex_form_gives_the_bytes() -> None:
    password = parse_password(
        "hex:" + "00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 01 02 03 04"
    )
    assert password.value == bytes.fromhex("00112233445566778899aabbccddeeff01020304")
    assert password.entered_as == "hex"
    assert password == Password(password.value)


@pytest.mark.parametrize(
    ("text", "advice"),
    [
        ("", "empty"),
        ("short", "has 5 characters"),
        (RK + "X", "has 21 characters"),
        ("A1B2C3D4E5 F6A7B8C9D", "spaces"),
        ("ÆØÅ" * 6 + "ab", "printable ASCII"),
        (RK.encode().hex(), "write it as 'hex:'"),
        ("hex:0011", "40 hex digits"),
        ("hex:" + "zz" * 20, "40 hex digits"),
    ],
)
def test_other_forms_are_refused_with_advice(text: str, advice: str) -> None:
    with pytest.raises(InvalidKeyError, match=advice):
        parse_password(text)


def test_the_password_never_shows() -> None:
    password = parse_password(RK)
    for shown in (repr(password), str(password), f"{password}", f"{password!r}"):
        assert RK not in shown
        assert "hidden" in shown
    request = parse_request(security_request(password))
    assert isinstance(request, SecurityRequest)
    assert request.password == RK.encode()
    assert RK not in repr(request)
