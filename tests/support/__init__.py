"""Test helpers shared by the test packages: one fake gateway, one wait helper.

* :mod:`.gateway`: :class:`~.gateway.FakeGateway`, the one
  :class:`~mepgate.service.view.GatewayView` the web and output tests inject (a real hub, a
  real store, real settings files), and :class:`~.gateway.SimMeter`, the simulator's meter
  model and the readings a perfect poller would make of it.
* :mod:`.wait`: :func:`~.wait.until`, waiting for a condition in a test's event loop.
"""
