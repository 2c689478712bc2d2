//! One module per subcommand, each flowing inspect → plan → apply.

pub mod archive_dir;
pub mod check;
pub mod clone_standby;
pub mod conninfo;
pub mod follow;
pub mod init_master;
pub mod migrate;
pub mod password;
pub mod promote;
pub mod rejoin;
pub mod sandbox;
pub mod smoke_test;
pub mod standby_files;
pub mod switchover;
pub mod tunnel;
pub mod wal;
