//! The Internet checksum's arithmetic (RFC 1071): one's-complement sums
//! over 16-bit words and their final complement. Below both `ip` (the
//! pseudo header sum) and `checksum` (finishing a frame's L4 checksum),
//! which use it and each other's types without a circle.

/// One's-complement sum of `data` as big-endian 16-bit words, added to `sum`;
/// the result is folded to 16 bits, so callers may add small values to it.
///
/// The sum is independent of byte order up to a final swap (RFC 1071), so it
/// is taken over native-endian 64-bit loads in two independent accumulators
/// and swapped once at the end: a 1500-byte frame costs a few hundred
/// cycles, which matters when every coalesced segment is verified.
pub fn sum16(sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(16);
    // Each addition is below 2^33: no overflow before 2^31 additions.
    let (mut a, mut b) = (0u64, 0u64);
    for c in &mut chunks {
        let x = u64::from_ne_bytes(c[..8].try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(c[8..].try_into().expect("8 bytes"));
        a += (x & 0xffff_ffff) + (x >> 32);
        b += (y & 0xffff_ffff) + (y >> 32);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        a += u16::from_ne_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = rest.remainder() {
        // The odd byte is the high half of a big-endian word padded with 0.
        a += u16::from_ne_bytes([*last, 0]) as u64;
    }
    let native = fold(a) + fold(b);
    let be = u16::from_be(fold(native as u64) as u16) as u32;
    fold(sum as u64 + be as u64)
}

/// Folds with end-around carry down to 16 bits.
fn fold(mut x: u64) -> u32 {
    while x >> 16 != 0 {
        x = (x & 0xffff) + (x >> 16);
    }
    x as u32
}

/// Folds a sum to 16 bits and complements it.
pub fn finish(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
