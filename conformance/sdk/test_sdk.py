"""Conformance of infrastream with the real, unmodified Infrahub Python SDK (infrahub-sdk 1.23.x).

Environment:
    INFRASTREAM_URL    e.g. http://127.0.0.1:8000
    INFRASTREAM_TOKEN  an admin API token (sent by the SDK as X-INFRAHUB-KEY)

Run: pytest -v conformance/sdk/test_sdk.py   (see conformance/run.sh)

The tests form one ordered scenario (pytest runs them in file order) sharing state in STATE:
branches A=`sdk-<rand>` and S=`feature/sdk-<rand>` are created, A is rebased and merged,
B=`sdk-del-<rand>` is created and deleted, and the event log must then contain exactly
created(A), created(S), rebased(A), merged(A), created(B), deleted(B) for those names.
Failed operations along the way (duplicate create, second merge, delete of main, ...) must not
add events. A test whose prerequisite failed fails too (never skipped silently).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from infrahub_sdk import Config, InfrahubClient
from infrahub_sdk._version import __version__ as SDK_VERSION  # noqa: N812
from infrahub_sdk.branch import BranchData, BranchStatus
from infrahub_sdk.exceptions import (
    AuthenticationError,
    BranchNotFoundError,
    GraphQLError,
    URLNotFoundError,
)

URL = os.environ.get("INFRASTREAM_URL", "").rstrip("/")
TOKEN = os.environ.get("INFRASTREAM_TOKEN", "")

if not URL or not TOKEN:
    pytest.exit("INFRASTREAM_URL and INFRASTREAM_TOKEN must be set", returncode=2)

RAND = secrets.token_hex(4)
A = f"sdk-{RAND}"  # created, rebased, merged
S = f"feature/sdk-{RAND}"  # name with a slash: created, used as URL branch
B = f"sdk-del-{RAND}"  # created then deleted
D = f"sdk-esc-{RAND}"  # description with characters that need escaping, sync_with_git=True
C = f"sdk-nowait-{RAND}"  # created with wait_until_completion=False

DESC_A = "SDK conformance branch A"
DESC_D = 'quote " backslash \\ newline \n tab \t unicode é 日本 emoji 🚀 end'

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
EVENT_TYPES = [
    "infrahub.branch.created",
    "infrahub.branch.rebased",
    "infrahub.branch.merged",
    "infrahub.branch.deleted",
]
PAGE = 50  # the server's maximum page size

T0 = datetime.now(timezone.utc)
STATE: dict[str, Any] = {}


def client(token: str = TOKEN, **kw: Any) -> InfrahubClient:
    return InfrahubClient(config=Config(address=URL, api_token=token, timeout=30, **kw))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def need(*keys: str) -> None:
    missing = [k for k in keys if k not in STATE]
    if missing:
        pytest.fail(f"prerequisite step(s) failed earlier: {missing}")


def parse_ts(value: Any, what: str) -> datetime:
    assert isinstance(value, str), f"{what}: expected a timestamp string, got {value!r}"
    assert TIMESTAMP_RE.match(value), (
        f"{what}: {value!r} is not in the format 2024-01-01T12:00:00.123456Z (RFC 3339 UTC, microseconds)"
    )
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_recent(ts: datetime, what: str) -> None:
    now = datetime.now(timezone.utc)
    slack = timedelta(seconds=60)
    assert T0 - slack <= ts <= now + slack, f"{what}: {ts.isoformat()} is not between test start and now"


def check_branch(
    br: Any,
    name: str,
    description: str | None,
    *,
    sync_with_git: bool = False,
    status: BranchStatus = BranchStatus.OPEN,
    recent: bool = True,
) -> None:
    assert isinstance(br, BranchData), f"expected BranchData, got {type(br).__name__}: {br!r}"
    assert br.name == name, br
    uuid.UUID(br.id)  # id must be a UUID string
    assert br.description == description, f"description: {br.description!r} != {description!r}"
    assert br.is_default is False, br
    assert br.origin_branch == "main", br
    assert br.status == status, f"status of {name}: {br.status} != {status}"
    assert br.sync_with_git is sync_with_git, br
    assert br.has_schema_changes is False, br
    assert br.graph_version is None or isinstance(br.graph_version, int), br
    ts = parse_ts(br.branched_from, f"branched_from of {name}")
    if recent:
        assert_recent(ts, f"branched_from of {name}")


def test_00_sdk_version() -> None:
    assert SDK_VERSION.startswith("1.23."), f"infrahub-sdk {SDK_VERSION} installed, 1.23.x required"


def test_01_create_branch() -> None:
    br = run(client().branch.create(A, description=DESC_A))
    check_branch(br, A, DESC_A)
    STATE["A"] = br


def test_02_create_branch_with_slash() -> None:
    br = run(client().branch.create(S, description="slash branch"))
    check_branch(br, S, "slash branch")
    STATE["S"] = br


def test_03_branch_all() -> None:
    need("A", "S")
    branches = run(client().branch.all())
    assert isinstance(branches, dict)
    for name in ("main", A, S):
        assert name in branches, f"{name!r} missing from branch.all(): {sorted(branches)}"
    defaults = [n for n, b in branches.items() if b.is_default]
    assert defaults == ["main"], f"exactly 'main' must be the default branch, got {defaults}"
    assert branches[A] == STATE["A"], (branches[A], STATE["A"])
    assert branches[S] == STATE["S"], (branches[S], STATE["S"])
    for name, br in branches.items():
        assert br.name == name
        uuid.UUID(br.id)
        parse_ts(br.branched_from, f"branched_from of {name}")
    assert len({b.id for b in branches.values()}) == len(branches), "branch ids are not unique"


def test_04_branch_get() -> None:
    need("A", "S")
    a = run(client().branch.get(A))
    check_branch(a, A, DESC_A)
    assert a == STATE["A"], (a, STATE["A"])
    s = run(client().branch.get(S))
    check_branch(s, S, "slash branch")
    assert s == STATE["S"], (s, STATE["S"])


def test_05_branch_get_main() -> None:
    main = run(client().branch.get("main"))
    assert main.name == "main"
    assert main.is_default is True
    assert main.status == BranchStatus.OPEN
    assert main.has_schema_changes is False
    uuid.UUID(main.id)
    parse_ts(main.branched_from, "branched_from of main")


def test_06_branch_get_unknown() -> None:
    with pytest.raises(BranchNotFoundError):
        run(client().branch.get(f"does-not-exist-{RAND}"))


def test_07_create_duplicate_is_an_error() -> None:
    need("A")
    with pytest.raises(GraphQLError) as exc:
        run(client().branch.create(A, description="dup"))
    messages = " | ".join(str(e.get("message")) for e in exc.value.errors)
    assert f"The branch {A} already exists" in messages, messages
    for err in exc.value.errors:
        ext = err.get("extensions") or {}
        assert isinstance(ext.get("code"), str), f"error without a string extensions.code: {err}"
        assert isinstance(ext.get("http_status"), int), f"error without an int extensions.http_status: {err}"


def test_08_execute_graphql_on_slash_branch_url() -> None:
    """The SDK posts to /graphql/feature%2Fsdk-xxxx: the server must decode it to the branch."""
    need("S")
    data = run(
        client().execute_graphql(
            "query Q($n: String) { Branch(name: $n) { name is_default } }",
            variables={"n": S},
            branch_name=S,
        )
    )
    assert data == {"Branch": [{"name": S, "is_default": False}]}, data


def test_09_execute_graphql_unknown_branch_url_is_404() -> None:
    with pytest.raises(URLNotFoundError):
        run(client().execute_graphql("query { InfrahubInfo { version } }", branch_name=f"nope-{RAND}"))


def test_10_rebase() -> None:
    need("A")
    ok = run(client().branch.rebase(A))
    assert ok is True, f"BranchRebase.ok = {ok!r}"
    a = run(client().branch.get(A))
    check_branch(a, A, DESC_A)
    assert a.id == STATE["A"].id
    STATE["rebased"] = True


def test_11_merge() -> None:
    need("A", "rebased")
    ok = run(client().branch.merge(A))
    assert ok is True, f"BranchMerge.ok = {ok!r}"
    a = run(client().branch.get(A))
    check_branch(a, A, DESC_A, status=BranchStatus.MERGED)
    assert a.id == STATE["A"].id
    STATE["merged"] = True


def test_12_merge_again_is_an_error() -> None:
    need("merged")
    with pytest.raises(GraphQLError):
        run(client().branch.merge(A))


def test_13_create_and_delete() -> None:
    br = run(client().branch.create(B))
    check_branch(br, B, "")  # the SDK always sends description: "" by default
    STATE["B-created"] = br
    ok = run(client().branch.delete(B))
    assert ok is True, f"BranchDelete.ok = {ok!r}"
    STATE["B-deleted"] = True
    with pytest.raises(BranchNotFoundError):
        run(client().branch.get(B))
    assert B not in run(client().branch.all())


def test_14_delete_unknown_is_an_error() -> None:
    with pytest.raises(GraphQLError):
        run(client().branch.delete(f"does-not-exist-{RAND}"))


EVENTS_QUERY = """
query SdkConformanceEvents($limit: Int!, $offset: Int!) {
  InfrahubEvent(
    limit: $limit
    offset: $offset
    event_type: [%s]
    order: ASC
  ) {
    count
    edges {
      node {
        id
        event
        branch
        account_id
        occurred_at
        level
        parent_id
        has_children
        primary_node { id kind }
        related_nodes { id kind }
        payload
        __typename
        ... on BranchCreatedEvent { created_branch }
        ... on BranchRebasedEvent { rebased_branch }
        ... on BranchMergedEvent { source_branch }
        ... on BranchDeletedEvent { deleted_branch }
      }
    }
  }
}
""" % ", ".join(f'"{t}"' for t in EVENT_TYPES)

TYPENAME = {
    "infrahub.branch.created": ("BranchCreatedEvent", "created_branch"),
    "infrahub.branch.rebased": ("BranchRebasedEvent", "rebased_branch"),
    "infrahub.branch.merged": ("BranchMergedEvent", "source_branch"),
    "infrahub.branch.deleted": ("BranchDeletedEvent", "deleted_branch"),
}


async def fetch_all_events() -> list[dict[str, Any]]:
    c = client()
    nodes: list[dict[str, Any]] = []
    offset = 0
    last_count = None
    for _ in range(10_000):
        data = await c.execute_graphql(EVENTS_QUERY, variables={"limit": PAGE, "offset": offset})
        page = data["InfrahubEvent"]
        count = page["count"]
        assert isinstance(count, int) and count >= 0, page
        if last_count is not None:
            assert count >= last_count, f"count went down while paging: {last_count} -> {count}"
        last_count = count
        edges = page["edges"]
        assert isinstance(edges, list)
        assert len(edges) <= PAGE, f"page of {len(edges)} > limit {PAGE}"
        if offset + PAGE < count:
            assert len(edges) == PAGE, f"short page ({len(edges)}) at offset {offset} with count {count}"
        nodes.extend(e["node"] for e in edges)
        if not edges or offset + len(edges) >= count:
            break
        offset += len(edges)
    assert last_count == len(nodes), f"count={last_count} but paging returned {len(nodes)} events"
    ids = [n["id"] for n in nodes]
    assert len(set(ids)) == len(ids), "an event appeared twice while paging with offset"
    return nodes


def test_20_event_log_sequence() -> None:
    need("A", "S", "rebased", "merged", "B-created", "B-deleted")
    nodes = run(fetch_all_events())
    mine = {A, S, B}
    ours: list[tuple[str, str, str | None]] = []
    ours_nodes: list[dict[str, Any]] = []
    for n in nodes:
        assert n["event"] in EVENT_TYPES, f"event_type filter returned {n['event']!r}"
        typename, field = TYPENAME[n["event"]]
        assert n["__typename"] == typename, f"{n['event']} has __typename {n['__typename']}, want {typename}"
        target = n.get(field)
        assert isinstance(target, str) and target, f"{typename}.{field} missing in {n}"
        if target in mine:
            ours.append((n["event"], target, n["branch"]))
            ours_nodes.append(n)

    expected = [
        ("infrahub.branch.created", A, None),
        ("infrahub.branch.created", S, None),
        ("infrahub.branch.rebased", A, A),
        ("infrahub.branch.merged", A, None),
        ("infrahub.branch.created", B, None),
        ("infrahub.branch.deleted", B, None),
    ]
    assert ours == expected, "event sequence (event, branch name, branch field) differs:\n" + "\n".join(
        f"  got {g!r}" for g in ours
    )

    prev = None
    accounts = set()
    for n in ours_nodes:
        uuid.UUID(n["id"])
        ts = parse_ts(n["occurred_at"], f"occurred_at of {n['event']}")
        assert_recent(ts, f"occurred_at of {n['event']}")
        if prev is not None:
            assert ts >= prev, f"ASC order violated: {prev} then {ts}"
        prev = ts
        assert n["level"] == 0, n
        assert n["parent_id"] is None, n
        assert isinstance(n["has_children"], bool), n
        pn = n["primary_node"]
        assert pn is None or (isinstance(pn.get("id"), str) and isinstance(pn.get("kind"), str)), n
        assert isinstance(n["related_nodes"], list), n
        for rn in n["related_nodes"]:
            assert isinstance(rn.get("id"), str) and isinstance(rn.get("kind"), str), n
        assert isinstance(n["payload"], dict) and "data" in n["payload"], f"payload must be {{data, context}}: {n}"
        assert isinstance(n["account_id"], str) and n["account_id"], f"account_id missing: {n}"
        accounts.add(n["account_id"])
    assert len(accounts) == 1, f"all events were caused by the same token's account, got {accounts}"

    # Ids of our events are also individually addressable through `ids`.
    ids = [n["id"] for n in ours_nodes]
    # Inline literals: valid whether the argument is declared [String!], [String] or [ID].
    id_list = ", ".join(f'"{i}"' for i in ids)
    q = f"query {{ InfrahubEvent(ids: [{id_list}], order: ASC, limit: 50) {{ count edges {{ node {{ id event }} }} }} }}"
    data = run(client().execute_graphql(q))
    got = [(e["node"]["id"], e["node"]["event"]) for e in data["InfrahubEvent"]["edges"]]
    assert got == [(n["id"], n["event"]) for n in ours_nodes], got
    assert data["InfrahubEvent"]["count"] == len(ids)


def test_21_event_default_order_is_desc() -> None:
    need("B-deleted")
    q = (
        'query { InfrahubEvent(limit: 2, event_type: ["infrahub.branch.created", "infrahub.branch.deleted"]) '
        "{ count edges { node { event occurred_at ... on BranchCreatedEvent { created_branch } "
        "... on BranchDeletedEvent { deleted_branch } } } } }"
    )
    data = run(client().execute_graphql(q))
    edges = data["InfrahubEvent"]["edges"]
    assert len(edges) == 2, data
    t0 = parse_ts(edges[0]["node"]["occurred_at"], "occurred_at")
    t1 = parse_ts(edges[1]["node"]["occurred_at"], "occurred_at")
    assert t0 >= t1, f"default order must be DESC: {edges}"
    assert data["InfrahubEvent"]["count"] >= 2


def test_22_event_limit_above_50_is_rejected() -> None:
    with pytest.raises(GraphQLError):
        run(client().execute_graphql("query { InfrahubEvent(limit: 51) { count } }"))


def test_30_description_escapes_and_sync_with_git() -> None:
    """The SDK inlines strings with json.dumps (\\" \\\\ \\n \\t \\uXXXX and surrogate pairs)."""
    br = run(client().branch.create(D, description=DESC_D, sync_with_git=True))
    check_branch(br, D, DESC_D, sync_with_git=True)
    got = run(client().branch.get(D))
    check_branch(got, D, DESC_D, sync_with_git=True)


def test_31_create_without_waiting_returns_task_id() -> None:
    task_id = run(client().branch.create(C, wait_until_completion=False))
    assert isinstance(task_id, str) and task_id, f"BranchCreate.task.id = {task_id!r}"
    deadline = time.monotonic() + 10
    while True:
        try:
            br = run(client().branch.get(C))
            break
        except BranchNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    check_branch(br, C, "")


def test_40_server_information() -> None:
    info = run(client().get_server_information())
    assert isinstance(info.version, str) and info.version, info
    assert isinstance(info.deployment_id, str) and info.deployment_id, info
    assert run(client().get_version()) == info.version


def test_41_invalid_token_is_rejected() -> None:
    with pytest.raises(AuthenticationError):
        run(client(token="invalid-" + secrets.token_hex(16)).branch.all())


def test_42_main_cannot_be_deleted_merged_or_rebased() -> None:
    c = client()
    for op in (c.branch.merge, c.branch.rebase, c.branch.delete):
        with pytest.raises(GraphQLError):
            run(op("main"))
    main = run(c.branch.get("main"))
    assert main.is_default is True and main.status == BranchStatus.OPEN


# ---------------------------------------------------------------- schema (issue 12, first step)

NS = f"Sdk{RAND}"  # a namespace of its own: `^[A-Z][a-z0-9]+$`, RAND is lowercase hex
SCHEMA = {
    "version": "1.0",
    "nodes": [
        {
            "name": "Site",
            "namespace": NS,
            "human_friendly_id": ["name__value"],
            "attributes": [{"name": "name", "kind": "Text", "unique": True}],
        },
        {
            "name": "Device",
            "namespace": NS,
            "human_friendly_id": ["name__value"],
            "attributes": [
                {"name": "name", "kind": "Text"},
                {"name": "height", "kind": "Number", "optional": True},
            ],
            "relationships": [
                {"name": "site", "peer": f"{NS}Site", "cardinality": "one", "optional": False},
            ],
        },
    ],
}


def test_50_schema_load_and_fetch_with_the_sdk() -> None:
    c = client()
    loaded = run(c.schema.load(schemas=[SCHEMA], branch="main"))
    assert not loaded.errors, loaded.errors
    assert loaded.schema_updated is True, loaded
    assert loaded.hash and loaded.previous_hash and loaded.hash != loaded.previous_hash
    again = run(c.schema.load(schemas=[SCHEMA], branch="main"))
    assert not again.errors, again.errors
    assert again.schema_updated is False, again
    schema = run(c.schema.all(branch="main", refresh=True))
    device = schema[f"{NS}Device"]
    assert device.kind == f"{NS}Device"
    assert device.mandatory_attribute_names == ["name"]
    assert device.mandatory_relationship_names == ["site"]
    assert device.get_relationship("site").peer == f"{NS}Site"
    assert run(c.schema.get(kind=f"{NS}Site", branch="main")).human_friendly_id == ["name__value"]


def test_51_a_bad_schema_is_refused_with_its_reasons() -> None:
    bad = {"version": "1.0", "nodes": [{"name": "lowercase", "namespace": NS}]}
    refused = run(client().schema.load(schemas=[bad], branch="main"))
    assert refused.errors, refused
    detail = refused.errors["detail"][0]
    assert detail["loc"] == ["body", "schemas", 0, "nodes", 0, "name"], refused.errors
    assert "pattern" in detail["msg"], refused.errors


# ---------------------------------------------------------------- nodes of a loaded schema

DATA_SCHEMA = {
    "version": "1.0",
    "nodes": [
        {
            "name": "Site",
            "namespace": NS,
            "human_friendly_id": ["name__value"],
            "default_filter": "name__value",
            "attributes": [
                {"name": "name", "kind": "Text", "unique": True},
                {"name": "height", "kind": "Number", "optional": True},
            ],
        },
        {
            "name": "Tag",
            "namespace": NS,
            "human_friendly_id": ["name__value"],
            "attributes": [{"name": "name", "kind": "Text", "unique": True}],
        },
        {
            "name": "Device",
            "namespace": NS,
            "human_friendly_id": ["name__value"],
            "attributes": [{"name": "name", "kind": "Text"}],
            "relationships": [
                {"name": "site", "peer": f"{NS}Site", "cardinality": "one", "optional": False},
                {"name": "tags", "peer": f"{NS}Tag", "cardinality": "many"},
            ],
        },
    ],
}


def node_events(node_id: str) -> list[str]:
    query = (
        "query($id: String!) { InfrahubEvent(primary_node__ids: [$id], order: ASC) "
        "{ edges { node { event } } } }"
    )
    data = run(client().execute_graphql(query=query, variables={"id": node_id}))
    return [e["node"]["event"] for e in data["InfrahubEvent"]["edges"]]


def test_60_nodes_with_the_sdk() -> None:
    c = client()
    assert not run(c.schema.load(schemas=[DATA_SCHEMA], branch="main")).errors
    site = run(c.create(kind=f"{NS}Site", name="paris", height=3))
    run(site.save())
    assert site.id
    tag = run(c.create(kind=f"{NS}Tag", name="red"))
    run(tag.save())
    device = run(c.create(kind=f"{NS}Device", name="r1", site=site, tags=[tag]))
    run(device.save())

    got = run(c.get(kind=f"{NS}Site", id=site.id))
    assert (got.name.value, got.height.value) == ("paris", 3)
    assert run(c.get(kind=f"{NS}Site", hfid=["paris"])).id == site.id
    assert run(c.get(kind=f"{NS}Site", name__value="paris")).id == site.id
    devices = run(c.all(kind=f"{NS}Device"))
    assert [(d.name.value, d.site.id) for d in devices] == [("r1", site.id)]

    got.height.value = 5
    run(got.save())
    assert run(c.get(kind=f"{NS}Site", id=site.id)).height.value == 5
    run(got.save())  # nothing changed: no event

    for i in range(55):
        run(run(c.create(kind=f"{NS}Tag", name=f"t{i:02}")).save())
    tags = run(c.all(kind=f"{NS}Tag"))
    assert len(tags) == 56, len(tags)
    assert len({t.id for t in tags}) == 56

    blue = run(c.create(kind=f"{NS}Tag", name="blue"))
    run(blue.save())
    run(device.add_relationships(relation_to_update="tags", related_nodes=[blue.id]))
    got = run(c.get(kind=f"{NS}Device", id=device.id, include=["tags"]))
    assert sorted(p.id for p in got.tags.peers) == sorted([tag.id, blue.id])
    run(device.remove_relationships(relation_to_update="tags", related_nodes=[tag.id]))
    got = run(c.get(kind=f"{NS}Device", id=device.id, include=["tags"]))
    assert [p.id for p in got.tags.peers] == [blue.id]

    same = run(c.create(kind=f"{NS}Site", name="paris", height=9))
    run(same.save(allow_upsert=True))
    assert same.id == site.id
    assert run(c.get(kind=f"{NS}Site", id=site.id)).height.value == 9

    run(device.delete())
    assert run(c.all(kind=f"{NS}Device")) == []
    updated = "infrahub.node.updated"
    assert node_events(site.id) == ["infrahub.node.created", updated, updated]
    assert node_events(device.id) == [
        "infrahub.node.created",
        updated,
        updated,
        "infrahub.node.deleted",
    ]


def test_61_nodes_with_the_sync_client() -> None:
    from infrahub_sdk import InfrahubClientSync

    c = InfrahubClientSync(config=Config(address=URL, api_token=TOKEN, timeout=30))
    site = c.create(kind=f"{NS}Site", name="lyon", height=1)
    site.save()
    assert c.get(kind=f"{NS}Site", hfid=["lyon"]).id == site.id
    assert c.get(kind=f"{NS}Site", name__value="lyon").id == site.id
    got = c.get(kind=f"{NS}Site", id=site.id)
    got.height.value = 2
    got.save()
    assert c.get(kind=f"{NS}Site", id=site.id).height.value == 2
    tag = c.create(kind=f"{NS}Tag", name="sync-tag")
    tag.save()
    device = c.create(kind=f"{NS}Device", name="sync-r1", site=site)
    device.save()
    device.add_relationships(relation_to_update="tags", related_nodes=[tag.id])
    assert [p.id for p in c.get(kind=f"{NS}Device", id=device.id, include=["tags"]).tags.peers] == [
        tag.id
    ]
    device.remove_relationships(relation_to_update="tags", related_nodes=[tag.id])
    assert c.get(kind=f"{NS}Device", id=device.id, include=["tags"]).tags.peers == []
    assert len(c.all(kind=f"{NS}Tag")) == 58  # paging past 50: the 57 of test 60 and this one
    device.delete()
    tag.delete()
    site.delete()
    assert [s.name.value for s in c.all(kind=f"{NS}Site")] == ["paris"]


def test_62_a_generic_lists_the_nodes_of_its_kinds() -> None:
    c = client()
    schema = {
        "version": "1.0",
        "generics": [
            {
                "name": "Equipment",
                "namespace": NS,
                "attributes": [{"name": "serial", "kind": "Text", "unique": True}],
            }
        ],
        "nodes": [
            {
                "name": "Router",
                "namespace": NS,
                "inherit_from": [f"{NS}Equipment"],
                "human_friendly_id": ["serial__value"],
            },
            {
                "name": "Switch",
                "namespace": NS,
                "inherit_from": [f"{NS}Equipment"],
                "human_friendly_id": ["serial__value"],
            },
        ],
    }
    assert not run(c.schema.load(schemas=[schema], branch="main")).errors
    router = run(c.create(kind=f"{NS}Router", serial="R-1"))
    run(router.save())
    switch = run(c.create(kind=f"{NS}Switch", serial="S-1"))
    run(switch.save())
    found = run(c.all(kind=f"{NS}Equipment"))
    assert sorted((n.typename, n.serial.value) for n in found) == [
        (f"{NS}Router", "R-1"),
        (f"{NS}Switch", "S-1"),
    ]


def site_heights(c, branch: str) -> dict:
    return {s.name.value: s.height.value for s in run(c.all(kind=f"{NS}Site", branch=branch))}


def test_63_nodes_on_a_branch_with_the_sdk() -> None:
    c = client()
    br = f"data-{RAND}"
    run(c.branch.create(br, description="nodes on a branch"))
    nice = run(c.create(kind=f"{NS}Site", name="nice", height=1, branch=br))
    run(nice.save())
    paris = run(c.get(kind=f"{NS}Site", hfid=["paris"], branch=br))
    paris.height.value = 11
    run(paris.save())
    t00 = run(c.get(kind=f"{NS}Tag", hfid=["t00"], branch=br))
    run(t00.delete())
    # The branch sees its changes; main does not, until the merge.
    assert site_heights(c, br) == {"nice": 1, "paris": 11}
    assert site_heights(c, "main") == {"paris": 9}
    assert run(c.get(kind=f"{NS}Tag", hfid=["t00"])).id == t00.id
    assert run(c.get(kind=f"{NS}Site", id=nice.id, branch=br)).name.value == "nice"
    assert run(c.get(kind=f"{NS}Site", id=nice.id, raise_when_missing=False)) is None
    diff = {(d["kind"], d["id"]): d["action"] for d in run(c.get_diff_summary(branch=br))}
    assert diff == {
        (f"{NS}Site", nice.id): "ADDED",
        (f"{NS}Site", paris.id): "UPDATED",
        (f"{NS}Tag", t00.id): "REMOVED",
    }, diff
    run(c.branch.merge(br))
    assert site_heights(c, "main") == {"nice": 1, "paris": 11}
    assert run(c.get(kind=f"{NS}Tag", hfid=["t00"], raise_when_missing=False)) is None
    query = (
        "{ InfrahubEvent(event_type: [\"infrahub.branch.merged\"], limit: 1) "
        "{ edges { node { id } } } }"
    )
    merged = run(c.execute_graphql(query=query))["InfrahubEvent"]["edges"][0]["node"]["id"]
    query = (
        "query($p: String!) { InfrahubEvent(parent__ids: [$p], order: ASC) "
        "{ edges { node { event branch primary_node { id } } } } }"
    )
    children = run(c.execute_graphql(query=query, variables={"p": merged}))["InfrahubEvent"]
    got = sorted(
        (e["node"]["event"], e["node"]["branch"], e["node"]["primary_node"]["id"])
        for e in children["edges"]
    )
    assert got == sorted(
        [
            ("infrahub.node.created", "main", nice.id),
            ("infrahub.node.updated", "main", paris.id),
            ("infrahub.node.deleted", "main", t00.id),
        ]
    ), got


def test_64_nodes_on_a_branch_with_the_sync_client() -> None:
    from infrahub_sdk import InfrahubClientSync

    c = InfrahubClientSync(config=Config(address=URL, api_token=TOKEN, timeout=30))
    br = f"sync-{RAND}"
    c.branch.create(br, description="sync client on a branch")
    brest = c.create(kind=f"{NS}Site", name="brest", height=4, branch=br)
    brest.save()
    assert c.get(kind=f"{NS}Site", hfid=["brest"], branch=br).height.value == 4
    assert c.get(kind=f"{NS}Site", hfid=["brest"], raise_when_missing=False) is None
    got = c.get(kind=f"{NS}Site", id=brest.id, branch=br)
    got.height.value = 5
    got.save()
    assert c.get(kind=f"{NS}Site", id=brest.id, branch=br).height.value == 5
    tag = c.get(kind=f"{NS}Tag", hfid=["t01"], branch=br)
    device = c.create(kind=f"{NS}Device", name="sync-r2", site=brest, branch=br)
    device.save()
    device.add_relationships(relation_to_update="tags", related_nodes=[tag.id])
    on_branch = c.get(kind=f"{NS}Device", id=device.id, include=["tags"], branch=br)
    assert [p.id for p in on_branch.tags.peers] == [tag.id]
    device.remove_relationships(relation_to_update="tags", related_nodes=[tag.id])
    on_branch = c.get(kind=f"{NS}Device", id=device.id, include=["tags"], branch=br)
    assert on_branch.tags.peers == []
    assert len(c.all(kind=f"{NS}Tag", branch=br)) == len(c.all(kind=f"{NS}Tag"))
    assert c.get(kind=f"{NS}Device", id=device.id, raise_when_missing=False) is None
    device.delete()
    # Deleting the branch drops its data; main never saw it.
    c.branch.delete(br)
    assert {s.name.value for s in c.all(kind=f"{NS}Site")} == {"nice", "paris"}


def test_65_groups_with_the_sdk() -> None:
    c = client()
    group_kind = {"name": "SiteGroup", "namespace": NS, "inherit_from": ["CoreGroup"]}
    schema = {"version": "1.0", "nodes": [group_kind]}
    assert not run(c.schema.load(schemas=[schema], branch="main")).errors
    paris = run(c.get(kind=f"{NS}Site", hfid=["paris"]))
    nice = run(c.get(kind=f"{NS}Site", hfid=["nice"]))
    group = run(c.create(kind=f"{NS}SiteGroup", name=f"coast-{RAND}"))
    run(group.save())
    run(group.add_relationships(relation_to_update="members", related_nodes=[paris.id, nice.id]))
    run(group.remove_relationships(relation_to_update="members", related_nodes=[paris.id]))
    got = run(c.get(kind=f"{NS}SiteGroup", id=group.id, include=["members"]))
    assert [p.id for p in got.members.peers] == [nice.id]
    standard = run(c.create(kind="CoreStandardGroup", name=f"all-{RAND}", members=[paris]))
    run(standard.save())
    assert run(c.get(kind="CoreStandardGroup", id=standard.id)).name.value == f"all-{RAND}"
    query = (
        "query($g: String!) { InfrahubEvent(primary_node__ids: [$g], order: ASC) "
        "{ edges { node { event ... on GroupEvent { members { id } ancestors { id } } } } } }"
    )
    edges = run(c.execute_graphql(query=query, variables={"g": group.id}))["InfrahubEvent"]["edges"]
    got = [(e["node"]["event"], sorted(m["id"] for m in e["node"].get("members", []))) for e in edges]
    assert got == [
        ("infrahub.node.created", []),
        ("infrahub.group.member_added", sorted([paris.id, nice.id])),
        ("infrahub.group.member_removed", [paris.id]),
    ], got
