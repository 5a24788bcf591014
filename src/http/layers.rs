//! Middleware for the layers every request passes through, cheaper than
//! `axum::middleware::from_fn`, which boxes each request's future and the
//! rest of the stack, and clones the rest of the stack, on every request.
//!
//! - [`Around`] notes something of each request, then acts on its response
//!   (the metrics, the matched route);
//! - [`Refuse`] answers a request itself when a check says so (two
//!   `Authorization` headers);
//! - [`Deadline`] answers in the stack's place when it takes too long.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// What [`Around`] does with each request and its response.
pub trait Hook: Clone {
    /// What is kept of the request for its response.
    type Note;
    fn request(&self, req: &Request) -> Self::Note;
    fn response<B>(note: Self::Note, res: &mut Response<B>);
}

/// The layer of [`Around`].
#[derive(Clone)]
pub struct AroundLayer<H>(pub H);

impl<S, H: Hook> Layer<S> for AroundLayer<H> {
    type Service = Around<S, H>;

    fn layer(&self, inner: S) -> Around<S, H> {
        Around {
            inner,
            hook: self.0.clone(),
        }
    }
}

/// Calls its hook with each request, then with its response.
#[derive(Clone)]
pub struct Around<S, H> {
    inner: S,
    hook: H,
}

impl<S, H, B> Service<Request> for Around<S, H>
where
    S: Service<Request, Response = Response<B>>,
    H: Hook,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = AroundFuture<S::Future, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let note = self.hook.request(&req);
        AroundFuture {
            inner: self.inner.call(req),
            note: Some(note),
        }
    }
}

pin_project! {
    /// The response future of [`Around`].
    pub struct AroundFuture<F, H: Hook> {
        #[pin]
        inner: F,
        note: Option<H::Note>,
    }
}

impl<F, H, B, E> Future for AroundFuture<F, H>
where
    F: Future<Output = Result<Response<B>, E>>,
    H: Hook,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        if let Some(note) = this.note.take() {
            H::response(note, &mut res);
        }
        Poll::Ready(Ok(res))
    }
}

/// The layer of [`Refuse`]: `check` answers the requests it refuses.
#[derive(Clone, Copy)]
pub struct RefuseLayer(pub fn(&Request) -> Option<Response>);

impl<S> Layer<S> for RefuseLayer {
    type Service = Refuse<S>;

    fn layer(&self, inner: S) -> Refuse<S> {
        Refuse {
            inner,
            check: self.0,
        }
    }
}

/// Answers a request with its check's answer, if any; passes it on
/// otherwise.
#[derive(Clone)]
pub struct Refuse<S> {
    inner: S,
    check: fn(&Request) -> Option<Response>,
}

impl<S> Service<Request> for Refuse<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RefuseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match (self.check)(&req) {
            Some(answer) => RefuseFuture::Refused {
                answer: Some(answer),
            },
            None => RefuseFuture::Passed {
                inner: self.inner.call(req),
            },
        }
    }
}

pin_project! {
    /// The response future of [`Refuse`].
    #[project = RefuseProjection]
    pub enum RefuseFuture<F> {
        Refused { answer: Option<Response> },
        Passed { #[pin] inner: F },
    }
}

impl<F, E> Future for RefuseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RefuseProjection::Refused { answer } => {
                Poll::Ready(Ok(answer.take().expect("polled after completion")))
            }
            RefuseProjection::Passed { inner } => inner.poll(cx),
        }
    }
}

/// The layer of [`Deadline`].
#[derive(Clone, Copy)]
pub struct DeadlineLayer {
    pub after: Duration,
    /// The answer when the time is up.
    pub answer: fn() -> Response,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            layer: *self,
        }
    }
}

/// Answers with its layer's `answer` when the inner service has not
/// answered within `after`.
#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S> Service<Request> for Deadline<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        DeadlineFuture {
            inner: tokio::time::timeout(self.layer.after, self.inner.call(req)),
            answer: self.layer.answer,
        }
    }
}

pin_project! {
    /// The response future of [`Deadline`].
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        answer: fn() -> Response,
    }
}

impl<F> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match ready!(this.inner.poll(cx)) {
            Ok(answered) => Poll::Ready(answered),
            Err(_elapsed) => Poll::Ready(Ok((this.answer)())),
        }
    }
}
