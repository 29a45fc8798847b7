"""A real redis-server with the module for each test: a random loopback
port, its own directory, killed at the end, its log printed on failure."""

import os
import pathlib
import socket
import subprocess
import tempfile
import time

import pytest
import redis

ROOT = pathlib.Path(__file__).resolve().parents[2]


def module_path():
    return os.environ.get("REDIS_MMAP_MODULE") or str(ROOT / "target/release/libredis_mmap.so")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home, extra=()):
        self.home = pathlib.Path(home)
        self.data = self.home / "data"
        self.data.mkdir()
        self.proc = None
        for _ in range(5):
            self.port = free_port()
            conf = self.home / "redis.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"port {self.port}",
                        "bind 127.0.0.1",
                        f"dir {self.home}",
                        "logfile redis.log",
                        'save ""',
                        f"loadmodule {module_path()} dir {self.data}",
                        *extra,
                    ]
                )
                + "\n"
            )
            binary = os.environ.get("REDIS_SERVER", "redis-server")
            self.proc = subprocess.Popen([binary, str(conf)], cwd=self.home)
            if self._ready():
                return
            self.proc.kill()
            self.proc.wait()
        raise RuntimeError("the server did not start:\n" + self.log())

    def _ready(self):
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                # A timeout: the port is another's (a cluster node listens
                # on its port + 10000 too), and this server failed to bind it.
                if redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2).ping():
                    return True
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.02)
        return False

    def client(self, **kw):
        return redis.Redis(port=self.port, **kw)

    def log(self):
        try:
            return (self.home / "redis.log").read_text()
        except OSError:
            return ""

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "report_" + report.when, report)


@pytest.fixture
def server(request):
    with tempfile.TemporaryDirectory(prefix="redis-mmap-py") as home:
        s = Server(home)
        yield s
        s.stop()
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            print(f"--- server log ({os.environ.get('REDIS_SERVER', 'redis-server')})\n{s.log()}")


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(server, request):
    return server.client(protocol=request.param)


@pytest.fixture(scope="module")
def cluster():
    """A real three-master Redis Cluster on loopback, the module on each
    node; yields the nodes once every slot is served."""
    with tempfile.TemporaryDirectory(prefix="redis-mmap-pycluster") as top:
        nodes = []
        try:
            for i in range(3):
                home = pathlib.Path(top) / str(i)
                home.mkdir()
                nodes.append(Server(home, ["cluster-enabled yes", "cluster-node-timeout 5000", "appendonly no"]))
            slots = [range(0, 5461), range(5461, 10923), range(10923, 16384)]
            for n, s in zip(nodes, slots):
                n.client().execute_command("CLUSTER", "ADDSLOTS", *s)
            for n in nodes[1:]:
                nodes[0].client().execute_command("CLUSTER", "MEET", "127.0.0.1", n.port)
            deadline = time.time() + 30
            while time.time() < deadline:
                if all(_formed(n.client().execute_command("CLUSTER", "INFO")) for n in nodes):
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("the cluster did not form:\n" + "\n".join(n.log() for n in nodes))
            yield nodes
        finally:
            for n in nodes:
                n.stop()


def _formed(info):
    """Whether a CLUSTER INFO reply (text, or redis-py's dict) says every
    slot is served by a cluster of three."""
    if isinstance(info, bytes):
        info = info.decode()
    if isinstance(info, str):
        info = dict(line.split(":", 1) for line in info.split() if ":" in line)
    return str(info.get("cluster_state")) == "ok" and str(info.get("cluster_known_nodes")) == "3"
