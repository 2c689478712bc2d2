//! One integration test binary (faster to build, shared harness).

mod ansible;
mod check;
mod clone_standby;
mod clone_standby_bad_input;
mod colour;
mod conf_vs_postgres;
mod cross_version;
mod debian;
mod engine;
mod faults;
mod fixture;
mod follow;
mod harness;
mod init_master;
mod init_master_bad_input;
mod init_master_hba;
mod init_master_roles;
mod json_contract;
mod local_cluster;
mod promote;
mod replication_client;
mod sandbox;
mod smoke_test;
mod versions;
