//! Interface name validation, done before any syscall so a bad name gets a
//! precise message instead of a bare EINVAL from the kernel.

use super::PortError;

/// Checks `name` against the kernel's rules for a netdev name
/// (`dev_valid_name`), plus no '%': the kernel treats it as a template and
/// would pick a different name than the one asked for.
pub(crate) fn validate(name: &str) -> Result<(), PortError> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name.len() >= libc::IFNAMSIZ {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are reserved")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains(':') {
        Some("contains ':' (alias syntax)")
    } else if name.contains('%') {
        Some("contains '%' (a name template)")
    } else if name.chars().any(|c| c.is_whitespace() || c == '\0') {
        Some("contains whitespace or NUL")
    } else {
        None
    };
    match why {
        Some(why) => Err(PortError::InvalidName {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["eth0", "veth-a.10", "tap_vm1", "a", "abcdefghijklmno"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        for bad in [
            "",
            "abcdefghijklmnop",
            ".",
            "..",
            "a/b",
            "a b",
            "a\tb",
            "eth0:1",
            "tap%d",
            "a\0",
        ] {
            assert!(
                matches!(validate(bad), Err(PortError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }
}
