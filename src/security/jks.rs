//! Java KeyStore files (`ssl.keystore.type=JKS` / `ssl.truststore.type=JKS`, Kafka's default
//! store type): the private key entries with their certificate chains, and the trusted
//! certificate entries. Read as the JDK's `JavaKeyStore` reads them; no maintained Rust crate
//! reads the format (see ARCHITECTURE.md), and it is small:
//!
//! ```text
//! u32 magic 0xFEEDFEED, u32 version (1 or 2), u32 entry count, then per entry:
//!   u32 tag, UTF alias, u64 creation time (ms)
//!   tag 1 (private key): u32 length + EncryptedPrivateKeyInfo (DER), u32 chain length,
//!                        per certificate: [v2: UTF type] u32 length + DER
//!   tag 2 (trusted cert): [v2: UTF type] u32 length + DER
//! 20 bytes: SHA-1(password as UTF-16BE || "Mighty Aphrodite" || everything before)
//! ```
//!
//! (UTF: u16 length + modified UTF-8.) A private key is protected with Sun's own scheme
//! (`KeyProtector`, OID 1.3.6.1.4.1.42.2.17.1.1): `salt(20) || key XOR stream || check(20)`,
//! the stream being SHA-1 rounds over the password and the previous digest, starting from the
//! salt, and the check SHA-1(password || key).

use sha1::{Digest, Sha1};

use super::encrypted_key::encrypted_private_key_info;

const MAGIC: u32 = 0xFEED_FEED;
/// JCEKS, the JDK's other proprietary format (3DES-protected keys): not read.
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
const TAG_PRIVATE_KEY: u32 = 1;
const TAG_TRUSTED_CERT: u32 = 2;
/// Sun's key protection algorithm.
const KEY_PROTECTOR: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.42.2.17.1.1");
/// The whitener the JDK mixes into the integrity digest.
const WHITENER: &[u8] = b"Mighty Aphrodite";
const DIGEST_LEN: usize = 20;

/// A private key entry: its alias, its protected key (DER `EncryptedPrivateKeyInfo`) and its
/// certificate chain (DER, leaf first).
pub struct PrivateKeyEntry {
    pub alias: String,
    protected_key: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
}

impl PrivateKeyEntry {
    /// The PKCS#8 `PrivateKeyInfo` (DER), unprotected with `password` (Kafka's
    /// `ssl.key.password`, else the store's password).
    pub fn private_key(&self, password: &str) -> Result<Vec<u8>, String> {
        unprotect_key(&self.protected_key, password)
    }
}

/// What a JKS file holds.
pub struct JksStore {
    pub private_keys: Vec<PrivateKeyEntry>,
    /// Trusted certificates (DER), in file order.
    pub trusted: Vec<Vec<u8>>,
}

/// Whether `bytes` are a JKS file (by its magic number).
pub fn is_jks(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == MAGIC
}

/// Reads a JKS file. With a password its integrity digest is checked (a wrong password fails
/// here, as in the JDK); without one, as the JDK allows for a truststore, it is not.
pub fn parse(bytes: &[u8], password: Option<&str>) -> Result<JksStore, String> {
    if bytes.len() < 12 + DIGEST_LEN {
        return Err("too short for a JKS store".into());
    }
    let (body, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    let mut r = Cursor { bytes: body, at: 0 };
    match r.u32()? {
        MAGIC => {}
        JCEKS_MAGIC => {
            return Err(
                "a JCEKS store, which gregor does not read (convert it with keytool \
                        -importkeystore -deststoretype PKCS12)"
                    .into(),
            )
        }
        _ => return Err("not a JKS store (wrong magic number)".into()),
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(format!("JKS version {version} is unknown"));
    }
    let count = r.u32()?;
    let mut store = JksStore {
        private_keys: Vec::new(),
        trusted: Vec::new(),
    };
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        let _created_ms = r.u64()?;
        match tag {
            TAG_PRIVATE_KEY => {
                let protected_key = r.block()?.to_vec();
                let n = r.u32()?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    if version == 2 {
                        r.utf()?;
                    }
                    chain.push(r.block()?.to_vec());
                }
                store.private_keys.push(PrivateKeyEntry {
                    alias,
                    protected_key,
                    chain,
                });
            }
            TAG_TRUSTED_CERT => {
                if version == 2 {
                    r.utf()?;
                }
                store.trusted.push(r.block()?.to_vec());
            }
            other => return Err(format!("entry {alias}: unknown JKS entry tag {other}")),
        }
    }
    if r.at != body.len() {
        return Err(format!("{} bytes after the last entry", body.len() - r.at));
    }
    if let Some(password) = password {
        if sha1(&[&utf16be(password), WHITENER, body]) != digest {
            return Err(
                "the JKS store's integrity check failed: wrong password, or the file was changed"
                    .into(),
            );
        }
    }
    Ok(store)
}

/// The password as Java's `char[]` bytes.
fn utf16be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// SHA-1 over the parts, in order.
fn sha1(parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut h = Sha1::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// Sun's key protector stream XORed onto `data`: each 20-byte block with SHA-1 of the password
/// and the previous block's digest, the first one's being the salt. The same XOR protects and
/// recovers.
fn key_stream_xor(password: &[u8], salt: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut digest = sha1(&[password, salt]);
    for chunk in data.chunks(DIGEST_LEN) {
        out.extend(chunk.iter().zip(&digest).map(|(a, b)| a ^ b));
        digest = sha1(&[password, &digest]);
    }
    out
}

/// Sun's `KeyProtector.recover`.
fn unprotect_key(der: &[u8], password: &str) -> Result<Vec<u8>, String> {
    let (algorithm, data) =
        encrypted_private_key_info(der).map_err(|e| format!("the protected key: {e}"))?;
    if algorithm.oid != KEY_PROTECTOR {
        return Err(format!(
            "the key is protected with {}, not the JKS key protector",
            algorithm.oid
        ));
    }
    let data = data.as_bytes();
    if data.len() < 2 * DIGEST_LEN {
        return Err("the protected key is too short".into());
    }
    let (salt, rest) = data.split_at(DIGEST_LEN);
    let (encrypted, check) = rest.split_at(rest.len() - DIGEST_LEN);
    let password = utf16be(password);
    let key = key_stream_xor(&password, salt, encrypted);
    if sha1(&[&password, &key]) != check {
        return Err("cannot recover the private key: wrong ssl.key.password?".into());
    }
    Ok(key)
}

/// Bounds-checked big-endian reads.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("the JKS store is truncated")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    /// A u32 length and that many bytes.
    fn block(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// Java's `writeUTF`: a u16 length and modified UTF-8 (read lossily: only aliases and
    /// certificate types use it).
    fn utf(&mut self) -> Result<String, String> {
        let b = self.take(2)?;
        let n = u16::from_be_bytes([b[0], b[1]]) as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written the way the JDK writes one, with one key entry (the key protected with
    /// `key_password`) and one trusted certificate.
    fn store(store_password: &str, key_password: &str, key: &[u8]) -> Vec<u8> {
        let utf = |s: &str| {
            let mut v = (s.len() as u16).to_be_bytes().to_vec();
            v.extend(s.as_bytes());
            v
        };
        let block = |b: &[u8]| {
            let mut v = (b.len() as u32).to_be_bytes().to_vec();
            v.extend(b);
            v
        };
        // KeyProtector.protect, with a fixed salt.
        let salt = [7u8; 20];
        let pw = utf16be(key_password);
        let mut data = salt.to_vec();
        data.extend(key_stream_xor(&pw, &salt, key));
        data.extend(sha1(&[&pw, key]));
        // EncryptedPrivateKeyInfo: SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING }.
        let oid = [
            0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01,
        ];
        let mut alg = vec![0x30, (oid.len() + 2) as u8];
        alg.extend(oid);
        alg.extend([0x05, 0x00]);
        // DER: definite lengths, short form below 128.
        let tlv = |tag: u8, content: &[u8]| {
            let mut v = vec![tag];
            match content.len() {
                n if n < 128 => v.push(n as u8),
                n => v.extend([0x81, n as u8]),
            }
            v.extend(content);
            v
        };
        let octets = tlv(0x04, &data);
        let epki = tlv(0x30, &[alg.as_slice(), octets.as_slice()].concat());

        let mut out = Vec::new();
        out.extend(MAGIC.to_be_bytes());
        out.extend(2u32.to_be_bytes());
        out.extend(2u32.to_be_bytes());
        out.extend(TAG_PRIVATE_KEY.to_be_bytes());
        out.extend(utf("broker"));
        out.extend(0u64.to_be_bytes());
        out.extend(block(&epki));
        out.extend(1u32.to_be_bytes());
        out.extend(utf("X.509"));
        out.extend(block(b"leaf-certificate"));
        out.extend(TAG_TRUSTED_CERT.to_be_bytes());
        out.extend(utf("ca"));
        out.extend(0u64.to_be_bytes());
        out.extend(utf("X.509"));
        out.extend(block(b"ca-certificate"));
        let digest = sha1(&[&utf16be(store_password), WHITENER, &out]);
        out.extend(digest);
        out
    }

    #[test]
    fn entries_and_the_key_come_back() {
        let key: Vec<u8> = (0..45u8).collect();
        let bytes = store("store-secret", "key-secret", &key);
        assert!(is_jks(&bytes));
        let s = parse(&bytes, Some("store-secret")).unwrap();
        assert_eq!(s.private_keys.len(), 1);
        assert_eq!(s.private_keys[0].alias, "broker");
        assert_eq!(s.private_keys[0].chain, vec![b"leaf-certificate".to_vec()]);
        assert_eq!(s.trusted, vec![b"ca-certificate".to_vec()]);
        assert_eq!(s.private_keys[0].private_key("key-secret").unwrap(), key);
        assert!(s.private_keys[0]
            .private_key("store-secret")
            .unwrap_err()
            .contains("wrong ssl.key.password"));
        // Without a password the digest is not checked; with a wrong one it fails.
        assert!(parse(&bytes, None).is_ok());
        assert!(parse(&bytes, Some("nope"))
            .err()
            .unwrap()
            .contains("integrity"));
    }

    #[test]
    fn damaged_stores_are_refused_without_panicking() {
        let bytes = store("pw", "pw", &[1, 2, 3]);
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len], None).is_err(), "truncated at {len}");
        }
        let mut flipped = bytes.clone();
        flipped[30] ^= 0xff;
        assert!(parse(&flipped, Some("pw")).is_err());
        let mut jceks = bytes.clone();
        jceks[..4].copy_from_slice(&JCEKS_MAGIC.to_be_bytes());
        assert!(parse(&jceks, None).err().unwrap().contains("JCEKS"));
        assert!(!is_jks(b"0\x82"));
    }
}
