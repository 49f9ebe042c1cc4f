"""Hypothesis strategies for C12.18 requests, responses and packets."""

from __future__ import annotations

from hypothesis import strategies as st

from mepgate.c1218.constants import BAUD_CODES, MAX_BAUD_CODES, MAX_PACKETS, MIN_PACKET_SIZE
from mepgate.c1218.packets import Packet
from mepgate.c1218.services import (
    IdentRequest,
    IdentResponse,
    LogoffRequest,
    LogonRequest,
    NegotiateRequest,
    NegotiateResponse,
    ReadRequest,
    Request,
    SecurityRequest,
    TerminateRequest,
    WaitRequest,
    WriteRequest,
)
from mepgate.proto.messages import FULL_READ_DEFAULT_LENGTH

bytes_ = st.integers(0, 0xFF)
table_ids = st.integers(0, 0xFFFF)
offsets = st.integers(0, 0xFFFFFF)
packet_sizes = st.integers(MIN_PACKET_SIZE, 0xFFFF)
packet_counts = st.integers(1, MAX_PACKETS)
bauds = st.sampled_from(sorted(BAUD_CODES.values()))
user_names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=10
)  # ASCII without trailing spaces (the padding)

requests: st.SearchStrategy[Request] = st.one_of(
    st.just(IdentRequest()),
    st.just(TerminateRequest()),
    st.just(LogoffRequest()),
    st.builds(
        NegotiateRequest,
        packet_size=packet_sizes,
        packets=packet_counts,
        bauds=st.lists(bauds, max_size=MAX_BAUD_CODES).map(tuple),
    ),
    st.builds(LogonRequest, user_id=st.integers(0, 0xFFFF), user=user_names),
    st.builds(SecurityRequest, st.binary(min_size=20, max_size=20)),
    st.builds(WaitRequest, bytes_),
    st.builds(ReadRequest, table_id=table_ids, count=st.just(FULL_READ_DEFAULT_LENGTH)),
    st.builds(ReadRequest, table_id=table_ids, offset=offsets, count=st.integers(0, 0xFFFF)),
    st.builds(
        WriteRequest, table_id=table_ids, data=st.binary(max_size=600), offset=st.none() | offsets
    ),
)

ident_responses = st.builds(
    IdentResponse,
    standard=bytes_,
    version=bytes_,
    revision=bytes_,
    features=st.binary(max_size=20),
)
negotiate_responses = st.builds(
    NegotiateResponse,
    packet_size=packet_sizes,
    packets=packet_counts,
    baud=st.none() | bauds,
)

packets = st.builds(
    Packet,
    data=st.binary(max_size=300),
    toggle=st.booleans(),
    identity=bytes_,
) | st.builds(
    lambda data, toggle, first, seq, identity: Packet(
        data, toggle, first=first, multi=True, seq=seq, identity=identity
    ),
    st.binary(max_size=300),
    st.booleans(),
    st.booleans(),
    bytes_,
    bytes_,
)
