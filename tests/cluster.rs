//! A real Redis Cluster on loopback: three masters and three replicas, each
//! node a server of its own with its own mmap.dir, `mmap.rdb-content yes`.
//! Keys of 1,000,000 values are bound before the replicas attach (so that
//! they reach them through a full sync), then moved by `redis-cli --cluster
//! reshard` and `rebalance`, by Valkey's `CLUSTER MIGRATESLOTS`, and through
//! manual and automatic failovers, while a client keeps writing to them.
//! Every write the client saw acknowledged must be on the node that owns
//! the key at the end, byte for byte.

mod common;

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Values per key.
const VALUES: usize = 1_000_000;

fn node_opts() -> Opts {
    let conf = [
        "cluster-enabled yes",
        "cluster-config-file nodes.conf",
        "cluster-node-timeout 1000",
        // A replica may take over however long its link was down, and
        // stays with its master when that master loses its slots.
        "cluster-replica-validity-factor 0",
        "cluster-allow-replica-migration no",
        "repl-diskless-sync-delay 0",
        "mmap.rdb-content yes",
    ];
    Opts {
        conf: conf.iter().map(|s| s.to_string()).collect(),
        ..Opts::default()
    }
}

struct Node {
    s: Server,
    id: String,
}

impl Node {
    fn start() -> Node {
        let s = Server::with(node_opts());
        let id = bulk(&mut s.conn(), &["CLUSTER", "MYID"]).unwrap();
        Node { s, id }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.s.port)
    }

    fn conn(&self) -> redis::Connection {
        self.s.conn()
    }

    fn info(&self, section: &str, name: &str) -> String {
        field(&mut self.conn(), section, name)
    }

    /// A field of `CLUSTER INFO`.
    fn cluster(&self, name: &str) -> String {
        let text = bulk(&mut self.conn(), &["CLUSTER", "INFO"]).unwrap();
        line_field(&text, name).unwrap_or_else(|| panic!("{name} missing in CLUSTER INFO:\n{text}"))
    }

    /// Joins the cluster `other` is in.
    fn meet(&self, other: &Node) {
        let port = other.s.port.to_string();
        raw(&mut self.conn(), &["CLUSTER", "MEET", "127.0.0.1", &port]).unwrap();
    }

    /// Whether this node owns `slot` and says the cluster is whole.
    fn serves(&self, slot: u16) -> bool {
        let mut c = self.conn();
        let Ok(Value::Array(ranges)) = raw(&mut c, &["CLUSTER", "SLOTS"]) else {
            return false;
        };
        ranges.iter().any(|r| match r {
            Value::Array(r) => match (&r[0], &r[1], &r[2]) {
                (Value::Int(a), Value::Int(b), Value::Array(owner)) => {
                    (*a..=*b).contains(&(slot as i64)) && owner.get(1) == Some(&Value::Int(self.s.port as i64))
                }
                _ => false,
            },
            _ => false,
        })
    }
}

struct Cluster {
    masters: Vec<Node>,
    replicas: Vec<Node>,
}

const RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

impl Cluster {
    /// Three masters with the slots split evenly, one key of `VALUES`
    /// values bound under each of the hash tags `tags` picks, and then one
    /// replica for each master, which gets the keys through a full sync.
    /// Returns the keys' model and paths too.
    fn start(tags: impl FnOnce(&Cluster) -> Vec<String>) -> (Cluster, Model, HashMap<String, String>) {
        let masters: Vec<Node> = (0..3).map(|_| Node::start()).collect();
        for (m, (a, b)) in masters.iter().zip(RANGES) {
            let (a, b) = (a.to_string(), b.to_string());
            raw(&mut m.conn(), &["CLUSTER", "ADDSLOTSRANGE", &a, &b]).unwrap();
        }
        for m in &masters[1..] {
            m.meet(&masters[0]);
        }
        let mut cl = Cluster {
            masters,
            replicas: Vec::new(),
        };
        cl.wait_ok(3);
        let (model, paths) = bind_all(cl.ports(), &tags(&cl));
        cl.replicas = (0..3).map(|_| Node::start()).collect();
        for r in &cl.replicas {
            r.meet(&cl.masters[0]);
        }
        cl.wait_ok(6);
        for (r, m) in cl.replicas.iter().zip(&cl.masters) {
            let mut c = r.conn();
            // The replica learns of its master through gossip first.
            wait_for("CLUSTER REPLICATE", || {
                raw(&mut c, &["CLUSTER", "REPLICATE", &m.id]).is_ok()
            });
        }
        for r in &cl.replicas {
            wait_synced(r);
        }
        (cl, model, paths)
    }

    fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.masters.iter().chain(&self.replicas)
    }

    /// Waits until every node knows `n` nodes and sees the cluster whole.
    fn wait_ok(&self, n: usize) {
        for node in self.nodes() {
            wait_for("the cluster to form", || {
                node.cluster("cluster_state") == "ok" && node.cluster("cluster_known_nodes") == n.to_string()
            });
        }
    }

    fn ports(&self) -> Vec<u16> {
        self.nodes().map(|n| n.s.port).collect()
    }

    /// Hash tags whose slots are the `count` lowest of master `m`'s range.
    fn tags(&self, m: usize, within: u16, count: usize) -> Vec<String> {
        let mut c = self.masters[0].conn();
        let lowest = RANGES[m].0;
        (0..)
            .map(|i| format!("{{t{i}}}"))
            .filter(|tag| {
                let slot = int(&mut c, &["CLUSTER", "KEYSLOT", tag]) as u16;
                (lowest..lowest + within).contains(&slot)
            })
            .take(count)
            .collect()
    }
}

fn slot_of(c: &mut redis::Connection, key: &str) -> u16 {
    int(c, &["CLUSTER", "KEYSLOT", key]) as u16
}

/// Waits until a replica's link is up and its sync done.
fn wait_synced(r: &Node) {
    wait_for("the replica's sync", || {
        r.info("replication", "master_link_status") == "up" && r.info("replication", "master_sync_in_progress") == "0"
    });
}

/// A client that follows `MOVED` and `ASK`, and retries while the cluster
/// is changing hands (`TRYAGAIN`, `CLUSTERDOWN`, a node that is gone).
struct Client {
    ports: Vec<u16>,
    conns: HashMap<u16, redis::Connection>,
    owner: HashMap<String, u16>,
    /// The node that answered the last command.
    last: u16,
}

impl Client {
    fn new(ports: Vec<u16>) -> Client {
        Client {
            ports,
            conns: HashMap::new(),
            owner: HashMap::new(),
            last: 0,
        }
    }

    fn conn(&mut self, port: u16) -> Result<&mut redis::Connection, String> {
        match self.conns.entry(port) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let c = client
                    .get_connection_with_timeout(Duration::from_secs(2))
                    .map_err(|e| e.to_string())?;
                Ok(e.insert(c))
            }
        }
    }

    fn send(&mut self, port: u16, args: &[String], asking: bool) -> Result<Value, String> {
        let c = self.conn(port)?;
        if asking {
            raw(c, &["ASKING"])?;
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = raw(c, &args);
        if matches!(&out, Err(e) if !e.starts_with("MOVED") && !e.starts_with("ASK")) {
            // The node may be gone, or failing over: connect afresh.
            self.conns.remove(&port);
        }
        out
    }

    /// Runs a command on the node that owns its key (argument 1).
    fn run(&mut self, args: &[String]) -> Result<Value, String> {
        let key = args[1].clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut port = self.owner.get(&key).copied().unwrap_or(self.ports[0]);
        let mut asking = false;
        loop {
            let out = self.send(port, args, asking);
            asking = false;
            let target = |e: &str| {
                e.split(' ')
                    .nth(2)
                    .and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok())
            };
            match out {
                Err(e) if e.starts_with("MOVED") => {
                    port = target(&e).unwrap();
                    self.owner.insert(key.clone(), port);
                }
                Err(e) if e.starts_with("ASK") => {
                    port = target(&e).unwrap();
                    asking = true;
                }
                Err(e) if Instant::now() < deadline && retry(&e) => {
                    thread::sleep(Duration::from_millis(20));
                    // A node that is gone: ask another.
                    if !e.starts_with("TRYAGAIN") && !e.starts_with("LOADING") {
                        let i = self.ports.iter().position(|&p| p == port).unwrap_or(0);
                        port = self.ports[(i + 1) % self.ports.len()];
                    }
                }
                other => {
                    self.last = port;
                    return other;
                }
            }
        }
    }
}

/// Errors that say the cluster is changing hands, not that the command
/// was wrong.
fn retry(e: &str) -> bool {
    !e.starts_with("ERR") && !e.starts_with("WRONGTYPE") || e.contains("not ready") || e.contains("Connection refused")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The element kind a key's file holds, told by its suffix: some keys are
/// int32 and float16, beside the float64 ones.
fn kind_of(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("i32") => "int32",
        Some("f16") => "float16",
        _ => "float64",
    }
}

/// A value for a key of `kind`, exactly representable in it, from a random
/// number below 2^30.
fn value_for(kind: &str, r: u64) -> f64 {
    match kind {
        "int32" => r as f64 - (1 << 29) as f64,
        "float16" => (r % 1024) as f64 * 0.5,
        _ => r as f64 / 7.0,
    }
}

/// The file's bytes for `values` of `kind` (each exactly representable).
fn encode(kind: &str, values: &[f64]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| match kind {
            "int32" => (v as i32).to_le_bytes().to_vec(),
            "float16" => {
                // A normal float32 narrowed without rounding: the value fits.
                let b = (v as f32).to_bits();
                let h = if v == 0.0 {
                    0
                } else {
                    (((b >> 23) & 0xff) + 15 - 127) << 10 | (b >> 13) & 0x3ff
                };
                (h as u16).to_le_bytes().to_vec()
            }
            _ => v.to_le_bytes().to_vec(),
        })
        .collect()
}

/// Binds `key` to `path` and fills it with `VALUES` values.
fn bind(client: &mut Client, key: &str, path: &str) -> Vec<f64> {
    let kind = kind_of(path);
    client.run(&strings(&["MMAP", key, path, "TYPE", kind])).unwrap();
    let values: Vec<f64> = (0..VALUES as u64)
        .map(|i| value_for(kind, i * 999_983 % (1 << 30)))
        .collect();
    for chunk in values.chunks(20_000) {
        let mut args = strings(&["MMAP.ADD", key]);
        args.extend(chunk.iter().map(f64::to_string));
        client.run(&args).unwrap();
    }
    values
}

/// What each key should hold: every write the client saw acknowledged.
type Model = HashMap<String, Vec<f64>>;

/// A client writing to the keys on its own thread until stopped: mostly
/// `MMAP.SET` at random indices, some `MMAP.ADD`.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(Model, usize)>,
}

impl Writer {
    fn start(ports: Vec<u16>, mut model: Model, paths: HashMap<String, String>, wait_replica: bool) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut client = Client::new(ports);
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let keys: Vec<String> = model.keys().cloned().collect();
            let mut acked = 0;
            while !flag.load(Ordering::Relaxed) {
                let key = rng.pick(&keys).clone();
                let values = model.get_mut(&key).unwrap();
                let v = value_for(kind_of(&paths[&key]), rng.below(1 << 30));
                if rng.chance(10) {
                    let args = strings(&["MMAP.ADD", &key, &v.to_string()]);
                    client.run(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
                    values.push(v);
                } else {
                    let i = rng.below(values.len() as u64) as usize;
                    let args = strings(&["MMAP.SET", &key, &i.to_string(), &v.to_string()]);
                    client.run(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
                    values[i] = v;
                }
                if wait_replica {
                    // Acknowledged means on the replica too: a failover
                    // may then lose nothing.
                    let port = client.last;
                    let c = client.conn(port).unwrap();
                    assert_eq!(raw(c, &["WAIT", "1", "5000"]), Ok(Value::Int(1)));
                }
                acked += 1;
            }
            (model, acked)
        });
        Writer { stop, handle }
    }

    fn finish(self) -> (Model, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the writer")
    }
}

/// The node among `nodes` that owns `key`'s slot, answering as a master.
fn owner<'a>(nodes: impl Iterator<Item = &'a Node>, slot: u16) -> &'a Node {
    let nodes: Vec<&Node> = nodes.collect();
    let mut found = None;
    wait_for("the slot's owner", || {
        found = nodes
            .iter()
            .find(|n| n.info("replication", "role") == "master" && n.serves(slot))
            .copied();
        found.is_some()
    });
    found.unwrap()
}

/// Every key is on the node that owns its slot now, its file byte for byte
/// the model, and on that node's replica too; no other node has the key.
fn check(nodes: &[&Node], model: &Model, paths: &HashMap<String, String>) {
    for (key, values) in model {
        let slot = slot_of(&mut nodes[0].conn(), key);
        let node = owner(nodes.iter().copied(), slot);
        let file = node.s.data().join(&paths[key]);
        let (got, want) = (fs::read(&file).unwrap(), encode(kind_of(&paths[key]), values));
        assert_eq!(got.len(), want.len(), "{key} on {}", node.addr());
        assert!(got == want, "{key}: the file on {} differs", node.addr());
        let mut c = node.conn();
        assert_eq!(int(&mut c, &["MMAP.COUNT", key]), values.len() as i64);
        let d = digest(&mut c, key);
        let port = node.s.port.to_string();
        for n in nodes.iter().filter(|n| n.id != node.id) {
            let mut nc = n.conn();
            if n.info("replication", "role") == "slave" && n.info("replication", "master_port") == port {
                // The owner's replica holds the same bytes once caught up.
                raw(&mut nc, &["READONLY"]).unwrap();
                wait_for("the replica to catch up", || digest(&mut nc, key) == d);
            } else {
                // The source (and its replica) no longer has the key.
                let s = slot.to_string();
                wait_for("the key to leave the other nodes", || {
                    int(&mut nc, &["CLUSTER", "COUNTKEYSINSLOT", &s]) == 0
                });
            }
        }
    }
}

fn cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(args).output().expect("redis-cli runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "redis-cli {args:?} failed:\n{text}");
    assert!(!text.contains("[ERR]"), "redis-cli {args:?}:\n{text}");
    text
}

/// Binds one key of `VALUES` values under each tag; returns the model and
/// each key's path.
fn bind_all(ports: Vec<u16>, tags: &[String]) -> (Model, HashMap<String, String>) {
    let mut client = Client::new(ports);
    let (mut model, mut paths) = (Model::new(), HashMap::new());
    for (i, tag) in tags.iter().enumerate() {
        let key = format!("{tag}v{i}");
        let path = format!("v{i}.{}", ["f64", "i32", "f16"][i % 3]);
        model.insert(key.clone(), bind(&mut client, &key, &path));
        paths.insert(key, path);
    }
    (model, paths)
}

#[test]
fn reshard_moves_bound_keys_while_a_client_writes() {
    let (cl, model, paths) = Cluster::start(|cl| cl.tags(0, 64, 3));
    let writer = Writer::start(cl.ports(), model, paths.clone(), false);
    thread::sleep(Duration::from_millis(300));
    let (from, to) = (&cl.masters[0], &cl.masters[1]);
    cli(&[
        "--cluster",
        "reshard",
        &from.addr(),
        "--cluster-from",
        &from.id,
        "--cluster-to",
        &to.id,
        "--cluster-slots",
        "64",
        "--cluster-yes",
    ]);
    thread::sleep(Duration::from_millis(300));
    let (model, acked) = writer.finish();
    assert!(acked > 100, "the client kept writing ({acked} writes)");
    let nodes: Vec<&Node> = cl.nodes().collect();
    check(&nodes, &model, &paths);
    for key in model.keys() {
        let slot = slot_of(&mut from.conn(), key);
        assert!(to.serves(slot), "{key}");
    }
    // The source keeps the files it held, as DEL does, for an operator to
    // remove.
    let left = raw(&mut from.conn(), &["MMAP.UNBOUND"]).unwrap();
    for path in paths.values() {
        assert!(format!("{left:?}").contains(path.as_str()), "{left:?}");
    }
}

#[test]
fn rebalance_onto_an_added_node_moves_bound_keys_while_a_client_writes() {
    let (cl, model, paths) = Cluster::start(|cl| [cl.tags(0, 40, 2), cl.tags(1, 40, 1)].concat());
    let new = Node::start();
    cli(&["--cluster", "add-node", &new.addr(), &cl.masters[0].addr()]);
    for n in cl.nodes().chain([&new]) {
        wait_for("the new node to join", || {
            n.cluster("cluster_known_nodes") == "7" && n.cluster("cluster_state") == "ok"
        });
    }
    let writer = Writer::start(cl.ports(), model, paths.clone(), false);
    thread::sleep(Duration::from_millis(300));
    let weight = format!("{}=0.1", new.id);
    cli(&[
        "--cluster",
        "rebalance",
        &cl.masters[0].addr(),
        "--cluster-use-empty-masters",
        "--cluster-weight",
        &weight,
        "--cluster-yes",
    ]);
    thread::sleep(Duration::from_millis(300));
    let (model, acked) = writer.finish();
    assert!(acked > 100, "the client kept writing ({acked} writes)");
    let mut nodes: Vec<&Node> = cl.nodes().collect();
    nodes.push(&new);
    for key in model.keys() {
        let slot = slot_of(&mut new.conn(), key);
        assert!(new.serves(slot), "{key} is on the added node");
    }
    check(&nodes, &model, &paths);
}

/// A cluster with two keys on master 0, bound before its replica attached.
fn failover_cluster() -> (Cluster, Model, HashMap<String, String>) {
    let (cl, model, paths) = Cluster::start(|cl| cl.tags(0, 5000, 3));
    // The replica got every file through the full sync.
    let r = &cl.replicas[0];
    for path in paths.values() {
        assert_eq!(
            file_bits(&r.s.data().join(path)),
            file_bits(&cl.masters[0].s.data().join(path))
        );
    }
    (cl, model, paths)
}

#[test]
fn a_manual_failover_promotes_a_replica_that_serves_every_acknowledged_write() {
    let (cl, model, paths) = failover_cluster();
    let writer = Writer::start(cl.ports(), model, paths.clone(), false);
    thread::sleep(Duration::from_millis(300));
    raw(&mut cl.replicas[0].conn(), &["CLUSTER", "FAILOVER"]).unwrap();
    wait_for("the promotion", || {
        cl.replicas[0].info("replication", "role") == "master"
    });
    thread::sleep(Duration::from_millis(500));
    let (model, acked) = writer.finish();
    assert!(acked > 100, "the client kept writing ({acked} writes)");
    let nodes: Vec<&Node> = cl.nodes().collect();
    check(&nodes, &model, &paths);
    for key in model.keys() {
        let slot = slot_of(&mut cl.masters[1].conn(), key);
        assert!(cl.replicas[0].serves(slot), "the promoted replica owns {key}");
    }
}

#[test]
fn an_automatic_failover_after_the_master_dies_loses_no_acknowledged_write() {
    let (mut cl, model, paths) = failover_cluster();
    // Every write waits for the replica's acknowledgement (WAIT 1): those
    // are the writes a failover must keep.
    let writer = Writer::start(cl.ports(), model, paths.clone(), true);
    thread::sleep(Duration::from_millis(500));
    let (model, acked) = writer.finish();
    assert!(acked > 10, "the client kept writing ({acked} writes)");
    cl.masters[0].s.kill();
    wait_for("the promotion", || {
        cl.replicas[0].info("replication", "role") == "master"
    });
    let nodes: Vec<&Node> = cl.nodes().filter(|n| n.id != cl.masters[0].id).collect();
    check(&nodes, &model, &paths);
    // And takes new writes.
    let mut client = Client::new(cl.replicas.iter().map(|n| n.s.port).collect());
    let key = paths.iter().find(|(_, p)| p.ends_with(".f64")).unwrap().0;
    client.run(&strings(&["MMAP.SET", key, "0", "123"])).unwrap();
    let file = cl.replicas[0].s.data().join(&paths[key]);
    assert_eq!(file_values(&file)[0], 123.0);
}

#[test]
fn valkey_atomic_slot_migration_moves_bound_keys_while_a_client_writes() {
    let (cl, model, paths) = Cluster::start(|cl| cl.tags(0, 64, 3));
    let (from, to) = (&cl.masters[0], &cl.masters[1]);
    let mut c = from.conn();
    let migrate = ["CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "63", "NODE", &to.id];
    if flavour(&mut c) != Flavour::Valkey {
        // Redis moves slots with MIGRATE only (the tests above).
        let e = err(&mut c, &migrate);
        assert!(e.contains("nknown subcommand"), "{e}");
        return;
    }
    let writer = Writer::start(cl.ports(), model, paths.clone(), false);
    thread::sleep(Duration::from_millis(300));
    raw(&mut c, &migrate).unwrap();
    wait_for("the migration", || {
        cl.masters.iter().all(|m| m.serves(0) == (m.id == to.id))
    });
    thread::sleep(Duration::from_millis(300));
    let (model, acked) = writer.finish();
    assert!(acked > 100, "the client kept writing ({acked} writes)");
    let nodes: Vec<&Node> = cl.nodes().collect();
    check(&nodes, &model, &paths);
}
