"""Configuration: the TOML file, environment overrides, validation, secret files."""

from mepgate.config.loader import ConfigError, load_settings, meter_key, save_settings
from mepgate.config.retention import Retention
from mepgate.config.secrets import write_secret_file
from mepgate.config.settings import MeterConfig, MqttConfig, Settings, StorageConfig, WebConfig

__all__ = [
    "ConfigError",
    "MeterConfig",
    "MqttConfig",
    "Retention",
    "Settings",
    "StorageConfig",
    "WebConfig",
    "load_settings",
    "meter_key",
    "save_settings",
    "write_secret_file",
]
