//! One module per subcommand, each flowing inspect → plan → apply.

pub mod clone_standby;
pub mod init_master;
pub mod password;
pub mod sandbox;
