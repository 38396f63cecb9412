//! Turns of a gateway worker's runtime: each poll of a client connection's
//! task (or of one of its HTTP/2 streams' tasks) begins one. The read-ahead
//! asks for a turn with a self-wake so that the upstream connection's task,
//! woken before it, runs first; it needs to tell a turn given from hyper
//! polling it again within the same one (hyper polls a response body up to
//! 16 times per poll of its connection).

use pin_project_lite::pin_project;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    /// Turns begun on this thread.
    static TURNS: Cell<u64> = const { Cell::new(0) };
}

/// Polls of a task that asked for a turn, within what looks like one turn,
/// after which the turn counts as given all the same: where no turns are
/// counted (a body polled outside a client connection's task), a task that
/// keeps being polled is being given turns.
const POLLS_IN_ONE_TURN: u8 = 16;

/// Spawn `future` on the current runtime as a task whose every poll begins a
/// turn: a client connection, or one of its HTTP/2 streams.
pub(crate) fn spawn<F>(future: F)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Turning::new(future));
}

pin_project! {
    /// A client connection's task: each of its polls begins a turn.
    struct Turning<F> {
        #[pin]
        inner: F,
    }
}

impl<F> Turning<F> {
    fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: Future> Future for Turning<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        TURNS.set(TURNS.get().wrapping_add(1));
        self.project().inner.poll(cx)
    }
}

/// hyper's executor for what a client connection spawns (its HTTP/2
/// streams, each served by a task of its own): turning tasks too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TurningExecutor;

impl<F> hyper::rt::Executor<F> for TurningExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        spawn(future);
    }
}

/// A turn this task asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    asked_in: u64,
    polls: u8,
}

impl Turn {
    /// Ask for a turn: wake this task, so that the runtime polls it again
    /// after the tasks already woken.
    pub(crate) fn ask(cx: &Context<'_>) -> Self {
        cx.waker().wake_by_ref();
        Self {
            asked_in: TURNS.get(),
            polls: 0,
        }
    }

    /// Whether the turn was given; call once per poll. If not, the task is
    /// woken again, so that it is polled again whoever polled it.
    pub(crate) fn given(&mut self, cx: &Context<'_>) -> bool {
        if TURNS.get() != self.asked_in {
            return true;
        }
        self.polls = self.polls.saturating_add(1);
        if self.polls > POLLS_IN_ONE_TURN {
            return true;
        }
        cx.waker().wake_by_ref();
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn a_turn_is_given_when_the_task_is_polled_again_not_when_polled_twice_in_one_turn() {
        let mut asked = None;
        let mut given_in_the_same_poll = None;
        Turning::new(poll_fn(|cx| match &mut asked {
            None => {
                let mut turn = Turn::ask(cx);
                given_in_the_same_poll = Some(turn.given(cx));
                asked = Some(turn);
                Poll::Pending
            }
            Some(turn) => {
                assert!(turn.given(cx), "polled again by the runtime");
                Poll::Ready(())
            }
        }))
        .await;

        assert_eq!(given_in_the_same_poll, Some(false));
    }

    #[tokio::test]
    async fn a_task_spawned_for_a_connection_by_hyper_counts_its_turns() {
        use hyper::rt::Executor;
        let (polled, polls) = tokio::sync::oneshot::channel();
        TurningExecutor.execute(async move {
            let (mut turn, mut count) = (None::<Turn>, 0);
            poll_fn(|cx| {
                count += 1;
                match &mut turn {
                    None => {
                        turn = Some(Turn::ask(cx));
                        Poll::Pending
                    }
                    Some(turn) => {
                        if turn.given(cx) {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    }
                }
            })
            .await;
            let _ = polled.send(count);
        });

        // Given at the first poll by the runtime, not after the 16 polls of
        // a task whose turns are not counted.
        assert_eq!(polls.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn where_turns_are_not_counted_a_task_polled_again_and_again_is_given_its_turn() {
        let mut turn = None;
        let polls = poll_fn(|cx| {
            let turn = turn.get_or_insert_with(|| Turn::ask(cx));
            let mut polls = 0;
            while !turn.given(cx) {
                polls += 1;
            }
            Poll::Ready(polls)
        })
        .await;

        assert_eq!(polls, usize::from(POLLS_IN_ONE_TURN));
    }
}
