"""Configuration: the TOML file, environment overrides, validation, secret files."""

from mepgate.config.loader import (
    ConfigError,
    MeterSecret,
    load_settings,
    meter_key,
    override_settings,
    save_settings,
)
from mepgate.config.overrides import Override
from mepgate.config.retention import Retention
from mepgate.config.secrets import write_secret_file
from mepgate.config.settings import (
    INTERFACES,
    MEP_ONLY,
    MEP_ONLY_PROBLEM,
    SIM_SCHEME,
    Interface,
    MeterConfig,
    MqttConfig,
    PricesConfig,
    Settings,
    StorageConfig,
    WebConfig,
    is_simulated,
)

__all__ = [
    "INTERFACES",
    "MEP_ONLY",
    "MEP_ONLY_PROBLEM",
    "SIM_SCHEME",
    "ConfigError",
    "Interface",
    "MeterConfig",
    "MeterSecret",
    "MqttConfig",
    "Override",
    "PricesConfig",
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
