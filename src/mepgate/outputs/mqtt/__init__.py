"""MQTT publishing; see :mod:`mepgate.outputs.mqtt.publisher` for how the gateway starts it
and :mod:`mepgate.outputs.mqtt.topics` for the topic layout."""

from mepgate.outputs.mqtt.connection import MqttConfigError
from mepgate.outputs.mqtt.publisher import MqttPublisher, PublisherStats

__all__ = ["MqttConfigError", "MqttPublisher", "PublisherStats"]
