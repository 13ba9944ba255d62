//! Stage 3, shape: write the re-tagged and untagged copies the plans ask
//! for. The plan says which bytes a port gets (`switch::Shape`); this stage
//! only builds them: at most one copy per frame and distinct shape (there
//! are at most three: untagged, re-tagged, tagged with priority 0), shared
//! by every port that needs it, in a reused arena. Ports that take a frame
//! as received keep sending straight from the receive buffer.

use smallvec::SmallVec;

use super::components::port_entry::PortEntry;
use crate::port::{Offload, RxBatch, BATCH_SIZE};
use crate::switch::{PortId, Shape};
use crate::wire::VLAN_TAG_LEN;

/// A re-shaped copy: where it is in the arena (start, length), and its
/// offload (checksum and GSO offsets moved with the header).
pub type Variant = (usize, usize, Offload);

/// Distinct shapes one frame can need.
const SHAPES: usize = 3;

/// One frame's copies, by the shape each carries.
type Built = [Option<(Shape, Variant)>; SHAPES];

/// The batch's re-shaped copies.
#[derive(Default)]
pub struct Variants {
    arena: Vec<u8>,
    built: SmallVec<[Built; BATCH_SIZE]>,
}

impl Variants {
    /// The bytes of a copy by its position (for pieces that outlive the
    /// lookup).
    pub fn bytes(&self, start: usize, len: usize) -> &[u8] {
        &self.arena[start..start + len]
    }

    /// Copy `k` of frame `i`, by position.
    pub fn variant(&self, i: usize, k: u8) -> Option<Variant> {
        self.built.get(i)?[k as usize].map(|(_, v)| v)
    }
}

/// Builds every copy the pending frames of the `touched` ports need and
/// points each pending frame at its copy.
pub fn build(
    ports: &mut [Option<PortEntry>],
    touched: &[PortId],
    rx: &RxBatch,
    n: usize,
    v: &mut Variants,
) {
    v.arena.clear();
    v.built.clear();
    v.built.resize(n, [None; SHAPES]);
    for &t in touched {
        let Some(Some(e)) = ports.get_mut(t.index()) else {
            continue;
        };
        for p in &mut e.pending {
            if p.shape.is_unchanged() {
                continue;
            }
            let i = p.frame as usize;
            let slots = &mut v.built[i];
            let k = match slots
                .iter()
                .position(|s| s.is_some_and(|(sh, _)| sh == p.shape))
            {
                Some(k) => k,
                None => {
                    let Some(k) = slots.iter().position(Option::is_none) else {
                        // Cannot happen (see SHAPES); sent as received rather
                        // than lost.
                        continue;
                    };
                    let slot = rx.slot(i);
                    let var = copy(&mut v.arena, slot.frame(), slot.offload(), p.shape);
                    slots[k] = Some((p.shape, var));
                    k
                }
            };
            p.variant = Some(k as u8);
        }
    }
}

/// Writes `frame` re-shaped as `sh` at the end of `arena`.
fn copy(arena: &mut Vec<u8>, frame: &[u8], o: Offload, sh: Shape) -> Variant {
    let start = arena.len();
    let o = match sh {
        Shape::AsReceived => {
            arena.extend_from_slice(frame);
            o
        }
        Shape::Untagged => {
            arena.extend_from_slice(&frame[..12]);
            arena.extend_from_slice(&frame[16..]);
            o.unshifted(VLAN_TAG_LEN as u16)
        }
        Shape::Tagged { tag, pushed } => {
            arena.extend_from_slice(&frame[..12]);
            arena.extend_from_slice(&tag.to_bytes());
            if pushed {
                arena.extend_from_slice(&frame[12..]);
                o.shifted(VLAN_TAG_LEN as u16)
            } else {
                arena.extend_from_slice(&frame[16..]);
                o
            }
        }
    };
    (start, arena.len() - start, o)
}
