//! The harness's own fixtures work on this major.

use crate::harness::Cluster;

#[test]
fn hand_built_standby_streams() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(
        p.sql("SELECT application_name FROM pg_stat_replication"),
        "s1"
    );
}
