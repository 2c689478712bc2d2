pub struct ConfFile;
pub struct ParseError { pub line: usize, pub message: String }
pub fn parse(_t: &str) -> Result<ConfFile, ParseError> { todo!() }
impl ConfFile {
  pub fn render(&self) -> String { todo!() }
  pub fn setting_at(&self, _l: usize) -> Option<(String, String)> { todo!() }
  pub fn set_at(&mut self, _l: usize, _v: &str) -> Result<(), String> { todo!() }
  pub fn append_managed(&mut self, _n: &str, _v: &str) { todo!() }
}
pub fn quote_value(_v: &str) -> String { todo!() }
pub fn parse_size(_v: &str, _b: u64) -> Option<u64> { todo!() }
