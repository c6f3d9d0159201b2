"""Real-time conformance of infrastream with the Python `gql` client (4.x) `WebsocketsTransport`,
first in its DEFAULT configuration (`WebsocketsTransport(url=..., init_payload=...)`, no
`subprotocols` argument: gql then offers `graphql-ws, graphql-transport-ws`, in that order), then
with explicit `subprotocols`: each protocol alone — the legacy Apollo `graphql-ws`
(`WebsocketsTransport.APOLLO_SUBPROTOCOL`) and `graphql-transport-ws`
(`WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL`, gql's name for it) — then both, in each order.
The server must pick the FIRST offered protocol it speaks (RFC 6455 §4.2.2), so the default
and `graphql-ws,graphql-transport-ws` speak `graphql-ws`.

Per case it is asserted which protocol was offered (the request's `Sec-WebSocket-Protocol`),
which one the server chose (the 101 response's `Sec-WebSocket-Protocol`, any case), which
protocol gql spoke (`transport.subprotocol`), the frames on the wire and, where two protocols
were offered, that gql read the server's choice (gql looks the header up case-sensitively as
`Sec-WebSocket-Protocol` and, when it is missing, guesses `graphql-ws` whenever that was
offered: right by construction when only one protocol was offered, by coincidence otherwise).

Environment:
    INFRASTREAM_URL    e.g. http://127.0.0.1:8000
    INFRASTREAM_TOKEN  an admin API token (sent as X-INFRAHUB-KEY, over HTTP and in the
                       connection_init payload)

Run: pytest -v conformance/gql/test_gql_ws.py   (see conformance/run.sh)

Scenario, per case, with a fresh random suffix S: a saved query q-S is created over
HTTP, then three subscriptions are started on one connection:
    A  events(event_type: [branch created/merged/deleted, "conf.S"])
    B  events(branches: ["b-S"])
    C  query(name: "q-S", interval: 300)
Once they are established (first C result + 300 ms), events are caused over HTTP:
BranchCreate b-S, EventEmit conf.S on b-S, EventEmit conf.S without branch, BranchRebase b-S,
BranchMerge b-S, BranchCreate d-S, BranchDelete d-S. A must get exactly created(b), conf(b),
conf(null), merged(b), created(d), deleted(d), in that order (branch created/merged/deleted are
global events, `branch` null, as in Infrahub); B exactly conf(b), rebased(b); nothing else within
500 ms after. C yields a first result at once listing main, and later ones listing b-S.
The frames on the wire (captured from gql's own debug log) are checked as well.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import time
import urllib.request
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

URL = os.environ.get("INFRASTREAM_URL", "").rstrip("/")
TOKEN = os.environ.get("INFRASTREAM_TOKEN", "")

if not URL or not TOKEN:
    pytest.exit("INFRASTREAM_URL and INFRASTREAM_TOKEN must be set", returncode=2)

HTTP_URL = f"{URL}/graphql"
WS_URL = re.sub(r"^http", "ws", HTTP_URL)
INIT_PAYLOAD = {"X-INFRAHUB-KEY": TOKEN}

SETTLE_S = 0.3  # time given to the subscriptions to be established
QUIET_S = 0.5  # nothing more may arrive within this time after the last expected event
TIMEOUT_S = 10.0
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# ---- HTTP ----------------------------------------------------------------------------------


def _post(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        HTTP_URL,
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={
            "content-type": "application/json",
            "accept": "application/json",
            "X-INFRAHUB-KEY": TOKEN,
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as res:  # noqa: S310 (loopback only)
        status = res.status
        body = json.loads(res.read())
    assert status == 200 and "errors" not in body, f"HTTP {status} for {query}: {body}"
    return body["data"]


async def mutate(field: str, query: str, /, **variables: Any) -> dict[str, Any]:
    data = await asyncio.to_thread(_post, query, variables)
    assert data.get(field, {}).get("ok") is True, f"{field}: {data}"
    return data[field]


async def until(cond: Any, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


# ---- frame capture (gql logs every frame at DEBUG: ">>> " sent, "<<< " received) -------------


class FrameCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.frames: list[tuple[str, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg not in (">>> %s", "<<< %s") or not record.args:
            return
        direction = "out" if record.msg.startswith(">>>") else "in"
        raw = record.args[0] if isinstance(record.args, tuple) else record.args
        try:
            msg = json.loads(str(raw))
        except ValueError:
            msg = {"unparsable": str(raw)}
        self.frames.append((direction, msg))

    def types(self, direction: str) -> list[str]:
        return [m.get("type") for d, m in self.frames if d == direction]

    def ids(self, direction: str, type_: str) -> list[str]:
        return [str(m.get("id")) for d, m in self.frames if d == direction and m.get("type") == type_]


@pytest.fixture
def frames():
    logger = logging.getLogger("gql.transport.common.base")
    handler = FrameCapture()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# ---- scenario ------------------------------------------------------------------------------


def branch_names(result: dict[str, Any]) -> list[str]:
    branches = result["query"]["Branch"]
    assert isinstance(branches, list), result
    return [b["name"] for b in branches]


APOLLO = WebsocketsTransport.APOLLO_SUBPROTOCOL  # "graphql-ws" (legacy Apollo)
TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # "graphql-transport-ws"


def make_transport(offered: list[str] | None) -> WebsocketsTransport:
    """`offered` None: gql's default configuration (no `subprotocols` argument at all)."""
    if offered is None:
        return WebsocketsTransport(url=WS_URL, init_payload=INIT_PAYLOAD)
    return WebsocketsTransport(url=WS_URL, init_payload=INIT_PAYLOAD, subprotocols=offered)


def handshake(transport: WebsocketsTransport) -> dict[str, Any]:
    """What was offered and echoed on the opening handshake, read from the websockets connection
    gql's adapter holds (headers looked up case-insensitively there), and what gql itself read
    (`transport.response_headers`, a plain dict of the raw header names: case-sensitive)."""
    ws = transport.adapter.websocket
    assert ws is not None and ws.request is not None and ws.response is not None
    return {
        "offered": ws.request.headers.get("Sec-WebSocket-Protocol"),
        "echoed": ws.response.headers.get("Sec-WebSocket-Protocol"),
        "raw_names": [k for k in transport.response_headers if k.lower() == "sec-websocket-protocol"],
        "gql_read": transport.response_headers.get("Sec-WebSocket-Protocol"),
        "spoken": transport.subprotocol,
    }


async def scenario(offered: list[str] | None, expected: str, frames: FrameCapture) -> dict[str, Any]:
    s = secrets.token_hex(4)
    b, d, conf, q = f"b-{s}", f"d-{s}", f"conf.{s}", f"q-{s}"

    await mutate(
        "CoreGraphQLQueryCreate",
        "mutation($name: String!, $query: String!) { CoreGraphQLQueryCreate(data: "
        "{name: {value: $name}, query: {value: $query}}) { ok } }",
        name=q,
        query="query { Branch { name } }",
    )

    sub_a = (
        'subscription { events(event_type: ["infrahub.branch.created", "infrahub.branch.merged", '
        f'"infrahub.branch.deleted", "{conf}"]) {{ __typename id event branch '
        "... on BranchCreatedEvent { created_branch } ... on BranchMergedEvent { source_branch } "
        "... on BranchDeletedEvent { deleted_branch } } }"
    )
    sub_b = (
        f'subscription {{ events(branches: ["{b}"]) {{ __typename id event branch '
        "... on BranchRebasedEvent { rebased_branch } } }"
    )
    sub_c = f'subscription {{ query(name: "{q}", interval: 300) }}'

    transport = make_transport(offered)
    got: dict[str, list[dict[str, Any]]] = {"A": [], "B": [], "C": []}
    ended: dict[str, str] = {}

    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        hs = handshake(transport)
        # The server's choice: the first offered protocol it speaks.
        assert hs["echoed"] == expected, f"server chose {hs['echoed']!r}, expected {expected!r}: {hs}"
        # What gql speaks: its own reading of the echo (or its guess when it could not read it).
        assert transport.subprotocol == expected, f"gql speaks {transport.subprotocol!r}: {hs}"

        async def consume(key: str, doc: str) -> None:
            try:
                async for result in session.subscribe(gql(doc)):
                    got[key].append(result)
                ended[key] = "completed by the server"
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                ended[key] = f"{type(e).__name__}: {e}"

        tasks = {}
        for key, doc in (("A", sub_a), ("B", sub_b), ("C", sub_c)):
            tasks[key] = asyncio.create_task(consume(key, doc))
            await asyncio.sleep(0)  # subscribe in order A, B, C
        try:
            await until(lambda: got["C"] or ended, "the first query(name:) result")
            assert ended == {}, ended
            first = branch_names(got["C"][0])
            assert "main" in first, first
            assert b not in first, first
            await asyncio.sleep(SETTLE_S)
            assert got["A"] == [] and got["B"] == [], got

            # ---- cause events over HTTP ----
            await mutate(
                "BranchCreate",
                "mutation($n: String!) { BranchCreate(data: {name: $n}) { ok object { name } } }",
                n=b,
            )
            e1 = await mutate(
                "EventEmit",
                "mutation($e: String!, $b: String) { EventEmit(data: {event: $e, branch: $b}) "
                "{ ok object { id event branch } } }",
                e=conf,
                b=b,
            )
            e2 = await mutate(
                "EventEmit",
                "mutation($e: String!) { EventEmit(data: {event: $e}) { ok object { id event branch } } }",
                e=conf,
            )
            assert e1["object"]["branch"] == b and e2["object"]["branch"] is None
            await mutate("BranchRebase", "mutation($n: String!) { BranchRebase(data: {name: $n}) { ok } }", n=b)
            await mutate("BranchMerge", "mutation($n: String!) { BranchMerge(data: {name: $n}) { ok } }", n=b)
            await mutate("BranchCreate", "mutation($n: String!) { BranchCreate(data: {name: $n}) { ok } }", n=d)
            await mutate("BranchDelete", "mutation($n: String!) { BranchDelete(data: {name: $n}) { ok } }", n=d)

            expected_a = [
                {"__typename": "BranchCreatedEvent", "event": "infrahub.branch.created", "branch": None, "created_branch": b},
                {"__typename": "StandardEvent", "event": conf, "branch": b, "id": e1["object"]["id"]},
                {"__typename": "StandardEvent", "event": conf, "branch": None, "id": e2["object"]["id"]},
                {"__typename": "BranchMergedEvent", "event": "infrahub.branch.merged", "branch": None, "source_branch": b},
                {"__typename": "BranchCreatedEvent", "event": "infrahub.branch.created", "branch": None, "created_branch": d},
                {"__typename": "BranchDeletedEvent", "event": "infrahub.branch.deleted", "branch": None, "deleted_branch": d},
            ]
            expected_b = [
                {"__typename": "StandardEvent", "event": conf, "branch": b, "id": e1["object"]["id"]},
                {"__typename": "BranchRebasedEvent", "event": "infrahub.branch.rebased", "branch": b, "rebased_branch": b},
            ]
            try:
                await until(
                    lambda: ended or (len(got["A"]) >= len(expected_a) and len(got["B"]) >= len(expected_b)),
                    f"{len(expected_a)} events on A and {len(expected_b)} on B",
                )
            except AssertionError as e:
                raise AssertionError(f"{e}\nA: {got['A']}\nB: {got['B']}") from None
            await asyncio.sleep(QUIET_S)
            await until(lambda: ended or any(b in branch_names(r) for r in got["C"]), f"a query result listing {b}")
            assert ended == {}, ended

            def check(label: str, received: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[dict]:
                events = [r["events"] for r in received]
                assert len(events) == len(expected), f"{label}: expected {len(expected)} events, got {events}"
                for i, (ev, want) in enumerate(zip(events, expected)):
                    assert UUID_RE.match(ev["id"]), f"{label}[{i}].id {ev['id']!r}"
                    for k, v in want.items():
                        assert ev.get(k) == v, f"{label}[{i}].{k}: {ev.get(k)!r} != {v!r} in {events}"
                assert len({e["id"] for e in events}) == len(events), f"{label}: duplicate ids {events}"
                return events

            a = check("A", got["A"], expected_a)
            bb = check("B", got["B"], expected_b)
            assert a[1]["id"] == bb[0]["id"], "conf(b) is the same event on A and B"

            for r in got["C"]:
                assert "main" in branch_names(r), r
            last = branch_names(got["C"][-1])
            assert b in last and d not in last, last
            assert len(got["C"]) >= 3, f"query(name:) ticked repeatedly: {len(got['C'])} results"
        finally:
            # Unsubscribe: gql sends `stop` (legacy) or `complete` (graphql-transport-ws).
            for t in tasks.values():
                t.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        await asyncio.sleep(QUIET_S)
    return {"A": len(got["A"]), "B": len(got["B"]), "C": len(got["C"]), "ended": ended, "handshake": hs}


def check_transport_frames(frames: FrameCapture) -> None:
    inbound, outbound = frames.types("in"), frames.types("out")
    assert outbound[0] == "connection_init", outbound
    assert frames.frames[0][1].get("payload") == INIT_PAYLOAD
    assert inbound[0] == "connection_ack", inbound
    unexpected = [t for t in inbound[1:] if t not in ("next", "ping", "pong")]
    assert unexpected == [], f"only next/ping/pong after the ack, no complete echo: {inbound}"
    started = frames.ids("out", "subscribe")
    assert len(started) == 3, outbound
    assert sorted(frames.ids("out", "complete")) == sorted(started), outbound


def check_legacy_frames(frames: FrameCapture) -> None:
    inbound, outbound = frames.types("in"), frames.types("out")
    assert outbound[0] == "connection_init", outbound
    assert frames.frames[0][1].get("payload") == INIT_PAYLOAD
    assert inbound[0] == "connection_ack", inbound
    unexpected = [t for t in inbound[1:] if t not in ("data", "ka", "complete")]
    assert unexpected == [], f"only data/ka/complete after the ack: {inbound}"
    started = frames.ids("out", "start")
    assert len(started) == 3, outbound
    stopped = frames.ids("out", "stop")
    assert sorted(stopped) == sorted(started), outbound
    assert sorted(frames.ids("in", "complete")) == sorted(stopped), f"one complete per stop: {frames.frames}"
    assert outbound[-1] == "connection_terminate", outbound


CHECK_FRAMES = {APOLLO: check_legacy_frames, TRANSPORT_WS: check_transport_frames}


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        # Default configuration first: no `subprotocols` argument.
        pytest.param(None, APOLLO, id="default"),
        # Then each protocol alone, then both in each order.
        pytest.param([APOLLO], APOLLO, id="graphql-ws"),
        pytest.param([TRANSPORT_WS], TRANSPORT_WS, id="graphql-transport-ws"),
        pytest.param([APOLLO, TRANSPORT_WS], APOLLO, id="graphql-ws,graphql-transport-ws"),
        pytest.param([TRANSPORT_WS, APOLLO], TRANSPORT_WS, id="graphql-transport-ws,graphql-ws"),
    ],
)
def test_realtime(offered: list[str] | None, expected: str, frames: FrameCapture) -> None:
    counts = asyncio.run(scenario(offered, expected, frames))
    if os.environ.get("CONFORMANCE_TRACE"):
        print(counts["handshake"])
        for direction, msg in frames.frames:
            print("->" if direction == "out" else "<-", json.dumps(msg)[:160])
    hs = counts["handshake"]
    # What gql offered: its documented default is both protocols, legacy Apollo first.
    assert hs["offered"] == ", ".join(offered or [APOLLO, TRANSPORT_WS]), hs
    assert counts["ended"] == {}, counts
    CHECK_FRAMES[expected](frames)
    # gql reads the echo as `response_headers["Sec-WebSocket-Protocol"]` from a case-sensitive
    # dict; without the header under exactly that name it guesses `graphql-ws` whenever that was
    # offered. With one protocol offered the guess is always right (the server can only choose
    # that one), with two it is right only by coincidence, so there gql must have read the
    # server's choice. Checked last so that the scenario above is judged on its own.
    offered_count = len(offered or [APOLLO, TRANSPORT_WS])
    if offered_count > 1:
        assert hs["gql_read"] == expected, (
            f"gql could not read the server's choice: it looks up 'Sec-WebSocket-Protocol' "
            f"case-sensitively, the 101 response sent {hs['raw_names']!r}: {hs}"
        )
    else:
        assert hs["gql_read"] in (expected, None), hs
