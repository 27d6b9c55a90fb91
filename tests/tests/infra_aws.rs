//! `infra/aws` applied for real — to moto: `terraform init` from the local provider mirror,
//! `validate`, `apply` with the real function binaries zipped as Lambda packages, a second
//! `plan` that must be empty, every resource checked through boto3, `destroy`
//! (`scripts/tf-moto-apply.sh` does the work; this test gives it a fresh moto and the zips).
//!
//! Needs Terraform and the `hashicorp/aws` provider mirror (`/opt/tf-plugins`, or
//! `TF_PLUGIN_DIR`): without them this test fails and says so, it does not skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use rrstitch_tests::{bins, repo_root, Moto};

/// A Lambda package: the binary as `bootstrap` (what provided.al2023 runs), zipped.
fn lambda_zip(binary: &str, dir: &Path) -> PathBuf {
    let zip = dir.join(format!("{binary}.zip"));
    let status = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   info = zipfile.ZipInfo('bootstrap')\n\
             \x20   info.external_attr = 0o755 << 16\n\
             \x20   z.writestr(info, open(sys.argv[1], 'rb').read())",
        ])
        .arg(bins::path(binary))
        .arg(&zip)
        .status()
        .unwrap();
    assert!(status.success(), "zipping {binary}");
    zip
}

#[test]
fn aws_stack_applies_to_moto_checks_out_and_destroys() {
    let plugins = std::env::var("TF_PLUGIN_DIR").unwrap_or_else(|_| "/opt/tf-plugins".into());
    assert!(
        Command::new("terraform")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "terraform is not installed: infra/aws cannot be proven here (install Terraform >= 1.5)"
    );
    assert!(
        Path::new(&plugins)
            .join("registry.terraform.io/hashicorp/aws")
            .is_dir(),
        "no hashicorp/aws provider mirror under {plugins}: set TF_PLUGIN_DIR"
    );
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    // The packages `make package` builds (cargo lambda) when they are there, else the
    // workspace's own binaries zipped the same way (a cold cargo-lambda build is minutes).
    let package = |bin: &str| {
        let built = repo_root().join(format!("target/lambda/{bin}/bootstrap.zip"));
        if built.is_file() {
            println!("using {}", built.display());
            built
        } else {
            lambda_zip(bin, dir.path())
        }
    };
    let ingest = package("rrstitch-ingest");
    let finalize = package("rrstitch-finalize");
    let python = repo_root().join(".build/venv/bin/python");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/tf-moto-apply.sh"))
        .env("MOTO_ENDPOINT", &moto.endpoint)
        .env("INGEST_ZIP", &ingest)
        .env("FINALIZE_ZIP", &finalize)
        .env("TF_PLUGIN_DIR", &plugins)
        .env("PYTHON", &python)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(!stdout.contains("FAIL "), "{stdout}");
    let checks = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    println!("FIGURE infra.aws_checks_passed: {checks}");
    assert!(checks >= 30, "{stdout}");
}
