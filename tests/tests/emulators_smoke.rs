//! The emulators start, serve, and stop with their whole process group.

use rrstitch_tests::procs::{group_alive, port_open};
use rrstitch_tests::{FakeGcs, Firestore, Moto};

#[test]
fn fake_gcs_stores_objects() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("smoke");
    gcs.upload("smoke", "a b+c.json", b"{\"x\":1}");
    assert_eq!(
        gcs.download("smoke", "a b+c.json").as_deref(),
        Some(&b"{\"x\":1}"[..])
    );
    assert_eq!(gcs.download("smoke", "missing.json"), None);
    let port = gcs.port;
    drop(gcs);
    assert!(
        !port_open(port),
        "fake-gcs-server still listening after drop"
    );
}

#[test]
fn moto_stores_objects() {
    let moto = Moto::start();
    moto.create_bucket("smoke");
    assert!(moto.state().contains("smoke"), "moto knows the new bucket");
    let port = moto.port;
    drop(moto);
    assert!(!port_open(port), "moto still listening after drop");
}

#[test]
fn firestore_emulator_serves_and_its_jvm_dies_with_it() {
    let fs = Firestore::start();
    let url = format!(
        "http://{}/v1/projects/{}/databases/(default)/documents/smoke?documentId=d",
        fs.host, fs.project
    );
    ureq::post(&url)
        .send_json(ureq::json!({"fields": {"a": {"stringValue": "x"}}}))
        .expect("create a document");
    let got: serde_json::Value = ureq::get(&format!(
        "http://{}/v1/projects/{}/databases/(default)/documents/smoke/d",
        fs.host, fs.project
    ))
    .call()
    .unwrap()
    .into_json()
    .unwrap();
    assert_eq!(got["fields"]["a"]["stringValue"], "x");
    let (port, pgid) = (fs.port, fs.group.pid() as libc::pid_t);
    drop(fs);
    assert!(
        !port_open(port),
        "Firestore emulator still listening after drop"
    );
    assert!(
        !group_alive(pgid),
        "a process of the emulator's group survived"
    );
}
