//! Certificates made with openssl for the tests of TLS (to PostgreSQL, to a Docker daemon): a
//! CA, and certificates it signs, each a `.crt` and a `.key` in a directory of the test's.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `openssl ARGS` in `dir`; a panic showing its error unless it succeeds.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.crt`, `NAME-ca.key`) in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.crt"),
        ],
    );
}

/// A certificate `NAME.crt`/`NAME.key` for `cn`, with `san` (or none), signed by the CA `ca`.
pub fn make_cert(dir: &Path, ca: &str, name: &str, cn: &str, san: Option<&str>) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        match san {
            Some(san) => format!("subjectAltName={san}\n"),
            None => "basicConstraints=CA:FALSE\n".to_owned(),
        },
    )
    .expect("extensions written");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-days",
            "2",
            "-CA",
            &format!("{ca}-ca.crt"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.crt"),
        ],
    );
}
