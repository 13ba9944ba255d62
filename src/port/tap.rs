//! TEMP STUB (replaced by the real backend)
use super::*;
pub struct TapPort;
impl TapPort {
    pub fn create(_ifname: &str) -> Result<TapPort, PortError> {
        Err(PortError::Vanished { name: String::new() })
    }
    pub fn set_mtu_hint(&mut self, _m: u32) {}
}
pub fn create_persistent_tap(_n: &str) -> Result<(), PortError> { Ok(()) }
pub fn delete_persistent_tap(_n: &str) -> Result<(), PortError> { Ok(()) }
impl Port for TapPort {
    fn name(&self) -> &str { "" }
    fn info(&self) -> PortInfo { unimplemented!() }
    fn raw_fd(&self) -> RawFd { -1 }
    fn mtu(&self) -> u32 { 0 }
    fn recv_batch(&mut self, _b: &mut RxBatch) -> Result<usize, PortError> { Ok(0) }
    fn send_batch(&mut self, _f: &[&[u8]]) -> (usize, Option<SendError>) { (0, None) }
    fn check(&mut self) -> Result<(), PortError> { Ok(()) }
}
