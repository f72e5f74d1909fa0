//! The engine client's connections, bounded per engine and in all.
//!
//! hyper-util's pool bounds idle connections per host only: probing 10 000 engines would keep
//! 10 000 sockets open between passes, against a file limit that is often 1 024. So each
//! engine allowed to keep connections gets a client (and a pool) of its own, bounded per
//! engine, and only [`EngineHttpConfig::pooled_engines`] engines are allowed at once: the
//! others are probed through a client without a pool, with `Connection: close`, and their
//! socket closes with the answer. An engine that goes unprobed for the idle timeout gives its
//! place up, and dropping its client closes its idle connections at once, so the bound holds
//! exactly rather than once hyper-util's reaper gets round to them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::EngineHttpConfig;

/// The HTTP client of one engine, or of all the engines that keep no connection.
pub(crate) type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Which client a probe goes through.
pub(crate) enum Route {
    /// The engine's own pooled client: the connection may stay open for the next probe.
    Pooled(HttpClient),
    /// The shared client without a pool: the request asks for `Connection: close`.
    Closing(HttpClient),
}

/// The pooled engines' clients and the shared one without a pool.
pub(crate) struct Pools {
    connector: HttpConnector,
    closing: HttpClient,
    idle_timeout: Duration,
    idle_per_engine: usize,
    pooled_engines: usize,
    pooled: Mutex<Pooled>,
}

/// The engines allowed to keep idle connections, by authority (`host:port`).
#[derive(Default)]
struct Pooled {
    clients: HashMap<String, Slot>,
    /// No engine's place expires before this instant, so a full table is swept only once it
    /// has passed (`None`: sweep at the next need).
    next_expiry: Option<Instant>,
}

struct Slot {
    client: HttpClient,
    last_used: Instant,
}

impl Pools {
    /// Empty pools for these settings; does no I/O.
    pub(crate) fn new(config: &EngineHttpConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let closing = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector.clone());
        Self {
            connector,
            closing,
            idle_timeout: config.idle_timeout,
            idle_per_engine: config.idle_per_engine(),
            pooled_engines: config.pooled_engines(),
            pooled: Mutex::new(Pooled::default()),
        }
    }

    /// The client for a probe of the engine at `authority`: its pooled client when it has a
    /// place or one is free, else the shared client without a pool.
    pub(crate) fn route(&self, authority: &str) -> Route {
        if self.pooled_engines == 0 {
            return Route::Closing(self.closing.clone());
        }
        let now = Instant::now();
        // The table is a cache of clients: one left half-updated by a panic elsewhere is still
        // a valid table, so a poisoned lock is used as it is.
        let mut pooled = self.pooled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = pooled.clients.get_mut(authority) {
            slot.last_used = now;
            return Route::Pooled(slot.client.clone());
        }
        if pooled.clients.len() >= self.pooled_engines {
            pooled.expire(now, self.idle_timeout);
            if pooled.clients.len() >= self.pooled_engines {
                return Route::Closing(self.closing.clone());
            }
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(self.idle_timeout)
            .pool_max_idle_per_host(self.idle_per_engine)
            .build(self.connector.clone());
        pooled.clients.insert(
            authority.to_owned(),
            Slot {
                client: client.clone(),
                last_used: now,
            },
        );
        Route::Pooled(client)
    }

    /// How many engines hold a place in the pool now.
    pub(crate) fn pooled_engines(&self) -> usize {
        self.pooled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clients
            .len()
    }
}

impl Pooled {
    /// Drops the places of the engines not probed for `idle_timeout`: their idle connections
    /// have expired (or are about to), and dropping the client closes them now.
    fn expire(&mut self, now: Instant, idle_timeout: Duration) {
        if self.next_expiry.is_some_and(|at| now < at) {
            return;
        }
        self.clients
            .retain(|_, slot| now.saturating_duration_since(slot.last_used) < idle_timeout);
        // A place used since the last sweep expires later than computed then: the instant is a
        // lower bound, and sweeping early only finds nothing to drop.
        self.next_expiry = self
            .clients
            .values()
            .filter_map(|slot| slot.last_used.checked_add(idle_timeout))
            .min();
    }
}
