"""The gateway times its own pauses: a late event loop and each garbage collection."""

import asyncio
import gc
import logging
import re
import time


def metric(text: str, name: str) -> float:
    return float(re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE).group(1))


async def test_a_blocked_loop_is_measured_and_logged_with_its_cause(make_client, caplog):
    client = await make_client(pause_log_ms=80)
    await asyncio.sleep(0.05)  # the probe is under way
    with caplog.at_level(logging.WARNING, logger="gateway.pauses"):
        time.sleep(0.15)  # what a synchronous call inside a handler would do
        await asyncio.sleep(0.05)
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, "flattr_event_loop_lag_seconds_max") >= 0.1
    assert metric(metrics, 'flattr_event_loop_lag_seconds_bucket{le="0.1"}') < metric(
        metrics, "flattr_event_loop_lag_seconds_count")
    logged = [r for r in caplog.records if r.name == "gateway.pauses"]
    assert [r.pause["cause"] for r in logged] == ["loop"]
    assert logged[0].pause["pause_ms"] >= 100
    assert abs(logged[0].pause["monotonic"] - time.monotonic()) < 5


async def test_each_collection_is_counted_by_generation(make_client, caplog):
    client = await make_client(pause_log_ms=0.000001)  # every collection is long enough
    before = await (await client.get("/metrics")).text()
    with caplog.at_level(logging.WARNING, logger="gateway.pauses"):
        gc.collect()
        await asyncio.sleep(0.05)
    after = await (await client.get("/metrics")).text()
    full = 'flattr_gc_pause_seconds_count{generation="2"}'
    assert metric(after, full) >= metric(before, full) + 1
    assert metric(after, 'flattr_gc_pause_seconds_max{generation="2"}') > 0
    assert any(r.pause["cause"] == "gc" and r.pause["generation"] == 2
               for r in caplog.records if r.name == "gateway.pauses")


async def test_a_slow_batched_write_is_logged_with_its_requests(make_client, sign_up, caplog):
    client = await make_client(pause_log_ms=0.000001)  # every write is slow enough
    ada = await sign_up("ada", on=client)
    with caplog.at_level(logging.WARNING, logger="gateway.batcher"):
        await asyncio.gather(*(ada.call("POST", "/flattrs", status=201,
                                        json={"url": f"https://blog.example/{n}"})
                               for n in range(3)))
    writes = [r.pause for r in caplog.records if r.name == "gateway.batcher"]
    assert writes and all(w["cause"] == "write" and w["pause_ms"] > 0 for w in writes)
    assert sum(w["items"] for w in writes) == 3
