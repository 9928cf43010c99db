//! The presets against SPEC §6, the switch registry, protocol files and overrides.

use super::*;

#[test]
fn presets_match_spec_table() {
    // SPEC §6, one row per switch: pre, v2, merged, fixes-2022, rcu-hash-2023, fixes-2025.
    let rows: &[(&str, [&str; 6])] = &[
        (
            "direct_is_ipmodify",
            ["true", "false", "false", "false", "false", "false"],
        ),
        (
            "direct_meets_ipmodify",
            ["busy", "eagain", "self", "self", "self", "self"],
        ),
        (
            "peer_scan",
            [
                "none",
                "stop-at-sharing",
                "first-referencing",
                "first-referencing",
                "first-referencing",
                "first-referencing",
            ],
        ),
        (
            "register_takes_direct_mutex",
            [
                "ipmodify-only",
                "ipmodify-only",
                "always",
                "always",
                "always",
                "always",
            ],
        ),
        (
            "cleanup_after_ipmodify",
            ["false", "false", "true", "true", "true", "true"],
        ),
        (
            "modify_checks_ipmodify",
            ["false", "false", "false", "false", "false", "true"],
        ),
        (
            "direct_register_failure",
            [
                "remove-entries",
                "remove-entries",
                "remove-entries",
                "remove-entries",
                "leave-entries",
                "reset",
            ],
        ),
        (
            "single_direct_api",
            [
                "locking-modify",
                "locking-modify",
                "locking-modify",
                "nolock-modify",
                "absent",
                "absent",
            ],
        ),
        (
            "bpf_direct_api",
            ["single", "multi", "multi", "multi", "multi", "multi"],
        ),
        (
            "bpf_share_state",
            [
                "none",
                "indirect-bool",
                "tramp-flags",
                "tramp-flags",
                "tramp-flags",
                "tramp-flags",
            ],
        ),
        (
            "bpf_peer_lock",
            [
                "trylock", "trylock", "trylock", "trylock", "trylock", "trylock",
            ],
        ),
        (
            "bpf_filter_reset",
            ["false", "false", "false", "true", "true", "true"],
        ),
        (
            "bpf_checks_set_filter",
            ["false", "false", "false", "false", "false", "true"],
        ),
    ];
    for (i, preset) in KERNEL_PRESETS.iter().enumerate() {
        let p = Protocol::preset(preset).unwrap();
        p.validate().unwrap();
        let sw = p.switches();
        for (name, vals) in rows {
            let got = &sw.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(got, vals[i], "{preset}.{name}");
        }
    }
}

#[test]
fn clean_presets_are_presets() {
    for n in CLEAN_PRESETS {
        assert!(Protocol::preset(n).is_some(), "CLEAN_PRESETS names `{n}`");
    }
}

#[test]
fn debian_trees_against_the_mainline_states() {
    // What `ftsim versions` and README say each Debian tree is.
    let d61 = Protocol::DEBIAN_6_1.diff(&Protocol::FIXES_2022);
    let d612 = Protocol::DEBIAN_6_12.diff(&Protocol::FIXES_2025);
    let s = |v: &[(&str, String)]| -> Vec<String> {
        v.iter().map(|(k, v)| format!("{k}={v}")).collect()
    };
    assert_eq!(
        s(&d61),
        ["modify_checks_ipmodify=true", "match_addr_dedups=true"]
    );
    assert_eq!(
        s(&d612),
        ["match_addr_dedups=true", "bpf_retry_new_image=true"]
    );
    assert_eq!(
        Protocol::DEBIAN_6_1.closest_other_preset("debian-6.1").0,
        "fixes-2022"
    );
    assert_eq!(
        Protocol::DEBIAN_6_12.closest_other_preset("debian-6.12").0,
        "fixes-2025"
    );
}

#[test]
fn mainline_2026_against_debian_6_12() {
    // What `ftsim versions` and README say mainline-2026 is.
    let d: Vec<String> = Protocol::MAINLINE_2026
        .diff(&Protocol::DEBIAN_6_12)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        d,
        [
            "bpf_direct_api=shared-ops",
            "direct_call_source=functions-hash",
            "bpf_unregister_keeps_image=true"
        ]
    );
    assert_eq!(
        Protocol::MAINLINE_2026
            .closest_other_preset("mainline-2026")
            .0,
        "debian-6.12"
    );
    let e = resolve(
        "mainline-2026",
        &[("direct_call_source".into(), "ops".into())],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cannot express"), "{e}");
}

#[test]
fn every_preset_is_valid_and_named() {
    for (n, _) in PRESETS {
        let p = Protocol::preset(n).unwrap();
        p.validate().unwrap();
        assert_eq!(p.preset_name(), Some(*n));
        assert_eq!(p.describe(), *n);
    }
}

#[test]
fn protocol_file_and_errors() {
    let p =
        Protocol::parse_file("base = \"fixes-2025\"\nmodify_checks_ipmodify = false # what if\n")
            .unwrap();
    assert!(!p.modify_checks_ipmodify);
    assert_eq!(p.describe(), "fixes-2025+modify_checks_ipmodify=false");
    assert_eq!(
        Protocol::parse_file("peer_scan = none").unwrap_err(),
        ProtocolError::MissingBase
    );
    let e = Protocol::parse_file("base = merged\nfoo = 1")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2") && e.contains("unknown switch `foo`"),
        "{e}"
    );
    let e = Protocol::parse_file("base = merged\npeer_scan = sideways")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown value `sideways`") && e.contains("first-referencing"),
        "{e}"
    );
    let e = resolve("nope", &[]).unwrap_err().to_string();
    assert!(e.contains("unknown protocol `nope`"), "{e}");
    let e = resolve(
        "rcu-hash-2023",
        &[("bpf_direct_api".into(), "single".into())],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cannot express"), "{e}");
}
