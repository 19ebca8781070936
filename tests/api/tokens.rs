//! Section 5 of the contract: what makes an access token good or bad.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{
    Backend, PASSWORD, Settings, TEST_SECRET, TestApp, assert_problem, jwt_claims, jwt_header,
};
use crate::on_both_databases;

on_both_databases!(
    access_tokens_carry_every_claim_the_contract_lists,
    another_service_can_verify_a_token_with_the_shared_secret,
    a_request_without_a_bearer_token_is_401_missing_token,
    the_bearer_scheme_is_case_insensitive,
    every_kind_of_bad_token_is_401_invalid_token,
    an_expired_token_is_401_token_expired,
    a_valid_token_without_the_role_is_403_insufficient_role,
    a_generated_secret_is_shared_by_restarts_and_instances,
);

const INVALID_CHALLENGE: &str = r#"Bearer realm="gatehouse", error="invalid_token""#;

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A login for `alice`, and the header and claims of its token.
async fn alice(app: &TestApp) -> (String, Value, Value) {
    app.register("alice").await;
    let token = app.login("alice", PASSWORD).await;
    let (header, claims) = (jwt_header(&token), jwt_claims(&token));
    (token, header, claims)
}

fn sign(header: &Value, claims: &Value, algorithm: Algorithm, secret: &[u8]) -> String {
    let mut jwt_header = Header::new(algorithm);
    jwt_header.typ = header["typ"].as_str().map(str::to_owned);
    jwt_header.kid = header["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(&jwt_header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// Signs with HS256 under a header given as raw JSON, for header members
/// jsonwebtoken's `Header` cannot carry.
fn sign_with_raw_header(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

async fn status_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.get("/me", token).await
}

async fn access_tokens_carry_every_claim_the_contract_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, header, claims) = alice(&app).await;
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    for claim in [
        "iss",
        "aud",
        "sub",
        "exp",
        "iat",
        "nbf",
        "jti",
        "sid",
        "role",
        "preferred_username",
    ] {
        assert!(!claims[claim].is_null(), "claim {claim} in {claims}");
    }
    assert_eq!(claims["iss"], "gatehouse");
    assert_eq!(claims["aud"], "gatehouse");
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        15 * 60
    );
    let second = jwt_claims(&app.login("alice", PASSWORD).await);
    assert_ne!(
        claims["sid"], second["sid"],
        "each login is its own session"
    );
    assert_ne!(claims["jti"], second["jti"]);
}

async fn another_service_can_verify_a_token_with_the_shared_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _, _) = alice(&app).await;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["gatehouse"]);
    validation.set_audience(&["gatehouse"]);
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(TEST_SECRET.as_bytes()),
        &validation,
    )
    .expect("verifies with the secret's bytes as they are");
    assert_eq!(data.claims["preferred_username"], "alice");
}

async fn a_request_without_a_bearer_token_is_401_missing_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _, _) = alice(&app).await;
    let none = app.client.get(app.url("/me")).send().await.unwrap();
    let basic = app
        .client
        .get(app.url("/me"))
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    let query = app
        .client
        .get(app.url(&format!("/me?access_token={token}")))
        .send()
        .await
        .unwrap();
    let cookie = app
        .client
        .get(app.url("/me"))
        .header("cookie", format!("access_token={token}"))
        .send()
        .await
        .unwrap();
    for response in [none, basic, query, cookie] {
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="gatehouse""#
        );
        assert_problem(response, StatusCode::UNAUTHORIZED, "missing_token").await;
    }
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _, _) = alice(&app).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = app
            .client
            .get(app.url("/protected"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    let empty = app
        .client
        .get(app.url("/protected"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_problem(empty, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let tab = app
        .client
        .get(app.url("/protected"))
        .header("authorization", format!("Bearer\t{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(tab.status(), StatusCode::OK);
    // Two credentials are ambiguous, whichever comes first.
    let two = app
        .client
        .get(app.url("/protected"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer garbage")
        .send()
        .await
        .unwrap();
    assert_problem(two, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

async fn every_kind_of_bad_token_is_401_invalid_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (genuine, header, claims) = alice(&app).await;
    let secret = TEST_SECRET.as_bytes();
    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let header_with = |key: &str, value: Value| {
        let mut h = header.clone();
        h[key] = value;
        h
    };

    // The forging itself is sound: re-signing the genuine claims works,
    // with either signer, and with `iat` within the leeway.
    let reforged = sign(&header, &claims, Algorithm::HS256, secret);
    assert_eq!(status_with(&app, &reforged).await.status(), StatusCode::OK);
    let raw = sign_with_raw_header(&header, &with("iat", json!(now() + 2)), secret);
    assert_eq!(status_with(&app, &raw).await.status(), StatusCode::OK);

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD
            .encode(json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let (head, _) = genuine.rsplit_once('.').unwrap();
    let tampered_payload = {
        let mut pieces: Vec<String> = genuine.split('.').map(str::to_owned).collect();
        pieces[1] = URL_SAFE_NO_PAD.encode(with("role", json!("admin")).to_string());
        pieces.join(".")
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong secret",
            sign(
                &header,
                &claims,
                Algorithm::HS256,
                b"another-secret-that-is-also-32-bytes-long",
            ),
        ),
        ("alg none", unsigned),
        (
            "alg HS384 with the right secret",
            sign(&header, &claims, Algorithm::HS384, secret),
        ),
        (
            "nbf in the future",
            sign(
                &header,
                &with("nbf", json!(now() + 120)),
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "wrong issuer",
            sign(
                &header,
                &with("iss", json!("someone-else")),
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "wrong audience",
            sign(
                &header,
                &with("aud", json!("another-api")),
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "typ JWT",
            sign(
                &header_with("typ", json!("JWT")),
                &claims,
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "typ refresh",
            sign(
                &header_with("typ", json!("refresh+jwt")),
                &claims,
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "no typ",
            sign(
                &header_with("typ", Value::Null),
                &claims,
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "unknown kid",
            sign(
                &header_with("kid", json!("no-such-key")),
                &claims,
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "no kid",
            sign(
                &header_with("kid", Value::Null),
                &claims,
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "string exp",
            sign(
                &header,
                &with("exp", json!((now() + 600).to_string())),
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "missing exp",
            sign(&header, &without("exp"), Algorithm::HS256, secret),
        ),
        (
            "missing sid",
            sign(&header, &without("sid"), Algorithm::HS256, secret),
        ),
        (
            "subject not a user",
            sign(
                &header,
                &with("sub", json!(uuid::Uuid::now_v7())),
                Algorithm::HS256,
                secret,
            ),
        ),
        (
            "a crit header",
            sign_with_raw_header(&header_with("crit", json!(["exp"])), &claims, secret),
        ),
        (
            "an empty crit header",
            sign_with_raw_header(&header_with("crit", json!([])), &claims, secret),
        ),
        (
            "iat in the future",
            sign(
                &header,
                &with("iat", json!(now() + 3600)),
                Algorithm::HS256,
                secret,
            ),
        ),
        ("tampered payload", tampered_payload),
        ("signature stripped", format!("{head}.")),
        ("not a JWT", "abc.def".to_owned()),
    ];
    for (case, token) in cases {
        let response = status_with(&app, &token).await;
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some(INVALID_CHALLENGE),
            "{case}"
        );
        let body = assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
        assert!(
            !body.to_string().contains(&token),
            "{case}: the token is not echoed"
        );
    }
}

async fn an_expired_token_is_401_token_expired(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, header, mut claims) = alice(&app).await;
    claims["iat"] = json!(now() - 1000);
    claims["nbf"] = json!(now() - 1000);
    claims["exp"] = json!(now() - 60);
    let token = sign(&header, &claims, Algorithm::HS256, TEST_SECRET.as_bytes());
    let response = status_with(&app, &token).await;
    assert_eq!(response.headers()["www-authenticate"], INVALID_CHALLENGE);
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_expired").await;

    // Expired and forged is simply invalid: the signature is checked first.
    let forged = sign(
        &header,
        &claims,
        Algorithm::HS256,
        b"another-secret-that-is-also-32-bytes-long",
    );
    assert_problem(
        status_with(&app, &forged).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

async fn a_valid_token_without_the_role_is_403_insufficient_role(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _, _) = alice(&app).await;
    let response = app.get("/admin/users", &token).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="gatehouse", error="insufficient_scope""#
    );
    assert_problem(response, StatusCode::FORBIDDEN, "insufficient_role").await;
}

async fn a_generated_secret_is_shared_by_restarts_and_instances(backend: Backend) {
    let first = TestApp::spawn_with(backend, Settings::new().unset("JWT_SECRET")).await;
    first.register("alice").await;
    let token = first.login("alice", PASSWORD).await;
    let second = TestApp::spawn_on(first.db.clone(), Settings::new().unset("JWT_SECRET")).await;
    assert_eq!(
        second.get("/me", &token).await.status(),
        StatusCode::OK,
        "a second instance agrees"
    );
    let db = first.db.clone();
    first.stop().await;
    second.stop().await;
    let restarted = TestApp::spawn_on(db, Settings::new().unset("JWT_SECRET")).await;
    assert_eq!(
        restarted.get("/me", &token).await.status(),
        StatusCode::OK,
        "a restart agrees"
    );
    // The generated key is not the test secret: a token forged with it fails.
    let (header, claims) = (jwt_header(&token), jwt_claims(&token));
    let forged = sign(&header, &claims, Algorithm::HS256, TEST_SECRET.as_bytes());
    assert_problem(
        restarted.get("/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}
