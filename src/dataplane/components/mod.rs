//! What the dataplane thread owns per feature, as data: an open port
//! (`port_entry`), its impairment queues (`impair_queue`), the monitors
//! (`monitors`) and the fast path's table (`flow_table`). These files sit
//! below `state.rs`, which holds them, and know nothing of `State`: the
//! functions that take `&mut State` are the stages, beside the others
//! (`impair.rs`, `monitor.rs`, `fastpath.rs`, `protect.rs`).

pub mod flow_table;
pub mod impair_queue;
pub mod monitors;
pub mod port_entry;
