//! Cryptography: password hashing and access tokens. Nothing here knows
//! about HTTP or SQL.

pub mod keys;
pub mod legacy;
pub mod password;
pub mod refresh;
pub mod tokens;

pub use keys::KeyRing;
pub use password::{HashError, PasswordHasher};
pub use refresh::RefreshTokens;
pub use tokens::{AccessClaims, IssuedToken, TokenError, TokenService};
