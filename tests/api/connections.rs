//! Connections as a slow or hostile client holds them: a request head sent
//! a line at a time, a keep-alive connection left idle, and more half-open
//! connections than the server will hold.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Backend, Settings, TestApp};
use crate::on_both_databases;

on_both_databases!(
    a_head_sent_a_line_at_a_time_is_cut_off_after_10_seconds,
    an_idle_keep_alive_connection_lasts_60_seconds,
    half_open_connections_cannot_lock_other_clients_out,
    a_pipelined_partial_head_gets_10_seconds_not_the_idle_minute,
);

const REQUEST: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: gatehouse\r\n\r\n";

/// Reads one response to `GET /health/live` (its body is 15 bytes).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&received).ends_with("{\"status\":\"ok\"}") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response within 5 s")
            .expect("the connection is open");
        assert!(n > 0, "closed before answering");
        received.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Waits until the server closes `stream`, up to `limit`; returns when.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut chunk),
        )
        .await
        {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            // Whatever the server says as it closes (a 408) is fine.
            Ok(Ok(_)) => {}
        }
    }
}

async fn a_head_sent_a_line_at_a_time_is_cut_off_after_10_seconds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slow = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    let (mut reading, mut writing) = slow.into_split();
    writing
        .write_all(b"GET /health/live HTTP/1.1\r\n")
        .await
        .unwrap();
    let trickle = async move {
        for i in 0..30 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let line = format!("X-Slow-{i}: still here\r\n");
            if writing.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    };
    let closed = async {
        let mut chunk = [0u8; 1024];
        loop {
            match reading.read(&mut chunk).await {
                Ok(0) | Err(_) => return started.elapsed(),
                // Whatever the server says as it closes is fine.
                Ok(_) => {}
            }
        }
    };
    // Other clients are served meanwhile.
    let others = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let response = app
            .client
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    };
    let lasted = tokio::select! {
        lasted = async { tokio::join!(closed, others).0 } => lasted,
        () = trickle => panic!("the server never closed the trickling connection"),
    };
    assert!(
        lasted >= Duration::from_secs(9) && lasted <= Duration::from_secs(12),
        "the trickling connection lasted {lasted:?}"
    );
}

async fn an_idle_keep_alive_connection_lasts_60_seconds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Idle longer than the head timeout, then used again: idle time is not
    // head time.
    let reused = async {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(REQUEST).await.unwrap();
        assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_secs(15)).await;
        stream.write_all(REQUEST).await.unwrap();
        assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    };
    // Left idle, closed after a minute.
    let abandoned = async {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(REQUEST).await.unwrap();
        assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
        let lasted = closed_within(&mut stream, Duration::from_secs(75)).await;
        assert!(
            lasted >= Duration::from_secs(58),
            "an idle connection was closed after only {lasted:?}"
        );
    };
    tokio::join!(reused, abandoned);
}

async fn half_open_connections_cannot_lock_other_clients_out(backend: Backend) {
    let app = TestApp::spawn_with(backend, Settings::new().set("MAX_CONNECTIONS", "20")).await;
    let mut half_open = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\n")
            .await
            .unwrap();
        half_open.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fresh client gets in at once, on a connection of its own.
    let started = Instant::now();
    let client = reqwest::Client::new();
    let response = client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served after {:?}",
        started.elapsed()
    );
    // The oldest half-open connections made room and are closed.
    let mut chunk = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), half_open[0].read(&mut chunk)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
}

/// A whole request and the start of another in one write: the second head
/// began before the first answer, so it is due within 10 s, like any head,
/// and the minute of keep-alive idleness does not apply.
async fn a_pipelined_partial_head_gets_10_seconds_not_the_idle_minute(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    let mut pipelined = REQUEST.to_vec();
    pipelined.extend_from_slice(b"GET /health/live HTTP/1.1\r\nHost: gatehouse\r\n");
    stream.write_all(&pipelined).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    closed_within(&mut stream, Duration::from_secs(20)).await;
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_secs(9) && lasted <= Duration::from_secs(13),
        "the half-sent second head was held for {lasted:?}"
    );
}
