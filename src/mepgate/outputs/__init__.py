"""Outputs of the gateway: MQTT (Home Assistant discovery, old-firmware topics, durable
store-and-forward) and Prometheus metrics.

* :class:`mepgate.outputs.mqtt.MqttPublisher` -- started by the gateway when ``[mqtt]`` is set
  (its docstring shows how);
* :func:`mepgate.outputs.prometheus.render_metrics` -- the body of ``/metrics``;
* :func:`mepgate.outputs.compat.dabbler_json` -- the old firmware's JSON (MQTT and
  ``/getDashDataWS``).
"""
