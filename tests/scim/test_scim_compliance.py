"""SCIM 2.0 compliance: scim2-tester (python-scim) against a live Keyplane server.

scim2-tester is an independent implementation of the RFC 7643/7644 client side: it reads
the server's discovery documents, builds the resource models from the published schemas,
then creates, reads, lists, searches (with ``attributes``/``excludedAttributes``),
replaces, patches (add, replace, remove of every attribute) and deletes Users, Groups and
Agents with random values, and probes error handling (unknown URLs and ids, methods the
discovery endpoints do not take). Its CLI exits 0 even when checks fail, so this test runs
its Python API and asserts on every result: each must be a SUCCESS.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckConfig, CheckResult, Status, check_server
from scim2_tester.checkers import core_schemas_validation
from scim2_tester.utils import CheckContext

from scim.scim_live import ScimLive, scim_server


@pytest.fixture
def live(storage_url: str) -> Iterator[ScimLive]:
    with scim_server(storage_url) as server:
        yield server


def _run(live: ScimLive, key: str = "provisioner") -> list[CheckResult]:
    http = httpx2.Client(
        base_url=live.base,
        headers={"Authorization": f"Bearer {live.keys[key]}"},
        timeout=30,
    )
    with http:
        client = SyncSCIMClient(http)
        results = check_server(client)
        # a check check_server does not run itself: the mandatory core schemas are published
        results += core_schemas_validation(CheckContext(client, CheckConfig()))
        return results


def _report(results: list[CheckResult]) -> str:
    counts = Counter(r.status.name for r in results)
    lines = [f"scim2-tester: {len(results)} checks: {dict(sorted(counts.items()))}"]
    for r in results:
        if r.status is not Status.SUCCESS:
            where = f"[{r.resource_type}] " if r.resource_type else ""
            lines.append(f"  {r.status.name} {where}{r.title}: {r.reason}")
    return "\n".join(lines)


def test_every_scim2_tester_check_succeeds(live: ScimLive) -> None:
    results = _run(live)
    report = _report(results)
    print(report)
    # the whole suite ran: discovery, the error probes, and CRUD + PATCH on every type
    titles = {r.title for r in results}
    assert {
        "service_provider_config_endpoint",
        "query_all_resource_types",
        "query_all_schemas",
        "core_schemas_validation",
        "random_url",
        "object_creation",
        "object_query",
        "object_query_without_id",
        "object_query_with_attributes",
        "object_list_with_attributes",
        "search_with_attributes",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_remove_attribute",
        "check_replace_attribute",
    } <= titles, report
    assert {r.resource_type for r in results if r.resource_type} == {"User", "Group", "Agent"}
    assert all(r.status is Status.SUCCESS for r in results), report


def test_scim2_tester_without_provisioning_rights_fails(live: ScimLive) -> None:
    """The harness can fail: a key that may not provision gets nowhere (403 everywhere)."""
    results = _run(live, "writer")
    assert results
    assert not any(r.status is Status.SUCCESS for r in results), _report(results)
