"""The sans-IO ANSI C12.18 core (the optical port): bytes in, events out; no I/O, no clock.

* :mod:`~mepgate.c1218.constants` -- every timing and size rule once;
* :mod:`~mepgate.c1218.crc` -- CRC-16/X-25;
* :mod:`~mepgate.c1218.packets` -- packets, splitting to a packet size, reassembly, duplicates;
* :mod:`~mepgate.c1218.buffer` -- the bounded receive buffer (packets, ACK/NAK, noise);
* :mod:`~mepgate.c1218.services` -- the services' requests and responses;
* :mod:`~mepgate.c1218.states` -- the session states as one transition table;
* :mod:`~mepgate.c1218.keys` -- the 20-byte password as users enter it.

Response codes are :class:`mepgate.proto.codes.ResponseCode` (one definition for MEP and
C12.18), worded for the optical port by ``describe_c1218()``.
"""
