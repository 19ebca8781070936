//! Password hashes made by the older Flask, FastAPI and Django backends,
//! verified from the hash string alone until the first successful login
//! replaces them with argon2id (see `accounts::check_login`).
//!
//! Every format carries its own parameters. One that asks for more work
//! than a login may spend is refused as [`Refused::TooCostly`], at login as
//! at import, so no stored string can make a login run long or take much
//! memory. Comparisons of computed and stored digests take constant time.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The most memory one verification may take (argon2, scrypt).
pub const MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// The most argon2 passes one verification may take.
pub const MAX_ARGON2_PASSES: u32 = 10;
const MAX_BCRYPT_COST: u32 = 16;
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// What Werkzeug assumes for a `pbkdf2:` hash that names no iteration
/// count (its current default).
const WERKZEUG_DEFAULT_ITERATIONS: u32 = 600_000;

/// The digest length Werkzeug's scrypt hashes have.
const WERKZEUG_SCRYPT_LEN: usize = 64;

/// bcrypt reads at most this many bytes of a password.
const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha256,
    Sha512,
}

impl Digest {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(Digest::Sha1),
            "sha256" => Some(Digest::Sha256),
            "sha512" => Some(Digest::Sha512),
            _ => None,
        }
    }

    fn output_len(self) -> usize {
        match self {
            Digest::Sha1 => 20,
            Digest::Sha256 => 32,
            Digest::Sha512 => 64,
        }
    }

    fn pbkdf2(self, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        match self {
            Digest::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, out),
            Digest::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, out),
            Digest::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, out),
        }
    }
}

/// A hash in one of the older backends' formats, parsed and within the
/// cost limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyHash {
    /// PBKDF2-HMAC, one computation that Werkzeug
    /// (`pbkdf2:<digest>[:<iterations>]$<salt>$<hex>`, the salt used as the
    /// text it is), passlib (`$pbkdf2$` for SHA-1, `$pbkdf2-sha256$`,
    /// `$pbkdf2-sha512$`, in passlib's base64: `.` for `+`, no padding) and
    /// Django (`pbkdf2_sha256$<iterations>$<salt>$<base64>`, `pbkdf2_sha1$…`)
    /// write down three ways. `scheme` says which.
    Pbkdf2 {
        scheme: &'static str,
        digest: Digest,
        iterations: u32,
        salt: Vec<u8>,
        expected: Vec<u8>,
    },
    /// Werkzeug `scrypt:<n>:<r>:<p>$<salt>$<hex>`.
    WerkzeugScrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: String,
        expected: Vec<u8>,
    },
    /// bcrypt `$2a$`, `$2b$`, `$2y$`.
    Bcrypt { stored: String },
}

/// Why a stored string cannot be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a password hash format gatehouse verifies")]
    UnknownFormat,
    #[error("malformed {0} hash")]
    Malformed(&'static str),
    #[error("{scheme} hash costs more than one login may spend ({cost})")]
    TooCostly { scheme: &'static str, cost: String },
}

impl LegacyHash {
    /// Parses `stored`, refusing unknown formats, malformed strings and
    /// costs over the limits. Argon2 PHC strings are not legacy: see
    /// [`check_argon2_cost`].
    pub fn parse(stored: &str) -> Result<Self, Refused> {
        if let Some(rest) = stored.strip_prefix("pbkdf2:") {
            return parse_werkzeug_pbkdf2(rest);
        }
        if let Some(rest) = stored.strip_prefix("scrypt:") {
            return parse_werkzeug_scrypt(rest);
        }
        if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            return parse_bcrypt(stored);
        }
        for (prefix, digest) in [
            ("$pbkdf2-sha256$", Digest::Sha256),
            ("$pbkdf2-sha512$", Digest::Sha512),
            ("$pbkdf2$", Digest::Sha1),
        ] {
            if let Some(rest) = stored.strip_prefix(prefix) {
                return parse_passlib_pbkdf2(rest, digest);
            }
        }
        for (prefix, digest) in [
            ("pbkdf2_sha256$", Digest::Sha256),
            ("pbkdf2_sha1$", Digest::Sha1),
        ] {
            if let Some(rest) = stored.strip_prefix(prefix) {
                return parse_django_pbkdf2(rest, digest);
            }
        }
        Err(Refused::UnknownFormat)
    }

    /// The scheme's name, as the import report counts rows by it.
    pub fn scheme(&self) -> &'static str {
        match self {
            LegacyHash::Pbkdf2 { scheme, .. } => scheme,
            LegacyHash::WerkzeugScrypt { .. } => "werkzeug-scrypt",
            LegacyHash::Bcrypt { .. } => "bcrypt",
        }
    }

    /// Whether `password` is the one hashed. CPU-bound: callers run it in
    /// the hashing pool.
    pub fn verify(&self, password: &str) -> bool {
        let password = password.as_bytes();
        match self {
            LegacyHash::Pbkdf2 {
                digest,
                iterations,
                salt,
                expected,
                ..
            } => {
                let mut out = vec![0u8; expected.len()];
                digest.pbkdf2(password, salt, *iterations, &mut out);
                bool::from(out.ct_eq(expected))
            }
            LegacyHash::WerkzeugScrypt {
                log_n,
                r,
                p,
                salt,
                expected,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, expected.len()) else {
                    return false;
                };
                let mut out = vec![0u8; expected.len()];
                scrypt::scrypt(password, salt.as_bytes(), &params, &mut out).is_ok()
                    && bool::from(out.ct_eq(expected))
            }
            LegacyHash::Bcrypt { stored } => {
                let read = &password[..password.len().min(BCRYPT_MAX_PASSWORD_BYTES)];
                bcrypt::verify(read, stored).unwrap_or(false)
            }
        }
    }
}

/// The scheme of a stored hash, as the import report counts it, or why a
/// login could never be checked against it: every format gatehouse
/// verifies, argon2 included, within the cost limits.
pub fn scheme_of(stored: &str) -> Result<&'static str, Refused> {
    if !stored.starts_with("$argon2") {
        return LegacyHash::parse(stored).map(|legacy| legacy.scheme());
    }
    let malformed = |_| Refused::Malformed("argon2");
    let parsed = argon2::PasswordHash::new(stored).map_err(malformed)?;
    let algorithm = argon2::Algorithm::try_from(parsed.algorithm).map_err(malformed)?;
    argon2_params(&parsed)?;
    argon2_version(&parsed)?;
    let (Some(salt), Some(_)) = (parsed.salt, parsed.hash) else {
        return Err(Refused::Malformed("argon2"));
    };
    // The argon2 crate verifies with salts of 8 bytes or more only.
    let mut salt_bytes = [0u8; 64];
    if salt.decode_b64(&mut salt_bytes).map_err(malformed)?.len() < 8 {
        return Err(Refused::Malformed("argon2"));
    }
    Ok(match algorithm {
        argon2::Algorithm::Argon2d => "argon2d",
        argon2::Algorithm::Argon2i => "argon2i",
        argon2::Algorithm::Argon2id => "argon2id",
    })
}

/// The most lanes an argon2 hash may name. The argon2 crate multiplies the
/// parameters out, so absurd ones are refused before it sees them.
const MAX_ARGON2_LANES: u32 = 255;

/// The parameters of an argon2 PHC string, within the cost limits.
pub fn argon2_params(parsed: &argon2::PasswordHash) -> Result<argon2::Params, Refused> {
    // A name given twice would be checked here by its first value and used
    // by the argon2 crate by its last: refused.
    let names: Vec<&str> = parsed
        .params
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    if names
        .iter()
        .enumerate()
        .any(|(i, name)| names[..i].contains(name))
    {
        return Err(Refused::Malformed("argon2"));
    }
    let number = |name: &str| parsed.params.get_decimal(name);
    if let (Some(memory_kib), Some(passes)) = (number("m"), number("t")) {
        check_argon2_cost(memory_kib, passes)?;
    }
    if let Some(lanes) = number("p").filter(|&p| p > MAX_ARGON2_LANES) {
        return Err(Refused::TooCostly {
            scheme: "argon2",
            cost: format!("p={lanes}"),
        });
    }
    let params = argon2::Params::try_from(parsed).map_err(|_| Refused::Malformed("argon2"))?;
    check_argon2_cost(params.m_cost(), params.t_cost())?;
    Ok(params)
}

/// The argon2 version a PHC string names: 0x10 when it names none, as the
/// reference implementation (and so argon2-cffi and passlib) reads strings
/// written before versions were; an unknown one is malformed.
pub fn argon2_version(parsed: &argon2::PasswordHash) -> Result<argon2::Version, Refused> {
    parsed.version.map_or(Ok(argon2::Version::V0x10), |v| {
        argon2::Version::try_from(v).map_err(|_| Refused::Malformed("argon2"))
    })
}

/// Refuses argon2 parameters over the limits (memory in KiB, passes).
pub fn check_argon2_cost(memory_kib: u32, passes: u32) -> Result<(), Refused> {
    if u64::from(memory_kib) * 1024 > MAX_MEMORY_BYTES || passes > MAX_ARGON2_PASSES {
        return Err(Refused::TooCostly {
            scheme: "argon2",
            cost: format!("m={memory_kib} KiB, t={passes}"),
        });
    }
    Ok(())
}

/// `<salt>$<hex>` after a Werkzeug method: the salt and the digest bytes.
fn werkzeug_salt_and_hex(rest: &str, scheme: &'static str) -> Result<(String, Vec<u8>), Refused> {
    let mut parts = rest.splitn(2, '$');
    let (Some(salt), Some(hex)) = (parts.next(), parts.next()) else {
        return Err(Refused::Malformed(scheme));
    };
    let expected = decode_hex(hex).ok_or(Refused::Malformed(scheme))?;
    if salt.is_empty() || salt.contains('$') || expected.is_empty() {
        return Err(Refused::Malformed(scheme));
    }
    Ok((salt.to_owned(), expected))
}

fn parse_werkzeug_pbkdf2(rest: &str) -> Result<LegacyHash, Refused> {
    const SCHEME: &str = "werkzeug-pbkdf2";
    let (method, rest) = rest.split_once('$').ok_or(Refused::Malformed(SCHEME))?;
    let mut args = method.split(':');
    let digest = args
        .next()
        .and_then(Digest::parse)
        .ok_or(Refused::Malformed(SCHEME))?;
    let iterations = match args.next() {
        None => WERKZEUG_DEFAULT_ITERATIONS,
        Some(count) => count.parse().map_err(|_| Refused::Malformed(SCHEME))?,
    };
    if args.next().is_some() || iterations == 0 {
        return Err(Refused::Malformed(SCHEME));
    }
    check_pbkdf2_cost(SCHEME, iterations)?;
    let (salt, expected) = werkzeug_salt_and_hex(rest, SCHEME)?;
    pbkdf2(SCHEME, digest, iterations, salt.into_bytes(), expected)
}

fn parse_werkzeug_scrypt(rest: &str) -> Result<LegacyHash, Refused> {
    const SCHEME: &str = "werkzeug-scrypt";
    let (method, rest) = rest.split_once('$').ok_or(Refused::Malformed(SCHEME))?;
    let numbers: Vec<u64> = method
        .split(':')
        .map(|n| n.parse::<u64>().map_err(|_| Refused::Malformed(SCHEME)))
        .collect::<Result<_, _>>()?;
    let [n, r, p] = numbers[..] else {
        return Err(Refused::Malformed(SCHEME));
    };
    if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 {
        return Err(Refused::Malformed(SCHEME));
    }
    // scrypt's working memory is 128·n·r bytes, p times over when run in
    // parallel; counted as if it were.
    let memory = 128u128 * u128::from(n) * u128::from(r) * u128::from(p);
    if memory > u128::from(MAX_MEMORY_BYTES) {
        return Err(Refused::TooCostly {
            scheme: SCHEME,
            cost: format!("n={n}, r={r}, p={p}"),
        });
    }
    let (salt, expected) = werkzeug_salt_and_hex(rest, SCHEME)?;
    // Werkzeug always asks for 64 bytes; a shorter digest would be a prefix
    // of the real one, and must not pass for it.
    if expected.len() != WERKZEUG_SCRYPT_LEN {
        return Err(Refused::Malformed(SCHEME));
    }
    let (log_n, r, p) = (n.trailing_zeros() as u8, r as u32, p as u32);
    // Parameters scrypt itself refuses (n of 2^(16·r) or more) could
    // never verify: malformed, not a password that fails.
    scrypt::Params::new(log_n, r, p, WERKZEUG_SCRYPT_LEN)
        .map_err(|_| Refused::Malformed(SCHEME))?;
    Ok(LegacyHash::WerkzeugScrypt {
        log_n,
        r,
        p,
        salt,
        expected,
    })
}

/// Whether `text` is bcrypt's base64 (`./A-Za-z0-9`) with the spare low
/// bits of its last character zero, as bcrypt writes it and the bcrypt
/// crate insists when it verifies: 22 salt characters carry 16 bytes, 31
/// digest characters 23.
fn bcrypt_base64_is_canonical(text: &str) -> bool {
    const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let indexes: Option<Vec<usize>> = text
        .bytes()
        .map(|b| ALPHABET.iter().position(|&a| a == b))
        .collect();
    let Some(indexes) = indexes else {
        return false;
    };
    let spare_bits = (text.len() * 6) % 8;
    indexes
        .last()
        .is_some_and(|last| last % (1 << spare_bits) == 0)
}

fn parse_bcrypt(stored: &str) -> Result<LegacyHash, Refused> {
    const SCHEME: &str = "bcrypt";
    // `$2b$12$` + 22 characters of salt + 31 of hash.
    let cost: u32 = stored
        .get(4..6)
        .and_then(|c| c.parse().ok())
        .ok_or(Refused::Malformed(SCHEME))?;
    if stored.len() != 60 || stored.as_bytes()[6] != b'$' || cost < 4 {
        return Err(Refused::Malformed(SCHEME));
    }
    if cost > MAX_BCRYPT_COST {
        return Err(Refused::TooCostly {
            scheme: SCHEME,
            cost: format!("cost {cost}"),
        });
    }
    // The bcrypt crate reads the salt and hash; a string it cannot read, or
    // one outside bcrypt's alphabet, is malformed, not a wrong password.
    if !bcrypt_base64_is_canonical(&stored[7..29]) || !bcrypt_base64_is_canonical(&stored[29..]) {
        return Err(Refused::Malformed(SCHEME));
    }
    stored
        .parse::<bcrypt::HashParts>()
        .map_err(|_| Refused::Malformed(SCHEME))?;
    Ok(LegacyHash::Bcrypt {
        stored: stored.to_owned(),
    })
}

fn parse_passlib_pbkdf2(rest: &str, digest: Digest) -> Result<LegacyHash, Refused> {
    const SCHEME: &str = "passlib-pbkdf2";
    let (iterations, salt, checksum) = rounds_salt_checksum(SCHEME, rest)?;
    let ab64 = |text: &str| STANDARD_NO_PAD.decode(text.replace('.', "+")).ok();
    let salt = ab64(salt).ok_or(Refused::Malformed(SCHEME))?;
    let expected = ab64(checksum).ok_or(Refused::Malformed(SCHEME))?;
    pbkdf2(SCHEME, digest, iterations, salt, expected)
}

fn parse_django_pbkdf2(rest: &str, digest: Digest) -> Result<LegacyHash, Refused> {
    const SCHEME: &str = "django-pbkdf2";
    let (iterations, salt, checksum) = rounds_salt_checksum(SCHEME, rest)?;
    if salt.is_empty() {
        return Err(Refused::Malformed(SCHEME));
    }
    let expected = STANDARD
        .decode(checksum)
        .map_err(|_| Refused::Malformed(SCHEME))?;
    pbkdf2(
        SCHEME,
        digest,
        iterations,
        salt.as_bytes().to_vec(),
        expected,
    )
}

/// `<rounds>$<salt>$<checksum>`, as passlib and Django write PBKDF2 after
/// their prefix, with the rounds read and within the limit.
fn rounds_salt_checksum<'a>(
    scheme: &'static str,
    rest: &'a str,
) -> Result<(u32, &'a str, &'a str), Refused> {
    let parts: Vec<&str> = rest.split('$').collect();
    let [rounds, salt, checksum] = parts[..] else {
        return Err(Refused::Malformed(scheme));
    };
    let iterations: u32 = rounds.parse().map_err(|_| Refused::Malformed(scheme))?;
    if iterations == 0 {
        return Err(Refused::Malformed(scheme));
    }
    check_pbkdf2_cost(scheme, iterations)?;
    Ok((iterations, salt, checksum))
}

/// A PBKDF2 hash whose digest is as long as the HMAC's output: every
/// library here stores it whole, and a shorter one would be a prefix of
/// the real one, which must not pass for it.
fn pbkdf2(
    scheme: &'static str,
    digest: Digest,
    iterations: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
) -> Result<LegacyHash, Refused> {
    if expected.len() != digest.output_len() {
        return Err(Refused::Malformed(scheme));
    }
    Ok(LegacyHash::Pbkdf2 {
        scheme,
        digest,
        iterations,
        salt,
        expected,
    })
}

fn check_pbkdf2_cost(scheme: &'static str, iterations: u32) -> Result<(), Refused> {
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Err(Refused::TooCostly {
            scheme,
            cost: format!("{iterations} iterations"),
        });
    }
    Ok(())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vector {
        scheme: String,
        library: String,
        password: String,
        hash: String,
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str(include_str!("../../tests/fixtures/legacy_hashes.json"))
            .expect("the fixture parses")
    }

    #[test]
    fn every_library_made_legacy_hash_verifies_and_a_wrong_password_fails() {
        let vectors = vectors();
        let legacy: Vec<&Vector> = vectors
            .iter()
            .filter(|v| !v.hash.starts_with("$argon2"))
            .collect();
        assert!(legacy.len() >= 40, "the fixture covers every format");
        for v in legacy {
            let parsed = LegacyHash::parse(&v.hash)
                .unwrap_or_else(|e| panic!("{} ({}): {e}: {}", v.scheme, v.library, v.hash));
            assert!(parsed.verify(&v.password), "{} ({})", v.scheme, v.library);
            assert!(
                !parsed.verify(&format!("!{}", v.password)),
                "{} ({}) with a wrong password",
                v.scheme,
                v.library
            );
        }
    }

    #[test]
    fn every_library_made_hash_has_the_scheme_its_library_wrote() {
        for v in vectors() {
            let scheme =
                scheme_of(&v.hash).unwrap_or_else(|e| panic!("{} ({}): {e}", v.scheme, v.library));
            // The fixture names digests and variants; the scheme names the
            // format (`werkzeug-pbkdf2-sha256` is `werkzeug-pbkdf2`).
            assert!(v.scheme.starts_with(scheme), "{} is {scheme}", v.scheme);
        }
        for costly in [
            "$argon2id$v=19$m=524288,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=65536,t=1,p=536870912$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(
                matches!(scheme_of(costly), Err(Refused::TooCostly { .. })),
                "{costly}"
            );
        }
        // Strings that parse but could never verify are refused at import.
        let never = [
            "$argon2id$v=99$m=4096,t=2,p=2$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
            format!("scrypt:65536:1:1$salt${}", "00".repeat(64)),
            format!("$2b$06${}", "!".repeat(53)),
            // Spare bits set in the salt's or the digest's last character.
            "$2b$06$9cGybIauiGOaiIPsIt3p3PgwS/y5zMWw7eaw4Dr/bzHf5RYLJLX.C".to_owned(),
            "$2b$06$9cGybIauiGOaiIPsIt3p3OgwS/y5zMWw7eaw4Dr/bzHf5RYLJLX.D".to_owned(),
            // A salt under 8 bytes; a parameter given twice.
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$0/AI/VyZ98JdEs3B1qr72Q".to_owned(),
            "$argon2id$v=19$m=4096,t=2,p=1,p=536870912$c2FsdHNhbHRzYWx0$zg63YAcgCbVpYZTV6a36Vbq8OsCCT2UQWoqn+5I187c".to_owned(),
        ];
        for stored in &never {
            assert!(
                matches!(scheme_of(stored), Err(Refused::Malformed(_))),
                "{stored}"
            );
        }
        for malformed in [
            "$argon2id$",
            "$argon2id$v=19$m=1024,t=1,p=1$",
            "$argon2x$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        ] {
            assert!(scheme_of(malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn bcrypt_reads_the_first_72_bytes_as_bcrypt_always_did() {
        let long = vectors()
            .into_iter()
            .find(|v| v.scheme.starts_with("bcrypt") && v.password.len() > 72)
            .expect("a long bcrypt password in the fixture");
        let parsed = LegacyHash::parse(&long.hash).unwrap();
        let mut other = long.password.clone();
        other.push_str("anything after byte 72");
        assert!(parsed.verify(&other));
    }

    #[test]
    fn a_changed_digest_does_not_verify() {
        for v in vectors()
            .iter()
            .filter(|v| v.scheme.starts_with("werkzeug"))
        {
            let last = v.hash.chars().last().unwrap();
            let other = if last == '0' { '1' } else { '0' };
            let changed = format!("{}{other}", &v.hash[..v.hash.len() - 1]);
            assert!(
                !LegacyHash::parse(&changed).unwrap().verify(&v.password),
                "{changed}"
            );
        }
    }

    #[test]
    fn costs_over_the_limits_are_refused() {
        let over = [
            "pbkdf2:sha256:10000001$salt$00",
            "scrypt:1048576:8:1$salt$00",
            "$2b$17$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
            "$pbkdf2-sha256$20000000$c2FsdA$AAAA",
            "pbkdf2_sha256$99999999$salt$AAAA",
        ];
        for stored in over {
            assert!(
                matches!(LegacyHash::parse(stored), Err(Refused::TooCostly { .. })),
                "{stored}: {:?}",
                LegacyHash::parse(stored)
            );
        }
        assert!(check_argon2_cost(262_145, 2).is_err());
        assert!(check_argon2_cost(19_456, 11).is_err());
        assert!(check_argon2_cost(262_144, 10).is_ok());
    }

    #[test]
    fn unknown_and_malformed_strings_are_refused() {
        for stored in [
            "",
            "plaintext",
            "md5$salt$abc",
            "sha1$salt$abc",
            "pbkdf2:md5:1000$salt$00",
            "pbkdf2:sha256:0$salt$00",
            "pbkdf2:sha256:1000$salt$zz",
            "pbkdf2:sha256:1000$$00",
            "scrypt:1000:8:1$salt$00",
            "scrypt:16384:8$salt$00",
            "$2b$12$short",
            "$pbkdf2-sha256$1000$c2FsdA",
            "pbkdf2_sha256$1000$salt$not base64!",
        ] {
            assert!(LegacyHash::parse(stored).is_err(), "{stored}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Any string at all: parsed or refused, never a panic, and a
            /// parsed one verifies or fails, never panics.
            #[test]
            fn any_string_is_parsed_or_refused(stored in "\\PC{0,80}") {
                if let Ok(parsed) = LegacyHash::parse(&stored) {
                    let _ = parsed.verify("password");
                }
            }

            /// What an import checks a row's hash with: any string, argon2
            /// or not, gets a scheme or a reason, never a panic.
            #[test]
            fn any_string_gets_a_scheme_or_a_reason(stored in "(\\$argon2(id|i|d)\\$)?\\PC{0,100}") {
                let _ = scheme_of(&stored);
            }

            /// Every genuine hash cut short is refused or fails to verify:
            /// never a panic, never a match.
            #[test]
            fn truncated_hashes_never_verify(index in 0usize..64, cut in 0usize..120) {
                let vectors = vectors();
                let legacy: Vec<&Vector> = vectors.iter().filter(|v| !v.hash.starts_with("$argon2")).collect();
                let v = legacy[index % legacy.len()];
                let truncated = &v.hash[..cut.min(v.hash.len() - 1)];
                if let Ok(parsed) = LegacyHash::parse(truncated) {
                    prop_assert!(!parsed.verify(&v.password), "{}", truncated);
                }
            }
        }
    }
}
