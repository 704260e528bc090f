//! The pipeline's scripts on a Redis Cluster (as Azure Managed Redis shards
//! run): a node refuses a script that touches a key it does not serve. The
//! test starts its own two-node cluster (`redis-server --cluster-enabled
//! yes`, `REDIS_SERVER_BIN` to override): node A serves only the slot of the
//! pipeline's hash tag, node B every other slot, and the pipeline talks to A.
//! Every script passes only if every key it touches, declared or found, is in
//! that one slot.

#![cfg(feature = "native")]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use platform_core::native::NativeRedis;
use platform_core::pipeline::{self, JobStatus, RedriveOutcome, ResultRef, SubmitOutcome};
use platform_core::ports::{Redis, RedisValue};

struct ClusterNode {
    child: Child,
    _dir: tempfile_dir::Dir,
    url: String,
}

/// A scratch directory removed on drop (the cluster config file lives there).
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn start_node() -> ClusterNode {
    let port = free_port_pair();
    let dir = std::env::temp_dir().join(format!("cluster-{}", common::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
    let child = Command::new(&bin)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let node = ClusterNode {
        child,
        _dir: tempfile_dir::Dir(dir),
        url: format!("redis://127.0.0.1:{port}"),
    };
    let redis = NativeRedis::new(&node.url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.execute("PING", &[]).is_err() {
        assert!(Instant::now() < deadline, "the cluster node did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    node
}

fn text(reply: &[RedisValue]) -> String {
    match &reply[0] {
        RedisValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        RedisValue::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// Nodes A and B, A serving only the slot of `tag`.
fn start_cluster(tag: &str) -> (ClusterNode, ClusterNode) {
    let (a, b) = (start_node(), start_node());
    let (ra, rb) = (
        NativeRedis::new(&a.url).unwrap(),
        NativeRedis::new(&b.url).unwrap(),
    );
    let slot: u32 = text(
        &ra.execute("CLUSTER", &["KEYSLOT".into(), tag.into()])
            .unwrap(),
    )
    .parse()
    .unwrap();
    ra.execute("CLUSTER", &["ADDSLOTS".into(), slot.to_string().into()])
        .unwrap();
    if slot > 0 {
        rb.execute(
            "CLUSTER",
            &[
                "ADDSLOTSRANGE".into(),
                "0".into(),
                (slot - 1).to_string().into(),
            ],
        )
        .unwrap();
    }
    if slot < 16383 {
        rb.execute(
            "CLUSTER",
            &[
                "ADDSLOTSRANGE".into(),
                (slot + 1).to_string().into(),
                "16383".into(),
            ],
        )
        .unwrap();
    }
    let port_b = b.url.rsplit(':').next().unwrap().to_string();
    ra.execute(
        "CLUSTER",
        &["MEET".into(), "127.0.0.1".into(), port_b.into()],
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    for redis in [&ra, &rb] {
        loop {
            let info = text(&redis.execute("CLUSTER", &["INFO".into()]).unwrap());
            if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:2") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not come up: {info}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (a, b)
}

#[test]
fn every_script_runs_on_a_cluster_node() {
    let cfg = platform_core::config::PipelineConfig {
        lease_ms: 100,
        max_attempts: 1,
        ..common::pipeline_config("cluster")
    };
    let (a, _b) = start_cluster(&format!("{{{}}}", cfg.key_prefix));
    let redis = NativeRedis::new(&a.url).unwrap();
    let job = common::text_job("acme", "x", Some("key-1"));
    let SubmitOutcome::Created(record) = pipeline::submit(&redis, &cfg, job.clone()).unwrap()
    else {
        panic!("not created");
    };
    assert!(matches!(
        pipeline::submit(&redis, &cfg, job).unwrap(),
        SubmitOutcome::Existing(_)
    ));
    let id = record.id;
    assert!(pipeline::get(&redis, &cfg, &id).unwrap().is_some());
    assert_eq!(pipeline::backlog(&redis, &cfg).unwrap().due, 1);
    assert_eq!(pipeline::sweep(&redis, &cfg).unwrap(), 1);

    // Claimed, released, claimed again, failed for good, re-driven, completed.
    let claimed = pipeline::claim(&redis, &cfg, Some(&id)).unwrap();
    assert_eq!(pipeline::release(&redis, &cfg, &claimed).unwrap(), 1);
    let claimed = pipeline::claim(&redis, &cfg, None).unwrap().remove(0);
    assert_eq!(
        pipeline::fail(&redis, &cfg, &claimed, "no", false).unwrap(),
        Some(JobStatus::Failed)
    );
    assert_eq!(
        pipeline::dead_letters(&redis, &cfg, 0, 10).unwrap().len(),
        1
    );
    assert!(matches!(
        pipeline::redrive(&redis, &cfg, &id).unwrap(),
        RedriveOutcome::Requeued(_)
    ));
    let claimed = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
    let result = ResultRef {
        blob: format!("acme/{id}.json"),
        content_type: "application/json".into(),
        bytes: 1,
    };
    assert!(pipeline::complete(&redis, &cfg, &claimed, &result).unwrap());

    // A lease that expires on the last attempt dead-letters through claim.
    let other = common::text_job("acme", "y", None);
    let SubmitOutcome::Created(other) = pipeline::submit(&redis, &cfg, other).unwrap() else {
        panic!("not created");
    };
    pipeline::claim(&redis, &cfg, Some(&other.id)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(pipeline::claim(&redis, &cfg, None).unwrap().is_empty());
    assert_eq!(pipeline::backlog(&redis, &cfg).unwrap().dead, 1);
}
