use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn every_answer_is_no_store_nosniff_with_a_request_id() {
    let app = TestApp::spawn().await;
    let responses = [
        app.get(&app.client, "/health").await,
        app.get(&app.client, "/api/v1/auth/me").await,
        app.get(&app.client, "/no/such/route").await,
        app.login(&new_client(), &unique_email("h"), PASSWORD).await,
    ];
    for res in responses {
        let h = res.headers();
        assert_eq!(h["cache-control"], "no-store", "{}", res.url());
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.get("x-request-id").is_some());
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_model() {
    let app = TestApp::spawn().await;
    expect_error(
        app.get(&app.client, "/api/v1/nope").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.get(&app.client, "/").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let res = app
        .client
        .delete(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    let res = app
        .client
        .get(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn a_supplied_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
}
