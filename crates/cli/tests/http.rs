//! `/healthz`, `/readyz` and `/metrics` of a real `run` against the real Docker engine and a
//! PostgreSQL server of the test's own, which the test stops and starts again: ready, then not
//! ready while the database is gone (healthy all along), then ready again; a client that never
//! sends its request does not keep the endpoints from answering others; durations are
//! histograms with buckets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::pgserver::PgServer;
use common::*;
use serde_json::Value;

/// The status code and body of `GET path` on `addr`, or `None` when nothing answers.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let code = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n")?.1.to_owned();
    Some((code, body))
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A strict check of the text exposition format (what `promtool check metrics` checks of it,
/// where promtool is not installed; when it is, it runs too): every sample belongs to a family
/// with one `# HELP` and one `# TYPE` before its samples, names and labels are well formed,
/// values are numbers, and every histogram series has ascending `le` buckets with cumulative
/// counts, a `+Inf` bucket equal to its `_count`, and a `_sum`.
fn check_exposition(text: &str) {
    use std::collections::{BTreeMap, BTreeSet};
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    /// One histogram series: its buckets (bound, count), its `_count`, whether it has a `_sum`.
    type Series = (Vec<(f64, f64)>, Option<f64>, bool);
    // Histogram series by name and labels without `le`.
    let mut histograms: BTreeMap<String, Series> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            assert!(name_ok(name), "bad HELP line: {line}");
            assert!(helps.insert(name.to_owned()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (name, kind) = (
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
            );
            assert!(name_ok(name), "bad TYPE line: {line}");
            assert!(
                matches!(
                    kind,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ),
                "bad type: {line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#'),
            "a comment that is neither HELP nor TYPE: {line}"
        );
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (
                name,
                labels
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}")),
            ),
            None => (series, ""),
        };
        assert!(name_ok(name), "bad metric name: {line}");
        let mut le = None;
        let mut other = Vec::new();
        if !labels.is_empty() {
            for pair in labels.split(',') {
                let (key, val) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(name_ok(key) && !key.contains(':'), "bad label name: {line}");
                assert!(
                    val.starts_with('"') && val.ends_with('"') && val.len() >= 2,
                    "unquoted label value: {line}"
                );
                if key == "le" {
                    le = Some(val.trim_matches('"').to_owned());
                } else {
                    other.push(pair.to_owned());
                }
            }
        }
        let family = ["_bucket", "_count", "_sum", "_total"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.contains_key(*base))
            })
            .unwrap_or(name);
        let kind = types
            .get(family)
            .or_else(|| types.get(name))
            .unwrap_or_else(|| panic!("a sample before its TYPE: {line}"));
        assert!(
            helps.contains(family) || helps.contains(name),
            "no HELP for {line}"
        );
        if kind == "histogram" {
            let key = format!("{family}{{{}}}", other.join(","));
            let entry = histograms.entry(key).or_default();
            if name.ends_with("_bucket") {
                let le = le.unwrap_or_else(|| panic!("a bucket without le: {line}"));
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or_else(|_| panic!("bad le: {line}"))
                };
                entry.0.push((bound, value));
            } else if name.ends_with("_count") {
                entry.1 = Some(value);
            } else if name.ends_with("_sum") {
                entry.2 = true;
            } else {
                panic!("a histogram sample that is no bucket, count or sum: {line}");
            }
        }
    }
    assert!(!histograms.is_empty(), "no histogram in:\n{text}");
    for (series, (buckets, count, sum)) in &histograms {
        assert!(
            buckets.windows(2).all(|w| w[0].0 < w[1].0),
            "{series}: le not ascending"
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{series}: counts not cumulative"
        );
        assert_eq!(
            buckets.last().map(|b| b.0),
            Some(f64::INFINITY),
            "{series}: no +Inf bucket"
        );
        assert_eq!(
            buckets.last().map(|b| b.1),
            *count,
            "{series}: +Inf bucket is not _count"
        );
        assert!(sum, "{series}: no _sum");
    }
    if Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("exposition sent");
        let out = child.wait_with_output().expect("promtool ends");
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn health_and_readiness_follow_the_database() {
    let Some(fleet) = Fleet::new() else { return };
    let Some(mut server) = PgServer::start(|_| {}) else {
        return;
    };
    let fleet = fleet.with_database(server.url("?connect_timeout=2"));
    assert_success(&output(&mut fleet.db_command(&["migrate"])), "migrate");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = fleet.scratch.path.join("run.log");
    let child = fleet
        .command(&[
            "run",
            "--http-addr",
            &addr,
            "--reconcile-interval=1s",
            "--retry-backoff=200ms",
        ])
        .env("BACKEND_RUNTIME_DATABASE_QUERY_TIMEOUT", "2s")
        .env("BACKEND_RUNTIME_DATABASE_CONNECT_TIMEOUT", "2s")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("run starts");
    let mut run = Running(child);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    wait_until("run is ready", Duration::from_secs(30), || {
        get(&addr, "/readyz").is_some_and(|(code, _)| code == 200)
    });
    let (code, body) = get(&addr, "/readyz").expect("readyz answers");
    assert_eq!(code, 200, "{body}");
    let ready = json(&body);
    assert_eq!(ready["role"], "leader", "{body}");
    assert_eq!(ready["last_pass"]["result"], "ok", "{body}");
    let (code, body) = get(&addr, "/healthz").expect("healthz answers");
    assert_eq!(
        (code, json(&body)["running"].clone()),
        (200, Value::Bool(true))
    );

    // A client that connects and never sends its request holds one connection, not the
    // listener: the others are answered while it waits.
    let mut slow = TcpStream::connect(&addr).expect("the slow client connects");
    slow.write_all(b"GET /metr").expect("a partial request");
    let (code, exposition) = get(&addr, "/metrics").expect("metrics answer beside a slow client");
    assert_eq!(code, 200);
    assert!(
        exposition.contains("galaxy_runtime_pass_duration_seconds_bucket{")
            && exposition.contains("le=\"+Inf\"")
            && exposition.contains("galaxy_runtime_probe_duration_seconds_bucket{"),
        "durations are histograms with buckets:\n{exposition}"
    );
    assert!(
        !exposition.contains("quantile="),
        "no summaries:\n{exposition}"
    );
    check_exposition(&exposition);
    assert!(
        get(&addr, "/readyz").is_some(),
        "readyz answers beside a slow client"
    );
    // The slow client is cut off after the header timeout.
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout set");
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let cut = String::from_utf8_lossy(&rest);
    assert!(
        cut.is_empty() || cut.starts_with("HTTP/1.1 408"),
        "the slow client gets nothing or a timeout: {cut}"
    );

    server.stop();
    wait_until(
        "readyz says 503 while the database is gone",
        Duration::from_secs(30),
        || get(&addr, "/readyz").is_some_and(|(code, _)| code == 503),
    );
    let (_, body) = get(&addr, "/readyz").expect("readyz answers");
    let unready = json(&body);
    assert_eq!(unready["ready"], false, "{body}");
    assert!(unready["last_error"]["error"].is_string(), "{body}");
    let (code, _) = get(&addr, "/healthz").expect("healthz answers");
    assert_eq!(code, 200, "the loop still runs:\n{}", log_text());

    server.resume();
    wait_until(
        "readyz says 200 once the database is back",
        Duration::from_secs(60),
        || get(&addr, "/readyz").is_some_and(|(code, _)| code == 200),
    );
    assert_eq!(
        get(&addr, "/nope").map(|(code, _)| code),
        Some(404),
        "unknown paths are 404"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &run.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = wait_exit(&mut run.0, Duration::from_secs(30));
    assert!(
        status.success(),
        "run exited with {status}:\n{}",
        log_text()
    );
}
