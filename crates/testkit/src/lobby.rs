//! The conformance suite of [`LobbyPort`].
//!
//! [`run_all`] checks what every lobby must do: accept each kind of job result, and accept a
//! repeat of one event (delivery is at-least-once, with the same event id). A lobby that can
//! show what it received (a recording fake, a test double of a host's lobby, a webhook's
//! server) also runs [`delivers_in_order`].

use galaxy_runtime_model::{EventId, GameId, JobResult, LobbyEvent, Op, RuntimeStatus};
use galaxy_runtime_ports::LobbyPort;

use crate::{expect_ok, now_micros};

/// The event of `result` for `game_id`, with a fresh id.
pub fn event(game_id: GameId, result: JobResult) -> LobbyEvent {
    LobbyEvent {
        event_id: EventId::new_random(),
        game_id,
        result,
        at: now_micros(),
    }
}

/// One job result of every op.
fn every_op() -> Vec<JobResult> {
    [Op::Start, Op::Stop, Op::Restart, Op::Patch, Op::Reconcile]
        .into_iter()
        .map(|op| JobResult {
            op,
            status: RuntimeStatus::Running,
            message: format!("testkit {op:?}"),
        })
        .collect()
}

/// Runs every check of this module that needs no view of what the lobby received.
pub async fn run_all(lobby: &dyn LobbyPort) {
    accepts_results(lobby).await;
    accepts_repeats(lobby).await;
}

/// Every kind of job result is accepted.
pub async fn accepts_results(lobby: &dyn LobbyPort) {
    let game_id = GameId::new_random();
    for result in every_op() {
        expect_ok(
            "LobbyPort::on_runtime_job_result: must accept a job result",
            lobby.on_runtime_job_result(&event(game_id, result)).await,
        );
    }
}

/// The same event sent twice (the same id) is accepted both times (at-least-once delivery).
pub async fn accepts_repeats(lobby: &dyn LobbyPort) {
    let once = event(GameId::new_random(), JobResult::container_disappeared());
    for _ in 0..2 {
        expect_ok(
            "LobbyPort::on_runtime_job_result: a repeated event must be harmless",
            lobby.on_runtime_job_result(&once).await,
        );
    }
}

/// What was sent reaches the lobby, for the right game, in order. `received(game_id)` tells
/// what the lobby got for a game so far, oldest first (repeats allowed).
pub async fn delivers_in_order(lobby: &dyn LobbyPort, received: &dyn Fn(GameId) -> Vec<JobResult>) {
    let game_id = GameId::new_random();
    let other = GameId::new_random();
    assert!(
        received(game_id).is_empty(),
        "LobbyPort: a game nothing was sent for must have received nothing"
    );
    let sent = every_op();
    for result in &sent {
        expect_ok(
            "LobbyPort::on_runtime_job_result: must accept a job result",
            lobby
                .on_runtime_job_result(&event(game_id, result.clone()))
                .await,
        );
    }
    expect_ok(
        "LobbyPort::on_runtime_job_result: must accept a job result",
        lobby
            .on_runtime_job_result(&event(other, JobResult::container_disappeared()))
            .await,
    );
    let got = received(game_id);
    let mut want = sent.iter().peekable();
    for result in &got {
        if want.peek() == Some(&result) {
            want.next();
        }
    }
    assert!(
        want.peek().is_none(),
        "LobbyPort: every result must be delivered for its game, in order: sent {sent:?}, \
         received {got:?}"
    );
    assert!(
        got.iter().all(|r| sent.contains(r)),
        "LobbyPort: a game must receive only its own results: received {got:?}"
    );
    assert_eq!(
        received(other),
        vec![JobResult::container_disappeared()],
        "LobbyPort: a game must receive its own results"
    );
}
