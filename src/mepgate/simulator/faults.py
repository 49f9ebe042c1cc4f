"""Fault injection for the simulated meter's ports: what goes wrong on a real MEP or optical
line.

A fault *spec* is a short comma-separated string, parsed once into a frozen
:class:`FaultSpec`; the front end turns it into a running :class:`Faults` with a seeded random
source and a start time, and asks it what to do at each step.  Nothing here reads a clock or
the global random module: times are passed in, randomness comes from the seed.

Grammar (``simulate --help`` shows the same; :data:`FAULTS_HELP`)::

    spec  := item ("," item)*
    item  := name | name "=" value

    drop=P          a reply is lost with probability P (the meter did process the request)
    corrupt=P       each byte the meter sends (replies; on the optical port also its ACKs and
                    NAKs) is altered with probability P (digests or CRCs then fail)
    hear=P          each byte the meter receives is altered with probability P (on the
                    optical port: ambient light, a misaligned head; the meter NAKs a damaged
                    packet or misses it; on the MEP port the request's digest fails or its
                    frame is lost)
    delay=S         every reply leaves S seconds late
    stall=S[@T]     the meter hangs for S seconds, from T seconds after start (default 0):
                    requests are ignored, nothing is sent
    optical=S[@T]   an optical session holds the shared UART for S seconds from T: the MEP
                    port is silent, requests are not received (FIELD-NOTES, Gen 2.x/3.x)
    reboot=P        the meter reboots with probability P per request (that request is lost)
    reboot=@T       the meter reboots once, T seconds after start
                    (a reboot restarts the sequence counter at a seeded random number)
    echo            TX and RX bridged: the client's bytes come back, the meter hears nothing
    wrongbaud       wrong baud rate: every request and alert turns into noise that never
                    forms a frame
    disabled        the utility disabled the port: it never answers, never alerts
    seed=N          seed of the fault random source (default: the simulator's --seed)

P is a probability 0..1, S and T are seconds.  Example: ``drop=0.1,corrupt=0.01,seed=7``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mepgate.errors import LocalProtocolError

FAULTS_HELP = """\
Fault spec: comma-separated items, e.g. drop=0.1,corrupt=0.01,seed=7.
drop=P: lose a reply (request processed) with probability P.
corrupt=P: alter each byte the meter sends with probability P.
hear=P: alter each byte the meter receives with probability P.
delay=S: send every reply S seconds late.
stall=S[@T]: meter hangs S seconds from T s after start (no replies, no alerts).
optical=S[@T]: optical session holds the UART S seconds from T (port silent).
reboot=P | reboot=@T: reboot with probability P per request, or once at T s
(the sequence counter restarts at a seeded random number).
echo: the client's bytes come back (TX/RX bridged), no answers.
wrongbaud: noise that never forms a frame instead of replies and alerts.
disabled: the port never answers.
seed=N: seed of the fault randomness (default: --seed)."""

NOISE_FLOOR = 0x02
"""Noise bytes are drawn from 0x02..0xFF: any two of them read as a length field of at least
0x0202 = 514, above the 476-byte maximum, so noise never forms a frame or an alert."""


class FaultSpecError(LocalProtocolError):
    """A ``--faults`` string that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Window:
    """A span of seconds, relative to when the faults started."""

    start: float
    duration: float

    def covers(self, elapsed: float) -> bool:
        return self.start <= elapsed < self.start + self.duration

    def __str__(self) -> str:
        return f"{_num(self.duration)}@{_num(self.start)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """A parsed fault spec; the default is a healthy line."""

    drop: float = 0.0
    corrupt: float = 0.0
    hear: float = 0.0
    delay: float = 0.0
    stalls: tuple[Window, ...] = ()
    optical: tuple[Window, ...] = ()
    reboot_probability: float = 0.0
    reboot_at: tuple[float, ...] = ()
    echo: bool = False
    wrong_baud: bool = False
    disabled: bool = False
    seed: int | None = None

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse the grammar in the module docstring; raises :class:`FaultSpecError`."""
        probabilities = {"drop": 0.0, "corrupt": 0.0, "hear": 0.0, "reboot": 0.0}
        delay = 0.0
        windows: dict[str, list[Window]] = {"stall": [], "optical": []}
        reboot_at: list[float] = []
        flags: set[str] = set()
        seed: int | None = None
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            name, has_value, value = (part.strip() for part in item.partition("="))
            name = name.lower()
            if name in _FLAGS:
                if has_value and value.lower() not in ("1", "true", "yes", "on"):
                    raise FaultSpecError(f"fault {name!r} takes no value (got {item!r})")
                flags.add(name)
            elif name not in _EXAMPLES:
                known = ", ".join(sorted({*_FLAGS, *_EXAMPLES}))
                raise FaultSpecError(f"unknown fault {name!r} in {text!r}; known: {known}")
            elif not value:
                raise FaultSpecError(f"fault {name!r} needs a value, e.g. {_EXAMPLES[name]}")
            elif name == "seed":
                seed = _integer(value, item)
            elif name in windows:
                duration, _, start = value.partition("@")
                windows[name].append(
                    Window(
                        start=_seconds(start, item) if start else 0.0,
                        duration=_seconds(duration, item),
                    )
                )
            elif name == "reboot" and value.startswith("@"):
                reboot_at.append(_seconds(value[1:], item))
            elif name == "delay":
                delay = _seconds(value, item)
            else:
                probabilities[name] = _probability(value, item)
        return cls(
            drop=probabilities["drop"],
            corrupt=probabilities["corrupt"],
            hear=probabilities["hear"],
            delay=delay,
            stalls=tuple(windows["stall"]),
            optical=tuple(windows["optical"]),
            reboot_probability=probabilities["reboot"],
            reboot_at=tuple(reboot_at),
            echo="echo" in flags,
            wrong_baud="wrongbaud" in flags,
            disabled="disabled" in flags,
            seed=seed,
        )

    def __str__(self) -> str:
        parts: list[str] = []
        for name in ("drop", "corrupt", "hear", "delay"):
            number: float = getattr(self, name)
            if number:
                parts.append(f"{name}={_num(number)}")
        parts += [f"stall={w}" for w in self.stalls]
        parts += [f"optical={w}" for w in self.optical]
        if self.reboot_probability:
            parts.append(f"reboot={_num(self.reboot_probability)}")
        parts += [f"reboot=@{_num(t)}" for t in self.reboot_at]
        parts += [flag for flag, attr in _FLAGS.items() if getattr(self, attr)]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return ",".join(parts)


_FLAGS = {"echo": "echo", "wrongbaud": "wrong_baud", "disabled": "disabled"}
_EXAMPLES = {
    "drop": "drop=0.1",
    "corrupt": "corrupt=0.01",
    "hear": "hear=0.01",
    "delay": "delay=0.3",
    "stall": "stall=5@10",
    "optical": "optical=30@60",
    "reboot": "reboot=0.01 or reboot=@30",
    "seed": "seed=7",
}


def _integer(value: str, item: str) -> int:
    try:
        return int(value, 0)
    except ValueError:
        raise FaultSpecError(f"{item!r}: {value!r} is not an integer") from None


def _number(value: str, item: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise FaultSpecError(f"{item!r}: {value!r} is not a number") from None


def _probability(value: str, item: str) -> float:
    number = _number(value, item)
    if not 0.0 <= number <= 1.0:
        raise FaultSpecError(f"{item!r}: a probability is between 0 and 1")
    return number


def _seconds(value: str, item: str) -> float:
    number = _number(value, item)
    if number < 0:
        raise FaultSpecError(f"{item!r}: seconds cannot be negative")
    return number


def _num(value: float) -> str:
    return f"{value:g}"


@dataclass(slots=True)
class Faults:
    """A fault spec at work: seeded decisions, and windows relative to ``epoch``.

    The front end asks it at each step (``silent``, ``drops_reply`` ...); tests may also add
    faults while the simulator runs (:meth:`stall_for`, :meth:`update`).
    """

    spec: FaultSpec
    epoch: float
    rng: random.Random = field(init=False)
    _reboots_done: int = field(default=0, init=False)
    _extra_silence: list[tuple[float, float]] = field(default_factory=list, init=False)
    default_seed: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(
            self.spec.seed if self.spec.seed is not None else self.default_seed
        )

    def update(self, spec: FaultSpec | str, now: float) -> None:
        """Replace the spec (and restart its clock and seed) while running."""
        self.spec = FaultSpec.parse(spec) if isinstance(spec, str) else spec
        self.epoch = now
        self._reboots_done = 0
        self._extra_silence.clear()
        self.__post_init__()

    def stall_for(self, seconds: float, now: float) -> None:
        """Hang the meter for ``seconds`` from ``now`` (in-process trigger)."""
        self._extra_silence.append((now, now + seconds))

    # -- questions the front end asks --------------------------------------------------------
    def silent(self, now: float, *, include_optical: bool = True) -> bool:
        """Whether the port neither hears requests nor sends anything at ``now``.

        ``include_optical=False``: the ``optical`` windows (a MEP-side fault) do not count.
        """
        if self.spec.disabled:
            return True
        elapsed = now - self.epoch
        windows = (*self.spec.stalls, *self.spec.optical) if include_optical else self.spec.stalls
        if any(w.covers(elapsed) for w in windows):
            return True
        return any(start <= now < end for start, end in self._extra_silence)

    @property
    def echo(self) -> bool:
        return self.spec.echo

    @property
    def wrong_baud(self) -> bool:
        return self.spec.wrong_baud

    @property
    def delay(self) -> float:
        return self.spec.delay

    def reboot_due(self, now: float) -> bool:
        """Whether a scheduled reboot (``reboot=@T``) is due; each fires once."""
        due = sum(1 for t in self.spec.reboot_at if now - self.epoch >= t)
        if due > self._reboots_done:
            self._reboots_done = due
            return True
        return False

    def reboots_on_request(self) -> bool:
        return self._chance(self.spec.reboot_probability)

    def drops_reply(self) -> bool:
        return self._chance(self.spec.drop)

    def corrupt(self, data: bytes) -> bytes:
        """What the meter sends, ``data``, with each byte altered (never kept) with
        probability ``corrupt``."""
        return self._damage(data, self.spec.corrupt)

    def hear(self, data: bytes) -> bytes:
        """What the meter receives, ``data``, with each byte altered with probability
        ``hear``."""
        return self._damage(data, self.spec.hear)

    def _damage(self, data: bytes, probability: float) -> bytes:
        if not probability:
            return data
        out = bytearray(data)
        for i in range(len(out)):
            if self.rng.random() < probability:
                out[i] ^= self.rng.randrange(1, 256)
        return bytes(out)

    def noise(self, size: int) -> bytes:
        """``size`` bytes of line noise that never frame (see :data:`NOISE_FLOOR`)."""
        return bytes(self.rng.randrange(NOISE_FLOOR, 256) for _ in range(size))

    def noise_size(self) -> int:
        """How many noise bytes a garbled request produces."""
        return self.rng.randrange(4, 40)

    def reboot_sequence(self) -> int:
        """Where the sequence counter restarts after a reboot (a real meter's is arbitrary)."""
        return self.rng.randrange(1 << 32)

    def _chance(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability
