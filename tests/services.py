"""The team services the `team` tests run against: real PostgreSQL, a real S3 server
(seaweedfs), MLflow's tracking server with basic auth, and a Ray head plus a worker, all on
127.0.0.1. `.ci/services` starts them and exports where they answer:

    WORKBENCH_TEST_POSTGRES   postgresql+psycopg2://postgres@127.0.0.1:PORT   (no database)
    WORKBENCH_TEST_S3         http://127.0.0.1:PORT                           (any key works)
    WORKBENCH_TEST_MLFLOW     http://127.0.0.1:PORT   basic auth: ADMIN, ALICE (edits), BOB (reads)
    WORKBENCH_TEST_RAY        http://127.0.0.1:8265                           (the Jobs API)
    WORKBENCH_TEST_RAY_PYTHON the cluster's Python (jobs name it: `[ray] python`)

A test asks for one with the fixtures below. When the variable is unset the test is skipped,
unless WORKBENCH_REQUIRE_SERVICES=1 (CI sets it once the services answer): then it fails, so
CI can never go green with the team tests skipped. Every test gets its own database, bucket,
experiment and model names, so tests share the servers without seeing each other.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

ADMIN = ("admin", "workbench-admin-pw")
ALICE = ("alice", "alice-password-1")  # may edit what she creates (the creator's MANAGE)
BOB = ("bob", "bob-password-12")  # READ only: the server's default permission
S3_KEYS = {"AWS_ACCESS_KEY_ID": "workbench", "AWS_SECRET_ACCESS_KEY": "workbench"}


def service(name: str) -> str:
    """Where service `name` (POSTGRES, S3, MLFLOW, RAY) answers, or skip/fail the test."""
    value = os.environ.get(f"WORKBENCH_TEST_{name}")
    if value:
        return value
    why = f"WORKBENCH_TEST_{name} is not set (start the services with .ci/services)"
    if os.environ.get("WORKBENCH_REQUIRE_SERVICES") == "1":
        pytest.fail(why)
    pytest.skip(why)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards)."""
    import psycopg2

    base = service("POSTGRES")
    name = unique("wbtest_")
    admin = psycopg2.connect(base.replace("postgresql+psycopg2", "postgresql") + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket on the S3 server; the endpoint and keys are set in the environment the
    way a user sets them (MLFLOW_S3_ENDPOINT_URL, AWS_*). Yields `s3://bucket`."""
    endpoint = service("S3")
    for key, value in {**S3_KEYS, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    s3 = s3_client()
    name = unique("wb-")
    s3.create_bucket(Bucket=name)
    yield f"s3://{name}"
    objects = s3.get_paginator("list_objects_v2").paginate(Bucket=name)
    for page in objects:
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def s3_client() -> Any:
    """A boto3 client of the test S3 server."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=service("S3"),
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    )


def s3_keys(bucket: str, prefix: str = "") -> list[str]:
    """Every object key in `bucket` under `prefix`."""
    keys: list[str] = []
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


@pytest.fixture
def mlflow_server(monkeypatch: pytest.MonkeyPatch) -> str:
    """The authenticated tracking server, with ALICE's credentials in the environment
    (MLFLOW_TRACKING_USERNAME / PASSWORD, as MLflow reads them)."""
    uri = service("MLFLOW")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ALICE[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ALICE[1])
    return uri


@pytest.fixture
def ray_address() -> str:
    """The Ray cluster's Jobs API address (a head and one worker node on 127.0.0.1)."""
    return service("RAY")


def ray_python() -> str:
    """The Python the cluster's nodes run (it has Workbench's dependencies)."""
    return os.environ.get("WORKBENCH_TEST_RAY_PYTHON") or sys.executable
