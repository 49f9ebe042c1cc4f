"""Property-based run of the OpenAPI schema (schemathesis): no input makes the server fail.

Every documented operation except the endless event stream gets bounded, generated requests
(valid and invalid); each response must not be a 5xx and must match its documented schema,
status code and content type.  Runs in well under a minute.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.openapi import from_asgi

from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from .conftest import ADMIN_PASSWORD
from .support import HISTORY_STEP_S, default_settings, web_gateway

MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    data_dir = tmp_path_factory.mktemp("schemathesis")
    store_url = f"sqlite:///{data_dir}/mepgate.db"
    gateway = web_gateway(
        default_settings(store_url), store_url=store_url, config_path=data_dir / "mepgate.toml"
    )
    asyncio.run(gateway.fill_history(HISTORY_STEP_S))
    gateway.publish_now()
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    app = create_app(gateway, data_dir=Path(data_dir))
    yield from_asgi("/api/v1/openapi.json", app).exclude(path="/api/v1/stream")
    asyncio.run(gateway.close())


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def test_no_input_makes_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    tested = []
    calls: Counter[int] = Counter()
    for result in api_schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # Err: an invalid schema fails here
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,  # the same cases every run: the counts below are stable
        )
        def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            response = case.call_and_validate(checks=CHECKS)
            calls[response.status_code] += 1

        run()
        tested.append(operation.label)
    assert "GET /api/v1/history" in tested
    assert "GET /getDashDataWS" in tested
    assert not any("stream" in label for label in tested)
    assert calls[200] > 20, calls  # valid requests got through, not only refusals
    assert sum(calls.values()) > 100, calls
