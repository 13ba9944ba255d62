//! TEMP STUB (replaced by the real backend)
use super::*;
pub struct AfPacketPort;
impl AfPacketPort {
    pub fn open(_ifname: &str, _kind: PortKind) -> Result<AfPacketPort, PortError> {
        Err(PortError::Vanished { name: String::new() })
    }
}
impl Port for AfPacketPort {
    fn name(&self) -> &str { "" }
    fn info(&self) -> PortInfo { unimplemented!() }
    fn raw_fd(&self) -> RawFd { -1 }
    fn mtu(&self) -> u32 { 0 }
    fn recv_batch(&mut self, _b: &mut RxBatch) -> Result<usize, PortError> { Ok(0) }
    fn send_batch(&mut self, _f: &[&[u8]]) -> (usize, Option<SendError>) { (0, None) }
    fn check(&mut self) -> Result<(), PortError> { Ok(()) }
}
