//! A small Rust client of redis-mmap: binds a key to a file, appends,
//! reads, writes in place, and prints what it sees.
//!
//! Run a server with `make run`, then:
//!     cargo run --example client -- redis://127.0.0.1:6380/ demo.f64

fn main() -> redis::RedisResult<()> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "redis://127.0.0.1:6380/".into());
    let path = args.next().unwrap_or_else(|| "demo.f64".into());
    let mut con = redis::Client::open(url)?.get_connection()?;

    // The path is relative to the server's mmap.dir.
    let n: i64 = redis::cmd("MMAP").arg("demo").arg(&path).query(&mut con)?;
    println!("MMAP demo {path} -> {n} values");

    let values: Vec<f64> = (0..10).map(|i| i as f64 / 4.0).collect();
    let added: i64 = redis::cmd("MMAP.ADD").arg("demo").arg(&values).query(&mut con)?;
    let count: i64 = redis::cmd("MMAP.COUNT").arg("demo").query(&mut con)?;
    println!("MMAP.ADD 10 values -> {added}; MMAP.COUNT -> {count}");

    let written: i64 = redis::cmd("MMAP.SET").arg("demo").arg(0).arg(-1.5).query(&mut con)?;
    let first: Option<f64> = redis::cmd("MMAP.GET").arg("demo").arg(0).query(&mut con)?;
    println!("MMAP.SET demo 0 -1.5 -> {written}; MMAP.GET demo 0 -> {first:?}");

    let some: Vec<Option<f64>> = redis::cmd("MMAP.MGET")
        .arg("demo")
        .arg(&[1, 9, 1_000_000])
        .query(&mut con)?;
    println!("MMAP.MGET demo 1 9 1000000 -> {some:?}");

    let last: Option<f64> = redis::cmd("MMAP.POP").arg("demo").query(&mut con)?;
    println!("MMAP.POP demo -> {last:?}");
    Ok(())
}
