"""Configuration: the TOML file, environment overrides, validation, secret files."""

from mepgate.config.loader import (
    ConfigError,
    load_settings,
    meter_key,
    override_settings,
    save_settings,
)
from mepgate.config.overrides import Override
from mepgate.config.retention import Retention
from mepgate.config.secrets import write_secret_file
from mepgate.config.settings import (
    SIM_SCHEME,
    MeterConfig,
    MqttConfig,
    Settings,
    StorageConfig,
    WebConfig,
    is_simulated,
)

__all__ = [
    "SIM_SCHEME",
    "ConfigError",
    "MeterConfig",
    "MqttConfig",
    "Override",
    "Retention",
    "Settings",
    "StorageConfig",
    "WebConfig",
    "is_simulated",
    "load_settings",
    "meter_key",
    "override_settings",
    "save_settings",
    "write_secret_file",
]
