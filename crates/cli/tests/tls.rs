//! TLS to PostgreSQL against a real server of the test's own started with `ssl = on`, with
//! certificates the test makes with openssl, and plaintext refused by its `pg_hba.conf` (so
//! that every connection that works went over TLS): the right CA connects (`verify-full` by
//! name, `verify-ca` by address), a wrong CA or a wrong host is one clear line and exit 1, a
//! client certificate authenticates, and the password comes from a file.

mod common;

use std::process::{Command, Output};

use common::certs::{make_ca, make_cert};
use common::pgserver::PgServer;
use common::*;

const PASSWORD: &str = "tls/pass?word";

#[test]
fn tls_to_postgres_accepts_the_right_server_and_refuses_the_wrong_one() {
    let certs = Scratch::new();
    let dir = certs.path.clone();
    make_ca(&dir, "right");
    make_ca(&dir, "wrong");
    // The server's certificate names `localhost` only: reached as 127.0.0.1 its name is wrong.
    make_cert(&dir, "right", "server", "localhost", Some("DNS:localhost"));
    make_cert(&dir, "right", "client", "certuser", None);

    let Some(server) = PgServer::start(|data| {
        for file in ["server.crt", "server.key", "right-ca.crt"] {
            std::fs::copy(dir.join(file), data.join(file)).expect("copied");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("key mode");
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        conf.push_str(
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             ssl_ca_file = 'right-ca.crt'\n",
        );
        std::fs::write(data.join("postgresql.conf"), conf).expect("conf written");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all certuser 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             host all all 127.0.0.1/32 reject\n\
             host all all ::1/128 reject\n",
        )
        .expect("pg_hba written");
    }) else {
        return;
    };
    // Roles, over the Unix socket (trusted).
    let psql = Command::new("psql")
        .args(["-h", server.dir.path.to_str().expect("UTF-8")])
        .args(["-p", &server.port.to_string(), "-U", "postgres", "-d", "postgres", "-qAt"])
        .args(["-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            "CREATE ROLE runtime LOGIN PASSWORD '{PASSWORD}'; CREATE ROLE certuser LOGIN IN ROLE runtime; \
             GRANT ALL ON SCHEMA public TO runtime, certuser;"
        ))
        .output()
        .expect("psql runs");
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );

    let password_file = dir.join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password written");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).expect("mode");
    let ca = |name: &str| dir.join(format!("{name}-ca.crt")).display().to_string();
    let url = |user: &str, host: &str, params: &str| {
        format!(
            "postgres://{user}@{host}:{}/postgres?connect_timeout=5&{params}",
            server.port
        )
    };
    let command = |args: &[&str], url: &str, with_password: bool| -> Output {
        let mut command = bin();
        command.args(args).arg(format!("--database-url={url}"));
        if with_password {
            command.arg(format!(
                "--database-password-file={}",
                password_file.display()
            ));
        }
        output(&mut command)
    };
    let refused = |what: &str, out: &Output, says: &[&str]| {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
        let err = stderr(out);
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
        for word in says {
            assert!(err.contains(word), "{what}: says {word:?}: {err}");
        }
        assert!(!err.contains(PASSWORD), "{what}: {err}");
    };

    // verify-full by the name the certificate holds, the password from its file: migrates.
    let full = url(
        "runtime",
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca("right")),
    );
    assert_success(
        &command(&["migrate"], &full, true),
        "migrate over verify-full",
    );
    assert_success(
        &command(&["status"], &full, true),
        "status over verify-full",
    );
    // verify-ca checks the CA, not the name: the address will do.
    let by_address = url(
        "runtime",
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", ca("right")),
    );
    assert_success(
        &command(&["status"], &by_address, true),
        "status over verify-ca",
    );
    assert_success(
        &command(
            &["status"],
            &url("runtime", "127.0.0.1", "sslmode=require"),
            true,
        ),
        "status over require",
    );
    assert_success(
        &command(&["status"], &url("runtime", "127.0.0.1", ""), true),
        "status with the default sslmode (prefer) over TLS",
    );

    // A wrong host with verify-full, a wrong CA: one clear line, exit 1.
    let wrong_host = url(
        "runtime",
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", ca("right")),
    );
    refused(
        "a wrong host",
        &command(&["status"], &wrong_host, true),
        &[
            "cannot open the database",
            "certificate not valid for name",
            "sslrootcert",
        ],
    );
    let wrong_ca = url(
        "runtime",
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca("wrong")),
    );
    refused(
        "a wrong CA",
        &command(&["status"], &wrong_ca, true),
        &[
            "cannot open the database",
            "invalid peer certificate",
            "sslrootcert",
        ],
    );
    refused(
        "plaintext",
        &command(
            &["status"],
            &url("runtime", "127.0.0.1", "sslmode=disable"),
            true,
        ),
        &["cannot open the database", "pg_hba.conf"],
    );
    std::fs::write(&password_file, "not the password\n").expect("password written");
    refused(
        "a wrong password",
        &command(&["status"], &full, true),
        &["password authentication failed"],
    );

    // A client certificate authenticates certuser, who has no password.
    let with_cert = url(
        "certuser",
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            ca("right"),
            dir.join("client.crt").display(),
            dir.join("client.key").display()
        ),
    );
    assert_success(
        &command(&["status"], &with_cert, false),
        "status with a client certificate",
    );
    refused(
        "no client certificate",
        &command(
            &["status"],
            &url(
                "certuser",
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={}", ca("right")),
            ),
            false,
        ),
        &["cannot open the database"],
    );
}
