#![cfg(feature = "mio")]
//! 1,000 clients and their 1,000 server connections held at once by one reactor on one
//! thread: the code of `examples/mio_many.rs`, run in `cargo test`.
//!
//! 2,000 sockets need about 2,010 descriptors; the test re-runs itself under
//! `bash -c 'ulimit -n …'` so a soft limit of 1,024 does not get in the way.

#[path = "../examples/mio_many.rs"]
#[allow(dead_code)]
mod mio_many;

use std::process::Command;

const CHILD: &str = "CEPH_MSGR_MIO_MANY_CHILD";

#[test]
fn thousand_connections_on_one_thread() {
    if std::env::var_os(CHILD).is_some() {
        let r = mio_many::run(1000, 3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.peak, 2000, "all connections were held at once");
        assert_eq!(r.delivered, 3000);
        println!(
            "mio_many: 1000 clients + 1000 server connections on one thread: handshake + 3 \
             messages each acknowledged in {:.1} ms, all closed {:.1} ms later ({} turns)",
            r.open_and_acked.as_secs_f64() * 1e3,
            r.closed.as_secs_f64() * 1e3,
            r.turns
        );
        return;
    }
    // Raise the soft descriptor limit (to 8192, or the hard limit if lower) and run this
    // same test in a child process.
    let script = r#"
        h=$(ulimit -Hn)
        want=8192
        if [ "$h" != unlimited ] && [ "$h" -lt "$want" ]; then want=$h; fi
        s=$(ulimit -Sn)
        if [ "$s" != unlimited ] && [ "$s" -lt "$want" ]; then ulimit -Sn "$want"; fi
        echo "fd soft limit: $(ulimit -Sn)"
        exec "$0" "$@"
    "#;
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(exe)
        .args([
            "thousand_connections_on_one_thread",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "child failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("mio_many: 1000 clients"), "{stdout}");
}
