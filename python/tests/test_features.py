"""The client's features beyond the basics: index arrays, the numpy 2
protocols, writes without a copy, transfers in pipelined slices with a
progress bar, the asyncio client, Redis Cluster, types and packaging."""

import array
import asyncio
import math
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import redis
import redis.asyncio
from redis.cluster import RedisCluster
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

import redis_mmap
from redis_mmap import AsyncVectors, ShardedVector, Stats, Vectors

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_index_arrays_read_and_write_through_mget_and_set(server, r):
    values = np.arange(100, dtype=np.float32) * 0.5
    values.tofile(server.data / "a.f32")
    v = Vectors(r).bind("a", "a.f32", dtype=np.float32)
    idx = [5, 0, 99, -1, 42]
    got = v[idx]
    assert got.dtype == np.float32 and np.array_equal(got, values[idx])
    mask = values > 40
    assert np.array_equal(v[mask], values[mask])
    assert np.array_equal(v[np.array([3, 7])], values[[3, 7]])
    v[[1, 2, -1]] = [10.25, float("nan"), 7]
    model = values.copy()
    model[[1, 2, -1]] = [10.25, np.nan, 7]
    assert np.array_equal(np.fromfile(server.data / "a.f32", dtype=np.float32), model, equal_nan=True)
    v[mask] = 0
    model[mask] = 0
    assert np.array_equal(v[:], model, equal_nan=True)
    with pytest.raises(IndexError):
        v[[0, 100]]
    with pytest.raises(IndexError):
        v[[100]] = [1]
    with pytest.raises(IndexError):
        v[np.ones(3, dtype=bool)]
    ints = Vectors(r).bind("i", "i.i64", dtype=np.int64, create=True)
    ints.append([2**62, -(2**63), 5])
    assert ints[[0, 1]].tolist() == [2**62, -(2**63)]
    ints[[2]] = [-7]
    assert ints[:].tolist() == [2**62, -(2**63), -7]


def test_numpy_2_protocols(server, r):
    v = Vectors(r).bind("n", "n.f64", create=True)
    v.append(np.arange(10.0))
    assert len(v) == 10 and v.count() == 10
    a = np.asarray(v)
    assert a.dtype == np.float64 and not a.flags.writeable
    assert np.asarray(v, dtype=np.float32).dtype == np.float32
    c = np.array(v, copy=True)
    c[0] = 99  # a copy is the caller's
    assert v[0] == 0
    with pytest.raises(ValueError, match="copy"):
        np.array(v, copy=False)
    assert list(v)[:3] == [0.0, 1.0, 2.0]
    assert v.read(2, 5).tolist() == [2.0, 3.0, 4.0] and v.read(-2).tolist() == [8.0, 9.0]
    assert v.read(5, 2).size == 0 and v.read(8, 100).tolist() == [8.0, 9.0]
    s = v.stats(0, 4)
    assert isinstance(s, Stats) and (s.count, s.sum, s.min, s.max) == (4, 6.0, 0.0, 3.0)
    assert isinstance(s.min, np.float64) and s.mean == 1.5
    assert v.stats(3, 3) == Stats(0, 0, 0.0, None, None, None, None)


def test_writes_from_a_buffer_are_sent_without_a_copy(server, r):
    v = Vectors(r).bind("w", "w.f64", create=True)
    data = np.arange(1000, dtype="<f8")
    sent = v._bytes_of(data)
    assert np.shares_memory(np.frombuffer(sent, dtype=np.uint8), data)
    raw = bytearray(data[:4].tobytes())
    assert np.shares_memory(np.frombuffer(v._bytes_of(raw), dtype=np.uint8), np.frombuffer(raw, dtype=np.uint8))
    typed = array.array("d", [1.5, 2.5])
    assert np.shares_memory(np.frombuffer(v._bytes_of(typed), dtype=np.uint8), np.frombuffer(typed, dtype=np.uint8))
    assert v.append(memoryview(data)) == 1000
    assert v.append(raw) == 1004 and v.append(typed) == 1006
    assert v.write(1, memoryview(data)[10:12]) == 2
    # Another kind, or big-endian values: converted, then sent.
    assert v.append(np.array([3, 4], dtype=np.int32)) == 1008
    got = np.fromfile(server.data / "w.f64")
    assert got[:3].tolist() == [0.0, 10.0, 11.0] and got[-2:].tolist() == [3.0, 4.0]
    assert got[1000:1006].tolist() == [0.0, 1.0, 2.0, 3.0, 1.5, 2.5]
    with pytest.raises(ValueError, match="whole number"):
        v.append(b"abc")


def test_large_transfers_go_in_pipelined_slices_with_a_progress_bar(server, r, capsys):
    v = Vectors(r, chunk_bytes=4096, progress=True).bind("big", "big.f64", create=True)
    data = np.random.default_rng(3).standard_normal(100_000)
    monitor = server.client()
    before = int(monitor.info("commandstats").get("cmdstat_mmap.append", {}).get("calls", 0))
    assert v.append(data) == 100_000
    calls = int(monitor.info("commandstats")["cmdstat_mmap.append"]["calls"]) - before
    assert calls == 100_000 * 8 // 4096 + 1
    assert np.array_equal(v[:], data) and np.array_equal(v.read(123, 99_000), data[123:99_000])
    assert int(monitor.info("commandstats")["cmdstat_mmap.range"]["calls"]) > 190
    v[10:50_010] = data[:50_000] * 2
    model = data.copy()
    model[10:50_010] = data[:50_000] * 2
    assert np.array_equal(np.fromfile(server.data / "big.f64"), model)
    assert "values" in capsys.readouterr().err  # tqdm drew its bar


def test_the_asyncio_client_does_what_the_synchronous_one_does(server):
    async def main(protocol):
        r = redis.asyncio.Redis(port=server.port, protocol=protocol)
        vs = AsyncVectors(r, chunk_bytes=1024)
        v = await vs.bind(f"x{protocol}", f"x{protocol}.i16", dtype=np.int16, create=True)
        assert await v.append(np.arange(2000, dtype=np.int16)) == 2000
        assert await v.count() == 2000
        assert (await v.read(10, 13)).tolist() == [10, 11, 12]
        assert (await v[1990:]).tolist() == list(range(1990, 2000))
        assert int(await v[-1]) == 1999 and (await v[[3, 4]]).tolist() == [3, 4]
        await v.set(slice(0, 2), [-5, -6])
        await v.set([5], [55])
        assert await v.write(6, np.array([66], dtype=np.int16)) == 1
        s = await v.stats()
        assert s.count == 2000 and s.min == -6 and s.max == 1999
        assert (await v.info())["kind"] == "int16"
        same = await vs.get(f"x{protocol}")
        assert (await same.read(0, 7)).tolist() == [-5, -6, 2, 3, 4, 55, 66]
        assert int(await v.pop()) == 1999 and await v.resize(10) == 1999 and await v.clear() == 10
        await r.aclose()

    for protocol in (2, 3):
        asyncio.run(main(protocol))


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_a_cluster_serves_vectors_on_every_master(cluster, protocol):
    rc = RedisCluster(host="127.0.0.1", port=cluster[0].port, protocol=protocol)
    vs = Vectors(rc, chunk_bytes=8192)
    # Keys in every third of the slots: each vector lives on its own master.
    keys = [f"{k}{protocol}" for k in ["a", "b", "c", "d", "e", "f"]]
    owners = {rc.keyslot(k) * 3 // 16384 for k in keys}
    assert owners == {0, 1, 2}
    for i, k in enumerate(keys):
        v = vs.bind(k, f"{k}.f64", create=True)
        assert v.append(np.arange(10_000) + i) == 10_000
    for i, k in enumerate(keys):
        v = vs.get(k)
        assert np.array_equal(v[:], np.arange(10_000) + i)
        assert v.stats().sum == sum(range(10_000)) + 10_000 * i
        v[[0, 1]] = [-1, -2]
        assert v.pop() == 9_999 + i and v.read(0, 2).tolist() == [-1, -2]
    # Each file is on the node that owns its key's slot.
    for k in keys:
        assert (_owner(cluster, rc, k).data / f"{k}.f64").exists()

    async def main():
        ar = AsyncRedisCluster(host="127.0.0.1", port=cluster[0].port, protocol=protocol)
        v = await AsyncVectors(ar, chunk_bytes=8192).get(keys[0])
        assert (await v.read(0, 3)).tolist() == [-1, -2, 2]
        assert await v.append(np.zeros(5000)) == 14_999
        assert (await v.stats()).count == 14_999
        await ar.aclose()

    asyncio.run(main())
    rc.close()


def test_the_package_is_typed_and_mypy_strict_accepts_it():
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "redis_mmap", "tests/typed_use.py"],
        capture_output=True,
        text=True,
        cwd=ROOT / "python",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (pathlib.Path(redis_mmap.__file__).parent / "py.typed").exists()


def test_the_version_and_the_extras_match_the_module():
    from importlib import metadata

    cargo = (ROOT / "Cargo.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
    assert redis_mmap.__version__ == version == metadata.version("redis-mmap")
    extras = metadata.metadata("redis-mmap").get_all("Provides-Extra")
    assert {"bfloat16", "progress"} <= set(extras)


def _owner(cluster, rc, key):
    port = rc.get_node_from_key(key).port
    return next(n for n in cluster if n.port == port)


def _move_slot(cluster, rc, key, dst):
    """Reshards the slot of ``key`` to ``dst``, its keys moving with MIGRATE."""
    slot = rc.keyslot(key)
    src = _owner(cluster, rc, key)
    ids = {n.port: _text_of(n.client().execute_command("CLUSTER", "MYID")) for n in cluster}
    dst.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src.port])
    src.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst.port])
    while True:
        keys = src.client().execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
        if not keys:
            break
        src.client().execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 20000, "KEYS", *keys)
    for n in cluster:
        n.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[dst.port])


def _text_of(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def test_a_sharded_vector_spans_the_cluster_and_survives_a_reshard(cluster):
    rc = RedisCluster(host="127.0.0.1", port=cluster[0].port)
    n = 10_000_000
    values = np.random.default_rng(11).standard_normal(n)
    values[::997] = np.nan
    sv = ShardedVector.create(rc, "huge", np.float64, shard_len=1_000_000)
    assert sv.append(values[:3_500_000]) == 3_500_000
    assert sv.append(values[3_500_000:]) == n
    assert len(sv) == n and sv._shards() == 10
    # Every master holds shards, each in its own mmap.dir.
    owners = {_owner(cluster, rc, sv.key(i)).port for i in range(10)}
    assert owners == {c.port for c in cluster}
    for i in range(10):
        assert (_owner(cluster, rc, sv.key(i)).data / f"huge.{i}.float64").stat().st_size == 8_000_000
    assert np.array_equal(sv.read(), values, equal_nan=True)
    # Reads and writes across shard edges.
    assert np.array_equal(sv[999_990:1_000_010], values[999_990:1_000_010], equal_nan=True)
    assert np.array_equal(sv[[0, 999_999, 1_000_000, -1]], values[[0, 999_999, 1_000_000, -1]], equal_nan=True)
    model = values.copy()
    sv[2_999_995:3_000_005] = np.arange(10.0)
    model[2_999_995:3_000_005] = np.arange(10.0)
    sv[[5, 5_000_000]] = [-1.0, -2.0]
    model[[5, 5_000_000]] = [-1.0, -2.0]
    # STATS of the whole, merged from the shards', against numpy.
    s = sv.stats()
    kept = model[~np.isnan(model)]
    assert s.count == len(kept) and s.nan == n - len(kept)
    assert abs(s.sum - math.fsum(kept)) <= 1e-12 * abs(math.fsum(kept)) + 1e-9
    assert s.min == kept.min() and s.max == kept.max()
    assert abs(s.std - np.std(kept)) <= 1e-12 * np.std(kept)
    part = sv.stats(999_000, 2_001_000)
    assert part.count == np.count_nonzero(~np.isnan(model[999_000:2_001_000]))
    # A reshard in the middle: two shards' slots move to other masters,
    # their keys and files with them; nothing is lost.
    for i in (0, 7):
        here = _owner(cluster, rc, sv.key(i))
        there = next(c for c in cluster if c.port != here.port)
        _move_slot(cluster, rc, sv.key(i), there)
        assert (there.data / f"huge.{i}.float64").stat().st_size == 8_000_000
    assert np.array_equal(sv.read(), model, equal_nan=True)
    sv[6_999_999:7_000_001] = [1.0, 2.0]
    model[6_999_999:7_000_001] = [1.0, 2.0]
    assert sv.append([3.5]) == n + 1
    model = np.append(model, 3.5)
    again = ShardedVector.open(rc, "huge")
    assert len(again) == n + 1 and np.array_equal(again.read(), model, equal_nan=True)
    assert again.stats().count == np.count_nonzero(~np.isnan(model))
    sv.delete()
    rc.close()


def _blocks(page):
    text = (ROOT / "docs" / page).read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_python_examples_in_the_docs_run(server, cluster):
    """Each ```python block of docs/python.md, run as written, in order
    (the asyncio block reads the vector the first one made), against a real
    server (port 6380 in the docs) or the cluster (port 7000)."""
    blocks = _blocks("python.md")
    assert len(blocks) == 3
    for code in blocks:
        code = code.replace("port=6380", f"port={server.port}").replace("port=7000", f"port={cluster[0].port}")
        if "await " in code:
            body = "\n".join("    " + line for line in code.splitlines())
            code = f"import asyncio\nasync def _main():\n{body}\n    await r.aclose()\nasyncio.run(_main())\n"
        exec(compile(code, "docs/python.md", "exec"), {})
