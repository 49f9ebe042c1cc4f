"""Lost replies and slow answers against the simulator over real TCP: a read is asked again
under the next sequence number (no 0x0C round trip), a write is resent as the same frame, and
a meter slower than the read timeout learnt from its answers costs one short try -- its late
reply is recognised and dropped, never taken for the answer.  The faults really happen (the
simulator's counters say so) and every value equals the meter's."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import pytest

from mepgate.client import LinkTiming, MepSession, MeterClient
from mepgate.client.diagnosis import Diagnosis
from mepgate.client.doctor import DoctorReport, run_doctor
from mepgate.client.errors import AnswerLostError, NoAnswerError, OutOfTimeError
from mepgate.client.timing import FRAME_GAP_TIMEOUT
from mepgate.proto import parse_key
from mepgate.tables.ids import TableId

from .conftest import MBK_TEXT, Sim, StartSim

EP39 = 2048 + 39  # post scheduled read data (the MBK may start it)
FAST = LinkTiming(
    response_timeout=0.05,
    min_request_interval=0.0,
    frame_gap_timeout=0.02,
    max_silent_sends=25,
    max_sends=60,
)


def traced_client(port: str, timing: LinkTiming, sent: list[bytes]) -> MeterClient:
    def trace(direction: str, data: bytes) -> None:
        if direction == ">>":
            sent.append(data)

    return MeterClient(MepSession(port, parse_key(MBK_TEXT), timing=timing, trace=trace))


def meter_0x0c(sim: Sim) -> int:
    """0x0C replies the meter has sent (sequence numbers it refused)."""
    return sim.running.call(lambda: sim.meter.core.counters.sequence_errors)


def dropped(sim: Sim) -> int:
    return sim.running.call(lambda: sim.running.port.stats.dropped)


def sequence(frame: bytes) -> int:
    return int.from_bytes(frame[-12:-8], "big")  # <length> <message> <seq:4> <digest:8>


def test_a_read_whose_reply_was_lost_goes_on_under_the_next_number_and_meets_no_0x0c(
    start_sim: StartSim,
) -> None:
    sim = start_sim("gen4", faults="drop=0.3,seed=5")
    expected = sim.table(TableId.BT28)[:40]
    sent: list[bytes] = []

    async def run() -> MeterClient:
        async with traced_client(sim.port("tcp"), FAST, sent) as client:
            await client.read(TableId.BT28, offset=0, count=40)  # in step with the meter
            sent.clear()
            for _ in range(40):
                assert await client.read(TableId.BT28, offset=0, count=40) == expected
            return client

    asyncio.run(run())  # warm-up: the first 0x0C (a new client's number) is behind us
    drops, refusals = dropped(sim), meter_0x0c(sim)
    client = asyncio.run(run())
    assert dropped(sim) - drops >= 5  # replies were lost ...
    assert client.stats.timeouts >= 5
    # ... and every retry went on under the next number: no number twice, no 0x0C for any.
    numbers = [sequence(frame) for frame in sent]
    assert all(b == a + 1 for a, b in itertools.pairwise(numbers))
    assert meter_0x0c(sim) - refusals <= 1  # at most the new client's first number


def accepted(sim: Sim) -> int:
    """Requests the meter accepted and carried out."""
    return sim.running.call(lambda: sim.meter.core.counters.accepted)


def test_a_write_whose_reply_was_lost_is_resent_as_the_same_frame_and_never_done_twice(
    start_sim: StartSim,
) -> None:
    sim = start_sim("gen4", faults="drop=0.4,seed=9")
    sent: list[bytes] = []
    writes = 12

    async def run() -> tuple[int, int, bytes, int]:
        async with traced_client(sim.port("tcp"), FAST, sent) as client:
            et51 = await client.read(TableId.ET51, offset=0, count=8)
            refusals, carried_out = meter_0x0c(sim), accepted(sim)
            sent.clear()
            lost = 0
            for _ in range(writes):
                try:
                    await client.write(TableId.ET51, et51, offset=0)  # the same bytes back
                except AnswerLostError:
                    lost += 1  # carried out, its answer lost: said so, not done again
            return refusals, carried_out, et51, lost

    refusals, carried_out, et51, lost = asyncio.run(run())
    assert sim.table(TableId.ET51)[:8] == et51
    resent = sum(a == b for a, b in itertools.pairwise(sent))
    assert resent >= 2  # MEP guide, "Response timeout": the same packet again
    assert lost >= 1
    # The meter carried out each write once: one new frame per write, and each identical copy
    # refused with 0x0C (the meter had used that number) rather than written again.
    assert len(set(sent)) == writes
    assert accepted(sim) - carried_out == writes
    assert meter_0x0c(sim) - refusals == resent


def test_a_procedure_whose_answer_was_lost_runs_once(start_sim: StartSim) -> None:
    sim = start_sim("gen4", faults="drop=0.4,seed=3")
    calls = 15

    def posts() -> int:
        return sim.running.call(lambda: sim.model.mep.posted.read_count or 0)

    async def run() -> tuple[int, int]:
        async with MeterClient(MepSession(sim.port("tcp"), parse_key(MBK_TEXT), timing=FAST)) as c:
            await c.read(TableId.BT01, offset=0, count=4)  # in step with the meter
            before, drops = posts(), dropped(sim)
            for _ in range(calls):
                result = await c.call(EP39, bytes.fromhex("00aabb"))  # post scheduled data
                assert result.result == 0
            return before, dropped(sim) - drops

    before, drops = asyncio.run(run())
    assert drops >= 5  # answers were lost, BT07's among them ...
    assert posts() - before == calls  # ... and each procedure ran exactly once


def test_a_meter_slower_than_the_learnt_timeout_costs_one_short_try_never_a_wrong_value(
    start_sim: StartSim,
) -> None:
    sim = start_sim("gen4")
    expected = sim.table(TableId.BT28)[:40]
    # A 1 s bound (the --timeout knob) leaves room on a busy machine; the learnt timeout
    # starts at the guide's and falls to what the meter's answers justify.
    timing = dataclasses.replace(LinkTiming(), frame_gap_timeout=FRAME_GAP_TIMEOUT)
    timing = dataclasses.replace(timing, response_timeout=1.0)

    async def run() -> None:
        session = MepSession(sim.port("tcp"), parse_key(MBK_TEXT), timing=timing)
        async with MeterClient(session) as client:
            assert session.read_timeout == 1.0  # nothing learnt yet
            for _ in range(20):
                assert await client.read(TableId.BT28, offset=0, count=40) == expected
            learnt = session.read_timeout
            assert timing.min_read_timeout <= learnt < 0.4
            assert client.stats.timeouts == 0
            sim.running.configure_faults("delay=0.4")  # the meter slows down
            for _ in range(5):
                assert await client.read(TableId.BT28, offset=0, count=40) == expected
            assert client.stats.timeouts == 1  # one short try; the retry waited long enough
            assert client.stats.late_replies == 1  # its answer came late, and was dropped
            assert client.stats.damaged_replies == 0  # ... not taken for damage either
            # ... and learnt: the timeout grew to about three times the slow answer (less the
            # 9600 Bd wire time the client subtracts; the simulator here sends at once).
            assert session.read_timeout >= 0.75
            # A write never waits a learnt timeout: it keeps the guide's (here 1 s).
            et51 = await client.read(TableId.ET51, offset=0, count=8)
            await client.write(TableId.ET51, et51, offset=0)
            assert client.stats.timeouts == 1

    asyncio.run(run())


def test_a_new_connection_starts_from_the_guides_timeout(start_sim: StartSim) -> None:
    sim = start_sim("gen4")

    async def run() -> None:
        session = MepSession(sim.port("tcp"), parse_key(MBK_TEXT))
        async with MeterClient(session) as client:
            for _ in range(20):
                await client.read(TableId.BT28, offset=0, count=8)
            assert session.read_timeout < LinkTiming().response_timeout
        async with MeterClient(session):
            assert session.read_timeout == LinkTiming().response_timeout

    asyncio.run(run())


def test_doctor_counts_a_late_answer_as_late_not_lost(start_sim: StartSim) -> None:
    sim = start_sim("gen4")

    async def run() -> DoctorReport:
        session = MepSession(sim.port("tcp"), parse_key(MBK_TEXT))
        client = MeterClient(session)
        await client.connect()
        for _ in range(20):  # the read timeout is learnt from these
            await client.read(TableId.BT28, offset=0, count=8)
        sim.running.configure_faults("delay=0.3")  # the meter slows down, the line is clean
        return await run_doctor(client, samples=3)

    report = asyncio.run(run())
    assert report.stats.timeouts >= 1  # the slower answer missed the learnt timeout ...
    assert report.stats.late_replies == report.stats.timeouts  # ... and came, late
    assert report.lost == 0
    assert report.diagnosis is Diagnosis.OK


def test_a_time_limit_ends_the_resends_and_starts_no_further_request(start_sim: StartSim) -> None:
    # MeterClient.time_limit (the poller gives each job step one): on a line that loses every
    # reply, a read stops being asked again once the time is up -- long before the 25 silent
    # sends it is allowed otherwise -- and the next request of the step is not started.
    sim = start_sim("gen4", faults="drop=1.0,seed=5")
    sent: list[bytes] = []

    async def run() -> tuple[int, int]:
        async with traced_client(sim.port("tcp"), FAST, sent) as client:
            with client.time_limit(0.3):
                with pytest.raises(OutOfTimeError, match="reading BT28"):
                    await client.read(TableId.BT28, offset=0, count=40)
                limited = len(sent)
                with pytest.raises(OutOfTimeError, match="not started"):
                    await client.read(TableId.BT28, offset=0, count=40)
                assert len(sent) == limited
            sent.clear()
            with pytest.raises(NoAnswerError) as unlimited:
                await client.read(TableId.BT28, offset=0, count=40)
            assert not isinstance(unlimited.value, OutOfTimeError)
            return limited, len(sent)

    limited, unlimited = asyncio.run(run())
    assert unlimited == FAST.max_silent_sends
    assert 1 <= limited < FAST.max_silent_sends
    assert dropped(sim) >= limited + unlimited  # the meter did get them: the replies were lost
