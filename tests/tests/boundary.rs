//! The line between the core and the hosting is a crate boundary, and stays one: the core
//! (`rrstitch`) names none of the hosting crates among its own dependencies, and built without
//! the cloud adapters (whose SDK clients bring an HTTP client of their own) none of them is
//! anywhere in its tree. The edge (`rrstitch-edge`) is where they belong.

use std::process::Command;

/// Crates that serve HTTP, decode platform events or install log subscribers: hosting.
const HOSTING: &[&str] = &[
    "axum",
    "hyper",
    "hyper-util",
    "cloudevents-sdk",
    "tracing-subscriber",
];

/// The crate names `cargo tree` prints for `package` with `args`, one per line.
fn tree(package: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn hosting_in(crates: &[String]) -> Vec<&String> {
    crates
        .iter()
        .filter(|c| HOSTING.contains(&c.as_str()))
        .collect()
}

#[test]
fn the_core_names_no_hosting_crate_among_its_dependencies() {
    let direct = tree("rrstitch", &["--depth", "1"]);
    assert!(direct.iter().any(|c| c == "rrstitch-engine"), "{direct:?}");
    assert_eq!(hosting_in(&direct), Vec::<&String>::new());
}

#[test]
fn without_the_cloud_adapters_no_hosting_crate_is_anywhere_in_the_core() {
    let all = tree("rrstitch", &["--no-default-features"]);
    assert!(all.iter().any(|c| c == "rusqlite"), "{all:?}");
    assert_eq!(hosting_in(&all), Vec::<&String>::new());
}

#[test]
fn the_edge_is_where_hosting_lives() {
    let direct = tree("rrstitch-edge", &["--depth", "1"]);
    for name in [
        "axum",
        "hyper",
        "cloudevents-sdk",
        "tracing-subscriber",
        "rrstitch",
    ] {
        assert!(direct.iter().any(|c| c == name), "{name} not in {direct:?}");
    }
}
