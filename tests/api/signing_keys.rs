//! Signing keys: the JWKS document, EdDSA tokens a third party can verify,
//! rotation, and algorithms that must not be mixed.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{
    Ed25519PublicKey, EdDSAPublicKeyLike, NoCustomClaims, Token, VerificationOptions,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{
    Backend, PASSWORD, Settings, TestApp, assert_problem, jwt_claims, jwt_header,
};
use crate::on_both_databases;

on_both_databases!(
    with_hmac_the_jwks_is_empty,
    eddsa_tokens_verify_with_only_the_jwks_and_another_library,
    rotation_publishes_at_once_and_signs_after_the_lead,
    an_unknown_kid_makes_an_instance_reread_the_keys,
    rotate_now_drops_the_old_key_at_once,
    tokens_of_the_other_algorithm_are_refused,
);

fn eddsa() -> Settings {
    Settings::new()
        .unset("JWT_SECRET")
        .set("JWT_ALGORITHM", "EdDSA")
}

async fn jwks(app: &TestApp) -> Value {
    app.public_json("/.well-known/jwks.json").await
}

async fn with_hmac_the_jwks_is_empty(backend: Backend) {
    for settings in [Settings::new(), Settings::new().unset("JWT_SECRET")] {
        let app = TestApp::spawn_with(backend, settings).await;
        assert_eq!(jwks(&app).await, json!({"keys": []}));
    }
}

async fn eddsa_tokens_verify_with_only_the_jwks_and_another_library(backend: Backend) {
    let app = TestApp::spawn_with(backend, eddsa()).await;
    app.register("alice").await;
    let token = app.login("alice", PASSWORD).await;
    let document = jwks(&app).await;
    let keys = document["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(
        (jwk["alg"].as_str(), jwk["use"].as_str()),
        (Some("EdDSA"), Some("sig"))
    );
    assert!(jwk.get("d").is_none(), "no private part is published");
    assert_eq!(jwt_header(&token)["kid"], jwk["kid"]);

    // jwt-simple, not jsonwebtoken, and nothing but the JWKS document.
    let metadata = Token::decode_metadata(&token).unwrap();
    assert_eq!(metadata.algorithm(), "EdDSA");
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let key = Ed25519PublicKey::from_bytes(&x).unwrap();
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from(["gatehouse".to_owned()])),
        allowed_audiences: Some(HashSet::from(["gatehouse".to_owned()])),
        required_signature_type: Some("at+jwt".to_owned()),
        required_key_id: Some(jwk["kid"].as_str().unwrap().to_owned()),
        ..Default::default()
    };
    let claims = key
        .verify_token::<NoCustomClaims>(&token, Some(options.clone()))
        .expect("verifies");
    assert!(
        claims.expires_at.is_some(),
        "exp is present and was checked"
    );
    // The same check rejects a token meant for another audience or type.
    let wrong_audience = VerificationOptions {
        allowed_audiences: Some(HashSet::from(["another-api".to_owned()])),
        ..options.clone()
    };
    assert!(
        key.verify_token::<NoCustomClaims>(&token, Some(wrong_audience))
            .is_err()
    );
    let wrong_type = VerificationOptions {
        required_signature_type: Some("JWT".to_owned()),
        ..options
    };
    assert!(
        key.verify_token::<NoCustomClaims>(&token, Some(wrong_type))
            .is_err()
    );

    // A second instance on the same database uses the same key.
    let second = TestApp::spawn_on(app.db.clone(), eddsa()).await;
    assert_eq!(second.get("/me", &token).await.status(), StatusCode::OK);
    assert_eq!(jwks(&second).await, document);
}

fn kids_published(document: &Value) -> Vec<String> {
    document["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `condition` every 100 ms for up to `seconds`.
async fn within<F, Fut>(seconds: u64, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    condition().await
}

async fn rotation_publishes_at_once_and_signs_after_the_lead(backend: Backend) {
    for settings in [eddsa(), Settings::new().unset("JWT_SECRET")] {
        let settings = settings.set("KEY_PUBLISH_LEAD_SECONDS", "3");
        let app = TestApp::spawn_with(backend, settings.clone()).await;
        let other = TestApp::spawn_on(app.db.clone(), settings).await;
        app.register("alice").await;
        let old = app.login("alice", PASSWORD).await;
        let rotation = gatehouse::auth::keys::rotate(&app.state.config, &app.state.store, false)
            .await
            .unwrap();
        let rotated_at = std::time::Instant::now();
        assert!(!rotation.dropped_older);
        let eddsa = app.state.config.jwt_algorithm == gatehouse::config::JwtAlgorithm::EdDsa;
        if eddsa {
            // Published by both instances within 5 s, before it signs.
            for instance in [&app, &other] {
                let shown = within(5, || async {
                    kids_published(&jwks(instance).await).contains(&rotation.kid)
                })
                .await;
                assert!(shown, "the new key is published within 5 s");
            }
        }
        if rotated_at.elapsed().as_secs_f64() < 2.5 {
            let before = app.login("alice", PASSWORD).await;
            assert_eq!(jwt_header(&before)["kid"], jwt_header(&old)["kid"]);
        }
        // Both instances switch once the lead has passed.
        tokio::time::sleep(std::time::Duration::from_secs(3).saturating_sub(rotated_at.elapsed()))
            .await;
        for instance in [&app, &other] {
            let new = instance.login("alice", PASSWORD).await;
            assert_eq!(jwt_header(&new)["kid"], rotation.kid.as_str());
            for verifier in [&app, &other] {
                assert_eq!(verifier.get("/me", &new).await.status(), StatusCode::OK);
                assert_eq!(
                    verifier.get("/me", &old).await.status(),
                    StatusCode::OK,
                    "the old key still verifies"
                );
            }
        }
        if eddsa {
            let kids = kids_published(&jwks(&app).await);
            let old_kid = jwt_header(&old)["kid"].as_str().unwrap().to_owned();
            assert!(kids.contains(&old_kid) && kids.contains(&rotation.kid));
        }
    }
}

async fn an_unknown_kid_makes_an_instance_reread_the_keys(backend: Backend) {
    let settings = eddsa().set("KEY_PUBLISH_LEAD_SECONDS", "0");
    let signer = TestApp::spawn_with(backend, settings.clone()).await;
    let verifier = TestApp::spawn_on(signer.db.clone(), settings).await;
    signer.register("alice").await;
    let rotation = gatehouse::auth::keys::rotate(&signer.state.config, &signer.state.store, false)
        .await
        .unwrap();
    signer
        .state
        .tokens
        .reload(&signer.state.config, &signer.state.store)
        .await
        .unwrap();
    let token = signer.login("alice", PASSWORD).await;
    assert_eq!(jwt_header(&token)["kid"], rotation.kid.as_str());
    // The verifier has not reread its keys yet (it does every 3 s); the
    // unknown kid makes it do so before it answers.
    assert!(
        !kids_published(&jwks(&verifier).await).contains(&rotation.kid)
            || verifier.get("/me", &token).await.status() == StatusCode::OK
    );
    assert_eq!(verifier.get("/me", &token).await.status(), StatusCode::OK);

    // A made-up kid is still refused. Rereading is spaced a second apart
    // and shared: a burst of fifty such tokens at once is answered after a
    // reread or two, not fifty.
    let mut header = jwt_header(&token);
    header["kid"] = json!("eddsa-made-up");
    let forged = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        token.split_once('.').unwrap().1
    );
    let started = std::time::Instant::now();
    let burst = (0..50).map(|_| verifier.get("/me", &forged));
    for response in futures::future::join_all(burst).await {
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

async fn rotate_now_drops_the_old_key_at_once(backend: Backend) {
    for settings in [eddsa(), Settings::new().unset("JWT_SECRET")] {
        let app = TestApp::spawn_with(backend, settings.clone()).await;
        let other = TestApp::spawn_on(app.db.clone(), settings).await;
        app.register("alice").await;
        let old = app.login("alice", PASSWORD).await;
        let old_kid = jwt_header(&old)["kid"].as_str().unwrap().to_owned();
        let rotation = gatehouse::auth::keys::rotate(&app.state.config, &app.state.store, true)
            .await
            .unwrap();
        assert!(rotation.dropped_older);
        // Every instance refuses the old key's tokens and signs with the
        // new key within 5 s, without being told.
        for instance in [&app, &other] {
            let refused = within(5, || async {
                instance.get("/me", &old).await.status() == StatusCode::UNAUTHORIZED
            })
            .await;
            assert!(refused, "the old key's tokens stop working within 5 s");
            let new = instance.login("alice", PASSWORD).await;
            assert_eq!(jwt_header(&new)["kid"], rotation.kid.as_str());
            assert_eq!(instance.get("/me", &new).await.status(), StatusCode::OK);
            assert!(!kids_published(&jwks(instance).await).contains(&old_kid));
        }
        assert_problem(
            other.get("/me", &old).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
}

async fn tokens_of_the_other_algorithm_are_refused(backend: Backend) {
    // An HS256 server and an EdDSA server on one database share users and
    // sessions, so only the algorithm differs between their tokens.
    let hmac = TestApp::spawn(backend).await;
    let ed = TestApp::spawn_on(hmac.db.clone(), eddsa()).await;
    hmac.register("alice").await;
    let hmac_token = hmac.login("alice", PASSWORD).await;
    let ed_token = ed.login("alice", PASSWORD).await;
    assert_eq!(hmac.get("/me", &hmac_token).await.status(), StatusCode::OK);
    assert_eq!(ed.get("/me", &ed_token).await.status(), StatusCode::OK);
    assert_problem(
        ed.get("/me", &hmac_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_problem(
        hmac.get("/me", &ed_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // The classic confusion: HS256 signed with the published public key.
    let x = jwks(&ed).await["keys"][0]["x"].as_str().unwrap().to_owned();
    let mut confused = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    confused.typ = Some("at+jwt".into());
    confused.kid = jwt_header(&ed_token)["kid"].as_str().map(str::to_owned);
    let claims = jwt_claims(&ed_token);
    for secret in [x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(&x).unwrap()] {
        let forged = jsonwebtoken::encode(
            &confused,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_problem(
            ed.get("/me", &forged).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
}
