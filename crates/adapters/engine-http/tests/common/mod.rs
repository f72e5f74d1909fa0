//! A real HTTP/1.1 server on 127.0.0.1 for the engine adapter's tests: a raw tokio
//! `TcpListener` writing canned answers, so that every misbehaviour (slow headers, a body that
//! never ends, a redirect) is exactly what the test asks for.

#![allow(dead_code)] // each test binary uses its own part of the helpers

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use galaxy_runtime_ports::PortResult;
use galaxy_runtime_testkit::engine::{EngineBehaviour, EngineFixture};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the server answers to every request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// One of the conformance suite's behaviours.
    Engine(EngineBehaviour),
    /// `302 Found` to this location.
    RedirectTo(String),
    /// `200 OK`, chunked, a body that never ends.
    EndlessChunked,
    /// This JSON after this delay, the connection kept open for more requests.
    LateJson(std::time::Duration, Value),
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    connections: AtomicUsize,
    open: AtomicUsize,
    requests: AtomicUsize,
    closing_requests: AtomicUsize,
    paths: Mutex<Vec<String>>,
}

impl Seen {
    /// Connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Connections accepted and not closed yet (by either end).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Requests read.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests that asked for `Connection: close`.
    pub fn closing_requests(&self) -> usize {
        self.closing_requests.load(Ordering::SeqCst)
    }

    /// The request targets, in order.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// A running server; stops (with every connection it holds) when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// What it saw.
    pub seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a server answering `reply` to every request.
    pub async fn start(reply: Reply) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test server on 127.0.0.1");
        let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
        let seen = Arc::new(Seen::default());
        let task = tokio::spawn(serve(listener, reply, Arc::clone(&seen)));
        TestServer {
            endpoint,
            seen,
            task,
        }
    }
}

/// An endpoint where nothing listens: a port that was just bound and released.
pub async fn refused_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a throwaway port");
    let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
    drop(listener);
    endpoint
}

async fn serve(listener: TcpListener, reply: Reply, seen: Arc<Seen>) {
    // Connections live in the accept task's JoinSet, so aborting the server ends them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { return };
                seen.connections.fetch_add(1, Ordering::SeqCst);
                seen.open.fetch_add(1, Ordering::SeqCst);
                let seen = Arc::clone(&seen);
                let reply = reply.clone();
                connections.spawn(async move {
                    connection(stream, reply, Arc::clone(&seen)).await;
                    seen.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(mut stream: TcpStream, reply: Reply, seen: Arc<Seen>) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        if let Ok(mut paths) = seen.paths.lock() {
            paths.push(path);
        }
        seen.requests.fetch_add(1, Ordering::SeqCst);
        if head
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n")
        {
            seen.closing_requests.fetch_add(1, Ordering::SeqCst);
        }
        // Write errors mean the client went away (as it should after a failure): stop quietly.
        match answer(&mut stream, &reply).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
    }
}

/// Writes the answer; `Ok(true)` when the connection may serve another request.
async fn answer(stream: &mut TcpStream, reply: &Reply) -> std::io::Result<bool> {
    match reply {
        Reply::Engine(EngineBehaviour::Json(value)) => {
            write_json(stream, value).await?;
            Ok(true)
        }
        Reply::Engine(EngineBehaviour::Status(code, body)) => {
            let head = format!(
                "HTTP/1.1 {code} Test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            Ok(false)
        }
        Reply::Engine(EngineBehaviour::NotJson) => {
            // Control characters that a careless message would pass on to a terminal or a log.
            let body = "<html>\x1b[31mnot json\r\nFAKE LOG LINE</html>";
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            Ok(true)
        }
        Reply::Engine(EngineBehaviour::SlowHeaders(delay)) => {
            tokio::time::sleep(*delay).await;
            write_json(stream, &serde_json::json!({"turn": 1})).await?;
            Ok(false)
        }
        Reply::Engine(EngineBehaviour::SlowBody(delay)) => {
            let body = br#"{"turn": 1, "engine": "slow"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body[..10]).await?;
            stream.flush().await?;
            tokio::time::sleep(*delay).await;
            stream.write_all(&body[10..]).await?;
            Ok(false)
        }
        Reply::Engine(EngineBehaviour::Oversized(bytes)) => {
            // Valid JSON of exactly `bytes` bytes: only its size is wrong.
            let padding = bytes.saturating_sub(r#"{"pad":""}"#.len());
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                padding + 10
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(br#"{"pad":""#).await?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = padding;
            while left > 0 {
                let n = left.min(chunk.len());
                stream.write_all(&chunk[..n]).await?;
                left -= n;
            }
            stream.write_all(br#""}"#).await?;
            Ok(false)
        }
        // The fixture turns the suite's redirect into `RedirectTo` a JSON server; on its own it
        // points to another path of this server.
        Reply::Engine(EngineBehaviour::Redirect) => write_redirect(stream, "/elsewhere").await,
        Reply::RedirectTo(location) => write_redirect(stream, location).await,
        Reply::EndlessChunked => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
            chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
            chunk.extend_from_slice(b"\r\n");
            loop {
                stream.write_all(&chunk).await?;
            }
        }
        Reply::LateJson(delay, value) => {
            tokio::time::sleep(*delay).await;
            write_json(stream, value).await?;
            Ok(true)
        }
        Reply::Engine(EngineBehaviour::Refused) => Ok(false),
    }
}

async fn write_json(stream: &mut TcpStream, value: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await
}

async fn write_redirect(stream: &mut TcpStream, location: &str) -> std::io::Result<bool> {
    let head = format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    Ok(true)
}

/// The conformance suite's fixture: one fresh server per behaviour, kept until the fixture is
/// dropped.
#[derive(Default)]
pub struct ServerFixture {
    servers: Mutex<Vec<TestServer>>,
}

impl ServerFixture {
    fn keep(&self, server: TestServer) {
        if let Ok(mut servers) = self.servers.lock() {
            servers.push(server);
        }
    }
}

#[async_trait]
impl EngineFixture for ServerFixture {
    async fn serve(&self, behaviour: EngineBehaviour) -> PortResult<String> {
        let reply = match behaviour {
            EngineBehaviour::Refused => return Ok(refused_endpoint().await),
            EngineBehaviour::Redirect => {
                let target = TestServer::start(Reply::Engine(EngineBehaviour::Json(
                    serde_json::json!({"redirected": true}),
                )))
                .await;
                let location = format!("{}/status", target.endpoint);
                self.keep(target);
                Reply::RedirectTo(location)
            }
            other => Reply::Engine(other),
        };
        let server = TestServer::start(reply).await;
        let endpoint = server.endpoint.clone();
        self.keep(server);
        Ok(endpoint)
    }
}
