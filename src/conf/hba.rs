use std::collections::HashMap;
pub struct HbaFile;
pub struct ParseError { pub line: usize, pub message: String }
#[derive(Debug, Clone)]
pub struct Token { pub text: String, pub quoted: bool }
pub enum ConnType { Local, Host, HostSsl, HostNoSsl, HostGssEnc, HostNoGssEnc }
pub struct Record { pub line: usize, pub conn_type: ConnType, pub databases: Vec<Token>, pub users: Vec<Token>, pub method: String }
pub fn parse(_t: &str) -> Result<HbaFile, ParseError> { todo!() }
impl HbaFile { pub fn render(&self) -> String { todo!() } pub fn records(&self) -> Vec<Record> { todo!() } pub fn insert_before(&mut self, _l: Option<usize>, _t: &str) {} }
pub struct ReplConn { pub role: String, pub addr: ipnet::IpNet, pub ssl: bool }
pub struct MatchContext { pub role_memberships: Vec<String>, pub at_files: HashMap<String, Vec<Token>>, pub local_nets: Vec<ipnet::IpNet> }
pub enum HbaDecision { AlreadyAllowed { line: usize }, InsertBefore { line: usize, shadowing: Record }, Append }
pub fn decide(_f: &HbaFile, _c: &ReplConn, _m: &str, _x: &MatchContext) -> HbaDecision { todo!() }
pub fn format_record(_c: &ReplConn, _m: &str) -> String { todo!() }
