//! Replies that may not leave before their writes are durable.
//!
//! The store hands back every answer together with the [`Ticket`] of the effects it submitted to
//! the commit pipeline. The engine wraps that pair as an [`Uncommitted`] value, and the only ways
//! to take the answer out are:
//!
//! - [`Uncommitted::ready`], which gives it only when nothing was written, and
//! - [`Uncommitted::release`], which needs a [`Committed`] proof that covers its ticket. A proof
//!   is made in one place, [`crate::Engine::commit`], after the log has acknowledged the ticket.
//!
//! So an `await` (or a `spawn_blocking`, or a pipeline of fifty requests) placed between applying
//! a write and answering it cannot send the answer early: without the proof there is nothing to
//! send. One proof for the latest ticket releases every answer a pipeline holds.
//!
//! This compiles: the answer is taken out with the proof the engine gives once the write is
//! durable, however many `await`s come between.
//!
//! ```no_run
//! # async fn answer(engine: &kvs_server::Engine, command: kvs_store::Command) -> Option<kvs_store::Reply> {
//! let answer = engine.apply(command);
//! tokio::task::yield_now().await;
//! let proof = engine.commit(answer.ticket()).await.ok()?;
//! answer.release(&proof).ok()
//! # }
//! ```
//!
//! This does not: the same function taking the answer out before the log has acknowledged it.
//!
//! ```compile_fail
//! # async fn answer(engine: &kvs_server::Engine, command: kvs_store::Command) -> Option<kvs_store::Reply> {
//! let answer = engine.apply(command);
//! tokio::task::yield_now().await;
//! Some(answer.value)
//! # }
//! ```

use kvs_store::{Applied, Ticket};

/// An answer whose writes may not be durable yet. See the module documentation.
#[derive(Debug)]
#[must_use = "an answer is sent only once its writes are durable: release it with a Committed proof"]
pub struct Uncommitted<T> {
    value: T,
    ticket: Option<Ticket>,
}

/// Proof that the commit pipeline acknowledged everything up to some ticket, under the fsync
/// policy in force. Only the engine makes one.
#[derive(Debug)]
pub struct Committed {
    covers: Option<Ticket>,
}

impl Committed {
    /// The proof for a wait that had nothing to wait for.
    pub(crate) fn nothing() -> Self {
        Committed { covers: None }
    }

    /// The proof that `ticket` and everything queued before it are acknowledged.
    pub(crate) fn up_to(ticket: Ticket) -> Self {
        Committed {
            covers: Some(ticket),
        }
    }

    fn covers(&self, ticket: Option<Ticket>) -> bool {
        match (ticket, self.covers) {
            (None, _) => true,
            (Some(Ticket::Queued(want)), Some(Ticket::Queued(have))) => want <= have,
            _ => false,
        }
    }
}

impl<T> Uncommitted<T> {
    /// What the store answered, with its ticket.
    pub(crate) fn new(applied: Applied<T>) -> Self {
        Self {
            value: applied.value,
            ticket: applied.ticket,
        }
    }

    /// An answer that wrote nothing (a read, a refused command, a connection command).
    pub fn nothing_written(value: T) -> Self {
        Self {
            value,
            ticket: None,
        }
    }

    /// What must be acknowledged before the answer may be sent; `None` when nothing.
    pub fn ticket(&self) -> Option<Ticket> {
        self.ticket
    }

    /// The answer, to look at (say, to count an error) but never to send before it is released.
    pub(crate) fn peek(&self) -> &T {
        &self.value
    }

    /// Whether the answer reports a write.
    pub fn wrote(&self) -> bool {
        self.ticket.is_some()
    }

    /// Changes the answer (say, a reply into a protocol frame) without releasing it.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Uncommitted<U> {
        Uncommitted {
            value: f(self.value),
            ticket: self.ticket,
        }
    }

    /// Both answers together, waiting for both tickets.
    pub fn and<U>(self, other: Uncommitted<U>) -> Uncommitted<(T, U)> {
        Uncommitted {
            value: (self.value, other.value),
            ticket: Ticket::join(self.ticket, other.ticket),
        }
    }

    /// The answer, if it wrote nothing; itself otherwise.
    pub fn ready(self) -> Result<T, Self> {
        if self.ticket.is_none() {
            Ok(self.value)
        } else {
            Err(self)
        }
    }

    /// The answer, once `proof` covers its ticket; itself if the proof is for an earlier ticket.
    pub fn release(self, proof: &Committed) -> Result<T, Self> {
        if proof.covers(self.ticket) {
            Ok(self.value)
        } else {
            Err(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(n: u64) -> Uncommitted<&'static str> {
        Uncommitted::new(Applied {
            value: "OK",
            ticket: Some(Ticket::Queued(n)),
        })
    }

    #[test]
    fn a_written_answer_needs_a_proof_that_covers_it() {
        let answer = written(5);
        let answer = answer.ready().expect_err("it wrote");
        let answer = answer
            .release(&Committed::up_to(Ticket::Queued(4)))
            .expect_err("an earlier proof is not enough");
        let answer = answer
            .release(&Committed::nothing())
            .expect_err("nor is an empty one");
        assert_eq!(
            answer.release(&Committed::up_to(Ticket::Queued(5))).ok(),
            Some("OK")
        );
        assert_eq!(
            written(3)
                .release(&Committed::up_to(Ticket::Queued(9)))
                .ok(),
            Some("OK")
        );
    }

    #[test]
    fn a_refused_ticket_is_never_released() {
        let refused = Uncommitted::new(Applied {
            value: "OK",
            ticket: Some(Ticket::Refused),
        });
        let refused = refused
            .release(&Committed::up_to(Ticket::Queued(u64::MAX)))
            .expect_err("never durable");
        assert!(refused.release(&Committed::up_to(Ticket::Refused)).is_err());
    }

    #[test]
    fn reads_are_ready_and_joined_answers_wait_for_both() {
        assert_eq!(Uncommitted::nothing_written(1).ready().ok(), Some(1));
        let both = written(2).and(written(7)).map(|(a, b)| format!("{a}{b}"));
        assert_eq!(both.ticket(), Some(Ticket::Queued(7)));
        let both = both
            .release(&Committed::up_to(Ticket::Queued(2)))
            .expect_err("the later ticket is not covered");
        assert_eq!(
            both.release(&Committed::up_to(Ticket::Queued(7))).ok(),
            Some("OKOK".to_owned())
        );
    }
}
