//! Extractors that turn a request into trusted values or into the exact
//! error the contract names: [`StrictJson`] for bodies, [`AuthUser`],
//! [`AdminUser`] and [`MaybeAuthUser`] for the caller.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::app::AppState;
use crate::auth::{AccessClaims, TokenError};
use crate::domain::{Role, User};
use crate::error::ApiError;

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Bodies up to this size are read (and discarded) before a 413, so the
/// client sees the answer; larger ones are refused without reading.
pub const DRAIN_LIMIT: usize = 1024 * 1024;

/// A client that has not sent its (at most 64 KiB) body by then is too slow:
/// 408, rather than holding a connection until the request timeout.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A JSON object body, read strictly: `Content-Type: application/json` or
/// 415, at most 64 KiB or 413, and anything the target type does not expect
/// (an unknown or repeated field, a wrong type, a non-object) is a 400 that
/// names the field. Target types use `#[serde(deny_unknown_fields)]`.
pub struct StrictJson<T>(pub T);

impl<T, S> FromRequest<S> for StrictJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(request.headers().get(CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = read_body(request.into_body()).await?;
        parse_object(&body).map(StrictJson)
    }
}

/// The body of a credential route (register, login, refresh, logout): a
/// JSON object read as [`StrictJson`], or the same fields as an
/// `application/x-www-form-urlencoded` form, as HTML forms, Flask-style
/// clients and OAuth 2 client libraries send them. A form is read into the
/// JSON object a JSON client would send, every value a string, and then
/// held to the same rules: an unknown or repeated field is a 400 naming it.
pub struct CredentialBody<T>(pub T);

impl<T, S> FromRequest<S> for CredentialBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request.headers().get(CONTENT_TYPE);
        if !has_media_type(content_type, "application/x-www-form-urlencoded") {
            return StrictJson::from_request(request, state)
                .await
                .map(|StrictJson(value)| CredentialBody(value));
        }
        let body = read_body(request.into_body()).await?;
        parse_form(&body).map(CredentialBody)
    }
}

fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut object = serde_json::Map::new();
    let mut seen = std::collections::HashSet::new();
    for pair in body.split(|b| *b == b'&').filter(|pair| !pair.is_empty()) {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let (key, value) = (form_decode(key)?, form_decode(value)?);
        if !seen.insert(key.clone()) {
            return Err(duplicate_field(key.clone(), &key));
        }
        // An HTML form sends every input, the empty ones too, and has no
        // null: an empty field is a field not given.
        if !value.is_empty() {
            object.insert(key, serde_json::Value::String(value));
        }
    }
    serde_path_to_error::deserialize(serde_json::Value::Object(object)).map_err(describe)
}

/// One key or value of a form: `+` is a space, `%XX` a byte, and the bytes
/// must be UTF-8.
fn form_decode(raw: &[u8]) -> Result<String, ApiError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| malformed_form())
}

/// Reads a body of at most [`BODY_LIMIT`] bytes. A larger one is still read
/// to its end (and thrown away) so the client, which may still be sending,
/// receives the 413 instead of a reset connection; the router's outer limit
/// ([`DRAIN_LIMIT`]) stops anything larger at once, and a client that sends
/// too slowly gets 408.
async fn read_body(mut body: axum::body::Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let read = async {
        let mut kept = Vec::new();
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ApiError::PayloadTooLarge)?;
            if let Ok(data) = frame.into_data() {
                total += data.len();
                if total <= BODY_LIMIT {
                    kept.extend_from_slice(&data);
                }
            }
        }
        if total > BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge);
        }
        Ok(Bytes::from(kept))
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .map_err(|_| ApiError::RequestTimeout)?
}

/// `application/json`, in any case, with or without parameters.
fn is_json_content_type(value: Option<&axum::http::HeaderValue>) -> bool {
    has_media_type(value, "application/json")
}

/// Whether a `Content-Type` names `essence` (in any case), with or without
/// parameters.
fn has_media_type(value: Option<&axum::http::HeaderValue>, essence: &str) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let given = value.split(';').next().unwrap_or_default().trim();
    given.eq_ignore_ascii_case(essence)
}

fn parse_object<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Err(empty_body()),
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde_json::Value>(body).is_ok() => {
            return Err(not_an_object());
        }
        Some(_) => return Err(malformed()),
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(describe)?;
    deserializer.end().map_err(|_| malformed())?;
    Ok(value)
}

// The ways a body can fail to be read. The OpenAPI document shows these
// same errors as its examples.

pub fn empty_body() -> ApiError {
    ApiError::bad_request("malformed_json", "The request body is empty.")
}

pub fn malformed() -> ApiError {
    ApiError::bad_request("malformed_json", "The request body is not valid JSON.")
}

pub fn malformed_form() -> ApiError {
    ApiError::bad_request(
        "malformed_form",
        "The form body does not decode to UTF-8 text.",
    )
}

pub fn not_an_object() -> ApiError {
    ApiError::bad_request("not_an_object", "The request body must be a JSON object.")
}

/// `field` is where the key was found (`role`, or a nested path); `name`
/// is the key itself.
pub fn unknown_field(field: String, name: &str) -> ApiError {
    ApiError::bad_field("unknown_field", field, format!("Unknown field `{name}`."))
}

pub fn duplicate_field(field: String, name: &str) -> ApiError {
    ApiError::bad_field(
        "duplicate_field",
        field,
        format!("Field `{name}` is given more than once."),
    )
}

pub fn invalid_type(field: String) -> ApiError {
    let detail = format!("Field `{field}` has the wrong JSON type.");
    ApiError::bad_field("invalid_type", field, detail)
}

/// Names the offending field without echoing its value: a password sent as
/// a number must not come back in the error.
fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    if error.inner().classify() != Category::Data {
        return malformed();
    }
    let message = error.inner().to_string();
    let path = error.path().to_string();
    if let Some(field) = quoted_name(&message, "unknown field `") {
        return unknown_field(join(&path, field), field);
    }
    if let Some(field) = quoted_name(&message, "duplicate field `") {
        return duplicate_field(join(&path, field), field);
    }
    invalid_type(path)
}

fn quoted_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name)
}

/// serde_path_to_error's path already ends at an unknown or repeated key;
/// at the top level it may be empty, and then the key name is the path.
fn join(path: &str, field: &str) -> String {
    if path.is_empty() || path == "." {
        field.to_owned()
    } else {
        path.to_owned()
    }
}

/// The authenticated caller, checked against the database on every request
/// so a deleted or disabled user's token stops working at once.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub claims: AccessClaims,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?.ok_or(ApiError::MissingToken)?;
        let verified = match state.tokens.verify(token) {
            // Perhaps signed by another instance with a key rotated in a
            // moment ago: reread the keys before refusing. When they cannot
            // be read, the database is away: 503, never a 401 that would
            // make the client throw its tokens away.
            Err(TokenError::UnknownKey) => {
                if let Err(e) = state
                    .tokens
                    .reread_for_unknown_key(&state.config, &state.store)
                    .await
                {
                    tracing::warn!(error = %e, "could not reread the signing keys");
                    return Err(ApiError::unavailable());
                }
                state.tokens.verify(token)
            }
            other => other,
        };
        let claims = verified.map_err(|e| match e {
            TokenError::Expired => ApiError::TokenExpired,
            TokenError::Invalid | TokenError::UnknownKey => ApiError::InvalidToken,
        })?;
        // The session must still be live and its user still there: this is
        // how logout, revocation and deletion take effect at once. A database
        // outage surfaces as 503 here, never as a 401 that would make a
        // client throw its tokens away.
        let user = crate::sessions::authenticate(state, claims.sid, claims.sub)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        // A token minted before a role change speaks for a role the user no
        // longer has.
        if user.disabled || user.role != claims.role {
            return Err(ApiError::InvalidToken);
        }
        Ok(Self { user, claims })
    }
}

/// The bearer token, if the request has one. Only the `Authorization`
/// header is read; its scheme is case-insensitive. A header with another
/// scheme is no bearer credential at all.
fn bearer_token(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // Two credentials are ambiguous; picking one by order would let a proxy
    // and the server disagree about who is calling.
    if values.next().is_some() {
        return Err(ApiError::InvalidToken);
    }
    let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    let (scheme, token) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::InvalidToken);
    }
    Ok(Some(token))
}

/// The `{id}` of a path, as a UUID. An id that is not even a UUID names
/// nothing: 404, like an unknown one.
pub struct PathId(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        uuid::Uuid::parse_str(&raw)
            .map(Self)
            .map_err(|_| ApiError::NotFound)
    }
}

/// An authenticated caller whose role is `admin`; others get 403.
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        if caller.user.role != Role::Admin {
            return Err(ApiError::InsufficientRole);
        }
        Ok(Self(caller))
    }
}

/// A credential body that may be left out entirely: no body and no
/// `Content-Type` gives `None`; anything sent is read as [`CredentialBody`].
pub struct OptionalCredentialBody<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalCredentialBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let declared_empty = request
            .headers()
            .get(CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0");
        if declared_empty && request.headers().get(CONTENT_TYPE).is_none() {
            return Ok(Self(None));
        }
        CredentialBody::from_request(request, state)
            .await
            .map(|CredentialBody(v)| Self(Some(v)))
    }
}

/// The caller when a token is sent, `None` when none is. A token that is
/// sent must be valid: an expired one is an error, not an anonymous caller.
/// `Option<AuthUser>` would silently swallow that error.
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if bearer_token(parts)?.is_none() {
            return Ok(Self(None));
        }
        AuthUser::from_request_parts(parts, state)
            .await
            .map(|u| Self(Some(u)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        username: Option<String>,
        password: Option<String>,
    }

    fn code(raw: &str) -> (String, Option<String>) {
        match parse_object::<Body>(&Bytes::copy_from_slice(raw.as_bytes())) {
            Ok(_) => ("ok".into(), None),
            Err(ApiError::BadRequest { code, errors, .. }) => {
                (code.into(), errors.first().map(|e| e.field.clone()))
            }
            Err(other) => (format!("{other:?}"), None),
        }
    }

    fn form_code(raw: &str) -> (String, Option<String>) {
        match parse_form::<Body>(raw.as_bytes()) {
            Ok(_) => ("ok".into(), None),
            Err(ApiError::BadRequest { code, errors, .. }) => {
                (code.into(), errors.first().map(|e| e.field.clone()))
            }
            Err(other) => (format!("{other:?}"), None),
        }
    }

    #[test]
    fn forms_are_read_by_the_same_rules() {
        let body: Body = parse_form(b"username=al%20ice&password=a+b%2Bc").unwrap();
        assert_eq!(body.username.as_deref(), Some("al ice"));
        assert_eq!(body.password.as_deref(), Some("a b+c"));
        assert_eq!(form_code("").0, "ok");
        assert_eq!(form_code("username=&&password").0, "ok");
        // Empty inputs are fields not given; given twice is still refused.
        let body: Body = parse_form(b"username=&password=x").unwrap();
        assert_eq!(body.username, None);
        assert_eq!(form_code("username=&username=a").0, "duplicate_field");
        assert_eq!(
            form_code("role=admin"),
            ("unknown_field".into(), Some("role".into()))
        );
        assert_eq!(
            form_code("username=a&username=b"),
            ("duplicate_field".into(), Some("username".into()))
        );
        assert_eq!(form_code("username=%FF").0, "malformed_form");
        assert_eq!(form_code("username=%E2%82").0, "malformed_form");
    }

    #[test]
    fn bodies_are_read_strictly() {
        assert_eq!(code(r#"{"username":"a"}"#).0, "ok");
        assert_eq!(code(r#"{"username":"a""#).0, "malformed_json");
        assert_eq!(code("").0, "malformed_json");
        assert_eq!(code("[1]").0, "not_an_object");
        assert_eq!(code(r#"{"username":"a"} x"#).0, "malformed_json");
        assert_eq!(
            code(r#"{"role":"admin"}"#),
            ("unknown_field".into(), Some("role".into()))
        );
        assert_eq!(
            code(r#"{"username":"a","username":"b"}"#),
            ("duplicate_field".into(), Some("username".into()))
        );
        assert_eq!(
            code(r#"{"password":12345678}"#),
            ("invalid_type".into(), Some("password".into()))
        );
    }

    #[test]
    fn a_wrong_type_does_not_echo_the_value() {
        let err =
            parse_object::<Body>(&Bytes::from_static(br#"{"password":98765432}"#)).unwrap_err();
        assert!(!format!("{:?}", err).contains("98765432"));
    }

    #[test]
    fn json_content_types_are_recognised() {
        let ok = |v: &'static str| is_json_content_type(Some(&HeaderValue::from_static(v)));
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/jsonx"));
        assert!(!is_json_content_type(None));
    }

    mod properties {
        use super::*;
        use axum::http::Request;
        use proptest::prelude::*;

        fn parts_with(values: &[Vec<u8>]) -> Option<Parts> {
            let mut request = Request::builder();
            for value in values {
                request = request.header(AUTHORIZATION, HeaderValue::from_bytes(value).ok()?);
            }
            Some(request.body(()).ok()?.into_parts().0)
        }

        /// `body` reads as a [`Body`] or is one of the documented 400s.
        fn read_or_refused_with_a_code(body: impl Into<Bytes>) -> Result<(), TestCaseError> {
            match parse_object::<Body>(&body.into()) {
                Ok(_) => {}
                Err(ApiError::BadRequest { code, .. }) => prop_assert!(
                    [
                        "malformed_json",
                        "not_an_object",
                        "unknown_field",
                        "duplicate_field",
                        "invalid_type"
                    ]
                    .contains(&code),
                    "{}",
                    code
                ),
                Err(other) => prop_assert!(false, "{:?}", other),
            }
            Ok(())
        }

        fn form_read_or_refused_with_a_code(body: &[u8]) -> Result<(), TestCaseError> {
            match parse_form::<Body>(body) {
                Ok(_) => {}
                Err(ApiError::BadRequest { code, .. }) => prop_assert!(
                    ["malformed_form", "unknown_field", "duplicate_field"].contains(&code),
                    "{}",
                    code
                ),
                Err(other) => prop_assert!(false, "{:?}", other),
            }
            Ok(())
        }

        /// A form as a browser encodes it.
        fn encode_form(pairs: &[(&str, &str)]) -> String {
            let encode = |text: &str| {
                percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        }

        proptest! {
            /// Any bytes as a form body: read, or one of the form's 400s.
            #[test]
            fn any_form_body_is_read_or_refused_with_a_code(body in proptest::collection::vec(any::<u8>(), 0..200)) {
                form_read_or_refused_with_a_code(&body)?;
            }

            /// Whatever text a client puts in the fields comes back exactly.
            #[test]
            fn encoded_form_values_come_back_exactly(username in "\\PC{1,20}", password in "\\PC{1,20}") {
                let body = encode_form(&[("username", &username), ("password", &password)]);
                let read: Body = parse_form(body.as_bytes()).unwrap();
                prop_assert_eq!(read.username.as_deref(), Some(username.as_str()));
                prop_assert_eq!(read.password.as_deref(), Some(password.as_str()));
            }

            /// Any header bytes at all: an answer, never a panic; a token
            /// found is non-empty, trimmed, and came after a bearer scheme.
            #[test]
            fn any_authorization_header_is_answered(
                values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..3)
            ) {
                if let Some(parts) = parts_with(&values)
                    && let Ok(Some(token)) = bearer_token(&parts)
                {
                    prop_assert!(!token.is_empty());
                    prop_assert_eq!(token, token.trim());
                    prop_assert_eq!(values.len(), 1);
                    let header = String::from_utf8_lossy(&values[0]).to_ascii_lowercase();
                    prop_assert!(header.starts_with("bearer"));
                }
            }

            /// `Bearer <token>` in any case, with spaces or a tab, yields
            /// the token.
            #[test]
            fn a_bearer_credential_yields_its_token(
                scheme in "[bB][eE][aA][rR][eE][rR]",
                gap in "[ \t]{1,3}",
                token in "[A-Za-z0-9._~+/=-]{1,60}",
            ) {
                let header = format!("{scheme}{gap}{token}");
                let parts = parts_with(&[header.into_bytes()]).unwrap();
                prop_assert_eq!(bearer_token(&parts).ok().flatten(), Some(token.as_str()));
            }

            /// Any body: a typed value or one of the documented 400s.
            #[test]
            fn any_body_is_read_or_refused_with_a_code(body in proptest::collection::vec(any::<u8>(), 0..200)) {
                read_or_refused_with_a_code(body)?;
            }

            /// Bodies shaped like JSON objects, with arbitrary keys and
            /// values, exercise the field checks rather than the parser.
            #[test]
            fn object_like_bodies_are_read_or_refused_with_a_code(
                pairs in proptest::collection::vec(("[a-z_]{0,10}", "[\\PC]{0,12}"), 0..4),
                raw_values in any::<bool>(),
            ) {
                let members: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| if raw_values { format!("\"{k}\":{v}") } else { format!("{:?}:{:?}", k, v) })
                    .collect();
                let body = format!("{{{}}}", members.join(","));
                read_or_refused_with_a_code(body)?;
            }
        }
    }
}
