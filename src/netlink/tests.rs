//! Error wording and a read-only look at this namespace's loopback.

use super::*;

#[test]
fn kernel_errors_read_like_the_operation() {
    let e = NetlinkError::Kernel {
        what: "create veth pair x <-> y".into(),
        err: io::Error::from_raw_os_error(libc::EEXIST),
        hint: hint(Op::CreateLink, libc::EEXIST),
    };
    assert_eq!(
        e.to_string(),
        "cannot create veth pair x <-> y: File exists (an interface of that name already exists)"
    );
    assert_eq!(e.errno(), Some(libc::EEXIST));
    assert!(!e.is_not_found());
}

#[test]
fn the_same_errno_means_different_things_per_operation() {
    assert_eq!(
        hint(Op::Addr, libc::EEXIST),
        Some("the interface already has that address")
    );
    assert_eq!(
        hint(Op::Query, libc::ENODEV),
        Some("no interface of that name")
    );
    assert_eq!(hint(Op::Query, libc::EBUSY), None);
}

#[test]
fn loopback_is_found_and_a_missing_link_is_none() {
    let mut nl = Rtnl::open().expect("netlink socket");
    let lo = nl.link("lo").unwrap().expect("every namespace has lo");
    assert_eq!(lo.index, 1);
    assert_eq!(lo.kind, None);
    assert_eq!(nl.link("l2sw-no-such-x").unwrap(), None);
    // Several requests on one socket keep their answers apart.
    assert_eq!(nl.ifindex("lo").unwrap(), Some(1));
    let err = nl.rename("l2sw-no-such-x", "y").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot rename link l2sw-no-such-x to y: No such device"),
        "{err}"
    );
}
