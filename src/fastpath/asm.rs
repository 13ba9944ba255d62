//! A small typed assembler for eBPF bytecode: named registers, labels for
//! jumps, and the `ld_map_fd` pseudo-instruction that the kernel resolves to
//! a map pointer when the program is loaded.
//!
//! The fast path's programs are written with it in `program.rs`, so the
//! crate builds with nothing but stable Rust: no clang, no bpf-linker, no C
//! source compiled at build time. Encodings follow the kernel's
//! `include/uapi/linux/bpf.h` (and Documentation/bpf/standardization); the
//! unit tests below pin them against hand-checked bytes.

use std::fmt;

/// One 8-byte eBPF instruction, laid out as `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (dst as u8) | ((src as u8) << 4),
            off,
            imm,
        }
    }

    /// The instruction's bytes in the order the kernel reads them.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// The eleven registers. R0: return value; R1-R5: call arguments (clobbered
/// by calls); R6-R9: kept across calls; R10: the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

/// The frame pointer: the stack is the 512 bytes below it.
pub const FP: Reg = Reg::R10;

/// Width of a memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }
}

/// Arithmetic operations (the `BPF_OP` field of ALU instructions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    Add = 0x00,
    Sub = 0x10,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Xor = 0xa0,
    Mov = 0xb0,
}

/// Conditional jumps (unsigned comparisons unless named signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
    Set = 0x40,
    Ne = 0x50,
    Lt = 0xa0,
    Le = 0xb0,
}

/// Kernel helper functions the programs call, by their stable ids
/// (`enum bpf_func_id`; checked against the running kernel's BTF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    MapLookupElem = 1,
    KtimeGetCoarseNs = 160,
    SkbVlanPush = 18,
    SkbVlanPop = 19,
    Redirect = 23,
    SkbLoadBytesRelative = 68,
    RedirectPeer = 155,
}

// Instruction classes, modes and sources (bpf.h / bpf_common.h).
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU32: u8 = 0x04;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const ATOMIC: u8 = 0xc0;
const K: u8 = 0x00;
const X: u8 = 0x08;
const END: u8 = 0xd0;
const TO_BE: u8 = 0x08;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
/// `src_reg` of a 64-bit immediate load that names a map by fd.
const PSEUDO_MAP_FD: u8 = 1;

/// A jump target, placed with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// What went wrong assembling a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("label {0} is jumped to but never bound")]
    Unbound(usize),
    #[error("label {0} is bound twice")]
    Rebound(usize),
    #[error("jump from instruction {0} is out of range")]
    Range(usize),
}

/// Builds a program instruction by instruction.
#[derive(Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of jumps whose offset is filled in `finish`.
    fixups: Vec<(usize, Label)>,
    error: Option<AsmError>,
}

impl fmt::Debug for Asm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Asm({} instructions)", self.insns.len())
    }
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    fn push(&mut self, i: Insn) -> &mut Asm {
        self.insns.push(i);
        self
    }

    /// A fresh label, to be bound later.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `l` at the next instruction.
    pub fn bind(&mut self, l: Label) -> &mut Asm {
        if self.labels[l.0].is_some() {
            self.error.get_or_insert(AsmError::Rebound(l.0));
        }
        self.labels[l.0] = Some(self.insns.len());
        self
    }

    /// `dst = imm` (64-bit, sign-extended).
    pub fn mov64_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(ALU64 | Alu::Mov as u8 | K, dst, Reg::R0, 0, imm))
    }

    /// `dst = src` (64-bit).
    pub fn mov64(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.push(Insn::new(ALU64 | Alu::Mov as u8 | X, dst, src, 0, 0))
    }

    /// `dst = (u32)imm`, upper half zeroed.
    pub fn mov32_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(ALU32 | Alu::Mov as u8 | K, dst, Reg::R0, 0, imm))
    }

    /// `dst op= imm` (64-bit).
    pub fn alu64_imm(&mut self, op: Alu, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(ALU64 | op as u8 | K, dst, Reg::R0, 0, imm))
    }

    /// `dst op= src` (64-bit).
    pub fn alu64(&mut self, op: Alu, dst: Reg, src: Reg) -> &mut Asm {
        self.push(Insn::new(ALU64 | op as u8 | X, dst, src, 0, 0))
    }

    /// `dst op= imm` (32-bit, upper half zeroed).
    pub fn alu32_imm(&mut self, op: Alu, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(ALU32 | op as u8 | K, dst, Reg::R0, 0, imm))
    }

    /// Converts the low 16 bits of `dst` to big-endian (a swap on x86),
    /// zeroing the rest.
    pub fn be16(&mut self, dst: Reg) -> &mut Asm {
        self.push(Insn::new(ALU32 | END | TO_BE, dst, Reg::R0, 0, 16))
    }

    /// `dst = *(size *)(src + off)`, zero-extended.
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Asm {
        self.push(Insn::new(LDX | MEM | size.bits(), dst, src, off, 0))
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(Insn::new(STX | MEM | size.bits(), dst, src, off, 0))
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Asm {
        self.push(Insn::new(ST | MEM | size.bits(), dst, Reg::R0, off, imm))
    }

    /// `lock *(u64 *)(dst + off) += src`: an atomic add other CPUs cannot lose.
    pub fn atomic_add64(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(Insn::new(
            STX | ATOMIC | Size::DW.bits(),
            dst,
            src,
            off,
            Alu::Add as i32,
        ))
    }

    /// `dst = &map` for the map behind `fd`: a two-slot instruction the
    /// verifier rewrites to the map's address.
    pub fn ld_map_fd(&mut self, dst: Reg, fd: i32) -> &mut Asm {
        let mut i = Insn::new(LD | IMM | Size::DW.bits(), dst, Reg::R0, 0, fd);
        i.regs |= PSEUDO_MAP_FD << 4;
        self.push(i).push(Insn::default())
    }

    /// `if dst cond imm goto l`.
    pub fn jmp_imm(&mut self, c: Cond, dst: Reg, imm: i32, l: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), l));
        self.push(Insn::new(JMP | c as u8 | K, dst, Reg::R0, 0, imm))
    }

    /// `if dst cond src goto l`.
    pub fn jmp_reg(&mut self, c: Cond, dst: Reg, src: Reg, l: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), l));
        self.push(Insn::new(JMP | c as u8 | X, dst, src, 0, 0))
    }

    /// `goto l`.
    pub fn ja(&mut self, l: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), l));
        self.push(Insn::new(JMP, Reg::R0, Reg::R0, 0, 0))
    }

    /// Calls a kernel helper: arguments in R1-R5, result in R0, R1-R5
    /// clobbered.
    pub fn call(&mut self, h: Helper) -> &mut Asm {
        self.push(Insn::new(JMP | CALL, Reg::R0, Reg::R0, 0, h as i32))
    }

    /// Returns R0.
    pub fn exit(&mut self) -> &mut Asm {
        self.push(Insn::new(JMP | EXIT, Reg::R0, Reg::R0, 0, 0))
    }

    /// Resolves the jumps and returns the program.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        for &(at, l) in &self.fixups {
            let target = self.labels[l.0].ok_or(AsmError::Unbound(l.0))?;
            let off = target as i64 - (at as i64 + 1);
            self.insns[at].off = i16::try_from(off).map_err(|_| AsmError::Range(at))?;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(a: Asm) -> Vec<[u8; 8]> {
        a.finish()
            .unwrap()
            .into_iter()
            .map(Insn::to_bytes)
            .collect()
    }

    #[test]
    fn encodes_like_the_kernel_headers() {
        let mut a = Asm::new();
        a.mov64_imm(Reg::R0, 0)
            .mov64(Reg::R6, Reg::R1)
            .ldx(Size::W, Reg::R2, Reg::R6, 40)
            .stx(Size::DW, FP, -8, Reg::R2)
            .st_imm(Size::W, FP, -4, 7)
            .atomic_add64(Reg::R7, 16, Reg::R1)
            .call(Helper::RedirectPeer)
            .be16(Reg::R3)
            .exit();
        assert_eq!(
            bytes(a),
            vec![
                [0xb7, 0x00, 0, 0, 0, 0, 0, 0],
                [0xbf, 0x16, 0, 0, 0, 0, 0, 0],
                [0x61, 0x62, 40, 0, 0, 0, 0, 0],
                [0x7b, 0x2a, 0xf8, 0xff, 0, 0, 0, 0],
                [0x62, 0x0a, 0xfc, 0xff, 7, 0, 0, 0],
                [0xdb, 0x17, 16, 0, 0, 0, 0, 0],
                [0x85, 0x00, 0, 0, 155, 0, 0, 0],
                [0xdc, 0x03, 0, 0, 16, 0, 0, 0],
                [0x95, 0x00, 0, 0, 0, 0, 0, 0],
            ]
        );
    }

    #[test]
    fn map_fd_load_takes_two_slots() {
        let mut a = Asm::new();
        a.ld_map_fd(Reg::R1, 5);
        assert_eq!(bytes(a), vec![[0x18, 0x11, 0, 0, 5, 0, 0, 0], [0; 8]]);
    }

    #[test]
    fn jumps_resolve_forward_and_backward() {
        let mut a = Asm::new();
        let (top, end) = (a.label(), a.label());
        a.bind(top)
            .jmp_imm(Cond::Eq, Reg::R0, 0, end)
            .mov64_imm(Reg::R0, 1)
            .ja(top)
            .bind(end)
            .exit();
        let p = a.finish().unwrap();
        assert_eq!(p[0].off, 2);
        assert_eq!(p[2].off, -3);
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut a = Asm::new();
        let l = a.label();
        a.ja(l);
        assert_eq!(a.finish(), Err(AsmError::Unbound(0)));
    }
}
