//! TLS to a remote Docker daemon (CONTRACT §6), against a real one: a second `dockerd` this
//! test starts with `--tlsverify` on `tcp://127.0.0.1:PORT`, with certificates the test makes
//! with openssl (a CA, the daemon's certificate for 127.0.0.1, a client certificate; and a
//! wrong CA with a client certificate of its own). The command line connects and adopts a game
//! with the right CA and client certificate, as a named host of the file and as the one host of
//! `DOCKER_HOST` with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`; refuses a wrong CA and a
//! wrong client certificate in one line naming the host and the file; and a TLS file that
//! cannot be used is exit status 2 naming the host and the file.
//!
//! It needs root (a bridge is made with `ip`), `dockerd` and `openssl`, as CI has; without
//! Docker at all it fails saying how to start it, unless GALAXY_RUNTIME_SKIP_DOCKER=1. The
//! daemon is stopped by its pid; the machine's daemon is not touched.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::certs::{make_ca, make_cert};
use common::daemon::{Network, SecondDaemon};
use common::*;
use galaxy_runtime_model::GameId;

/// The TLS daemon's bridge and addresses: apart from those of `two_daemons.rs`' second daemon
/// (10.213.0.1/24, 10.214.0.0/16), which may run at the same time, and outside Docker's
/// default pools.
const NETWORK: Network = Network {
    bridge: "br-grt3",
    address: "10.215.0.1/24",
    pool: "10.216.0.0/16",
};

/// A port nobody listens on now, for the daemon's TLS listener.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on the loopback")
        .port()
}

/// The certificates of the test, in `dir`.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(dir: &Path) -> Self {
        make_ca(dir, "right");
        make_ca(dir, "wrong");
        make_cert(dir, "right", "server", "127.0.0.1", Some("IP:127.0.0.1"));
        make_cert(dir, "right", "client", "galaxy-runtime", None);
        make_cert(dir, "wrong", "stranger", "galaxy-runtime", None);
        std::fs::write(dir.join("garbage.pem"), "this is no certificate\n").expect("written");
        Self {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A `DOCKER_CERT_PATH` directory holding `ca.pem`, `cert.pem` and `key.pem`.
    fn cert_path(&self, name: &str, ca: &str, client: &str) -> String {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).expect("a certificate directory");
        for (from, to) in [
            (format!("{ca}-ca.crt"), "ca.pem"),
            (format!("{client}.crt"), "cert.pem"),
            (format!("{client}.key"), "key.pem"),
        ] {
            std::fs::copy(self.dir.join(from), dir.join(to)).expect("copied");
        }
        dir.display().to_string()
    }
}

/// A configuration file naming the TLS daemon `tls` with these TLS settings (`KEY = "PATH"`
/// lines).
fn hosts_file(dir: &Path, name: &str, url: &str, tls: &[(&str, String)]) -> String {
    let mut text = format!("[[docker.hosts]]\nname = \"tls\"\nurl = \"{url}\"\n");
    for (key, path) in tls {
        text.push_str(&format!("{key} = \"{path}\"\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("config file written");
    path.display().to_string()
}

/// The last line of standard error: the command's error.
fn error_line(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn a_tls_daemon_is_reached_with_the_right_certificates_and_refused_with_wrong_ones() {
    let Some(fleet) = Fleet::new() else { return };
    let certs = Certs::make(&fleet.scratch.path);
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let daemon = SecondDaemon::start_with(
        NETWORK,
        vec![
            "--host".to_owned(),
            url.clone(),
            "--tlsverify".to_owned(),
            format!("--tlscacert={}", certs.path("right-ca.crt")),
            format!("--tlscert={}", certs.path("server.crt")),
            format!("--tlskey={}", certs.path("server.key")),
        ],
    );
    daemon.load_image();
    daemon.docker_ok(&["network", "create", &fleet.network]);
    let game = GameId::new_random();
    assert_success(
        &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
        "games add",
    );
    let container = daemon.start_engine(&fleet, game);

    let right = [
        ("tls_ca", certs.path("right-ca.crt")),
        ("tls_cert", certs.path("client.crt")),
        ("tls_key", certs.path("client.key")),
    ];
    let with = |name: &str, tls: &[(&str, String)]| {
        let file = hosts_file(&fleet.scratch.path, name, &url, tls);
        output(
            fleet
                .command(&["reconcile", "--once", "--format=json"])
                .arg(format!("--config={file}")),
        )
    };

    // The right CA and client certificate: the game on the TLS daemon is adopted there.
    let out = with("right.toml", &right);
    assert_success(&out, "reconcile --once on the TLS daemon");
    let record = record_of(&fleet, game);
    assert_eq!(record["docker_host"], "tls", "{}", stdout(&out));
    assert_eq!(record["current_container_id"], container);
    assert_eq!(record["status"], "running");

    // The one host of DOCKER_HOST, with the files of DOCKER_CERT_PATH as the Docker CLI
    // reads them: it lists the container.
    let cert_path = certs.cert_path("docker-cli", "right", "client");
    let out = output(
        fleet
            .command(&["observe"])
            .env("DOCKER_HOST", &url)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &cert_path),
    );
    assert_success(
        &out,
        "observe through DOCKER_TLS_VERIFY and DOCKER_CERT_PATH",
    );
    let observed = json(&out);
    assert!(
        observed["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == container.as_str()),
        "{observed:#}"
    );

    // A wrong CA: the daemon's certificate is not trusted, in one line naming the host and
    // the CA file; its record is left alone (the host is unobserved).
    let mut wrong_ca = right.clone();
    wrong_ca[0].1 = certs.path("wrong-ca.crt");
    let out = with("wrong-ca.toml", &wrong_ca);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.contains("\"tls\""), "names the host: {}", stderr(&out));
    assert!(
        line.contains(&format!(
            "not signed by the CA in tls_ca {}",
            certs.path("wrong-ca.crt")
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!(
            "Docker host \"tls\" cannot be used yet: unavailable: Docker daemon at {url}: TLS: \
             the daemon's certificate is not signed by the CA in tls_ca {}",
            certs.path("wrong-ca.crt")
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(record_of(&fleet, game)["status"], "running");

    // The same for the one host of DOCKER_HOST: exit 1, one line, no advice to start Docker.
    let out = output(
        fleet
            .command(&["reconcile", "--once"])
            .env("DOCKER_HOST", &url)
            .env("DOCKER_TLS_VERIFY", "1")
            .env(
                "DOCKER_CERT_PATH",
                certs.cert_path("wrong-ca", "wrong", "client"),
            ),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    assert!(
        text.contains(&format!("Docker daemon at {url} (DOCKER_HOST): TLS:")),
        "{text}"
    );
    assert!(text.contains("not signed by the CA in tls_ca"), "{text}");
    assert!(!text.contains("Start the daemon"), "{text}");

    // A client certificate of another CA: the daemon refuses it, and the line names it.
    let stranger = [
        right[0].clone(),
        ("tls_cert", certs.path("stranger.crt")),
        ("tls_key", certs.path("stranger.key")),
    ];
    let out = with("stranger.toml", &stranger);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.contains("\"tls\""), "names the host: {}", stderr(&out));
    assert!(
        line.contains(&format!(
            "refused the client certificate in tls_cert {}",
            certs.path("stranger.crt")
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(record_of(&fleet, game)["status"], "running");

    // TLS files that cannot be used: exit 2 before anything is done, naming host and file.
    let missing = certs.path("no-such-key.pem");
    for (name, tls, says) in [
        (
            "unreadable.toml",
            vec![
                right[0].clone(),
                right[1].clone(),
                ("tls_key", missing.clone()),
            ],
            format!("tls_key {missing} cannot be read: No such file or directory"),
        ),
        (
            "garbage.toml",
            vec![
                ("tls_ca", certs.path("garbage.pem")),
                right[1].clone(),
                right[2].clone(),
            ],
            format!(
                "tls_ca {} holds no PEM certificate",
                certs.path("garbage.pem")
            ),
        ),
        (
            "key-alone.toml",
            vec![right[2].clone()],
            "tls_ca and tls_cert not set".to_owned(),
        ),
        (
            "mismatch.toml",
            vec![
                right[0].clone(),
                right[1].clone(),
                ("tls_key", certs.path("stranger.key")),
            ],
            format!(
                "tls_key {} is not the key of the certificate in tls_cert {}",
                certs.path("stranger.key"),
                certs.path("client.crt")
            ),
        ),
    ] {
        let out = with(name, &tls);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let text = stderr(&out);
        assert_eq!(text.trim().lines().count(), 1, "{name}: one line: {text}");
        assert!(text.contains("Docker host \"tls\""), "{name}: {text}");
        assert!(text.contains(&says), "{name}: {text}");
    }
}
