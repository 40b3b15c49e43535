//! Encrypted PKCS#8 private keys (`-----BEGIN ENCRYPTED PRIVATE KEY-----`), which Kafka's PEM
//! key stores allow with `ssl.key.password`: PBES2 (openssl 3's default: PBKDF2 and AES-CBC)
//! through the `pkcs5` crate, and PKCS#12's PBE-SHA1-3DES (`openssl pkcs8 -topk8 -v1
//! PBE-SHA1-3DES`, the form a Kafka broker on JDK 17 reads) with the PKCS#12 key derivation of
//! the `pkcs12` crate and 3DES-CBC.

use cbc::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
use der::asn1::OctetString;
use der::{Decode, Encode, Reader, SliceReader};
use spki::AlgorithmIdentifierOwned;

/// id-PBES2 (RFC 8018).
const PBES2: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
/// pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292).
const PBE_SHA1_3DES: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
/// A bound on the key derivation's cost, so that a hostile file cannot stall the start.
const MAX_ITERATIONS: u32 = 10_000_000;

/// What a failed decryption says: a wrong password is the likely cause (the padding check
/// fails), and the error itself tells no more.
fn wrong<E>(_: E) -> String {
    "cannot decrypt the private key: wrong ssl.key.password?".to_string()
}

/// The two fields of an `EncryptedPrivateKeyInfo` (DER, RFC 5208): the encryption algorithm
/// and the encrypted data. JKS's protected keys have the same structure.
pub(crate) fn encrypted_private_key_info(
    der: &[u8],
) -> Result<(AlgorithmIdentifierOwned, OctetString), String> {
    let mut reader = SliceReader::new(der).map_err(|e| e.to_string())?;
    reader
        .sequence(|r| {
            let algorithm = AlgorithmIdentifierOwned::decode(r)?;
            let data = OctetString::decode(r)?;
            Ok::<_, der::Error>((algorithm, data))
        })
        .map_err(|e| format!("not an EncryptedPrivateKeyInfo: {e}"))
}

/// The PKCS#8 `PrivateKeyInfo` inside an `EncryptedPrivateKeyInfo` (DER), or why not.
pub fn decrypt_private_key(der: &[u8], password: &str) -> Result<Vec<u8>, String> {
    let (algorithm, encrypted) = encrypted_private_key_info(der)?;
    let params = algorithm
        .parameters
        .as_ref()
        .ok_or("the encryption algorithm has no parameters")?
        .to_der()
        .map_err(|e| e.to_string())?;
    match algorithm.oid {
        PBES2 => {
            let params = pkcs5::pbes2::Parameters::from_der(&params).map_err(|e| e.to_string())?;
            if let pkcs5::pbes2::Kdf::Pbkdf2(p) = &params.kdf {
                if p.iteration_count > MAX_ITERATIONS {
                    return Err(format!(
                        "{} PBKDF2 iterations is too many",
                        p.iteration_count
                    ));
                }
            }
            params
                .decrypt(password.as_bytes(), encrypted.as_bytes())
                .map_err(wrong)
        }
        PBE_SHA1_3DES => {
            let mut reader = SliceReader::new(&params).map_err(|e| e.to_string())?;
            let (salt, iterations) = reader
                .sequence(|r| {
                    let salt = OctetString::decode(r)?;
                    let iterations: i32 = r.decode()?;
                    Ok::<_, der::Error>((salt, iterations))
                })
                .map_err(|e| format!("PBE parameters: {e}"))?;
            if iterations <= 0 || iterations as u32 > MAX_ITERATIONS {
                return Err(format!("{iterations} PBE iterations is out of range"));
            }
            let derive = |kind, len| {
                pkcs12::kdf::derive_key_utf8::<sha1::Sha1>(
                    password,
                    salt.as_bytes(),
                    kind,
                    iterations,
                    len,
                )
                .map_err(|e| e.to_string())
            };
            let key = derive(pkcs12::kdf::Pkcs12KeyType::EncryptionKey, 24)?;
            let iv = derive(pkcs12::kdf::Pkcs12KeyType::Iv, 8)?;
            cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                .map_err(|e| e.to_string())?
                .decrypt_padded_vec::<Pkcs7>(encrypted.as_bytes())
                .map_err(wrong)
        }
        other => Err(format!(
            "the private key is encrypted with {other}; gregor reads PBES2 and PBE-SHA1-3DES"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// One P-256 key as `openssl pkcs8 -topk8` writes it: unencrypted, with PBES2 (openssl's
    /// default) and with `-v1 PBE-SHA1-3DES`, both with the password `s3cret`.
    const PLAIN: &[&str] = &[
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZt+pv1MTp/oQroPz",
        "3HGcrbL5dOYk4vQqWWnzylQerbWhRANCAATjH0KvBi8JvqiNmKcGWi+npheSqvv8",
        "+Rsr35aJ0F9OgT5/RAwpARXcYcfUXvEa6MRvavfHdti3BBaM2V4tXCXh",
    ];
    const PBES2_KEY: &[&str] = &[
        "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAiBYvw+TpkQngICCAAw",
        "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEDFc/0J4hwwlJeLPsNQlYWwEgZCN",
        "NGpglxktkxB0ZRLnKGKmLvUpig07QvHTOb+oY0qLzdch7wvmpJBFGuepKNhwSfTo",
        "DPjksQhSl6JUgi1WOJqv1VZ9w7381zI0L8tcEpiiULInw651EyseashS5q5E57V9",
        "8xy/hKj89hF/PuF8rzAvrROpEXmDr12Z8kGtgQjSTgTrc/GsFJX0BuJ1hPoW0mA=",
    ];
    const SHA1_3DES_KEY: &[&str] = &[
        "MIGxMBwGCiqGSIb3DQEMAQMwDgQIl2lNK7WVGFQCAggABIGQmmqNqAvMsxxvgJ37",
        "ZfExCSpVCGM2h0ivGM+5Uc4tKmIOqeQ3YM1ex28zViYJGuJfD9qSbcs3O7McPMFk",
        "n8pNr0RW1D5Xrm/sw51yfXr7Ju6oRnuYZZYEkR9aOxbNegXNNnm1c++GNVoAfbLN",
        "wbJpOEp9VpbKh24LxRzl+rXX2IG5zaWwO4AkoMxuSuehzaMJ",
    ];

    fn der(lines: &[&str]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(lines.concat())
            .unwrap()
    }

    #[test]
    fn both_schemes_decrypt_to_the_same_key() {
        let plain = der(PLAIN);
        assert_eq!(
            decrypt_private_key(&der(PBES2_KEY), "s3cret").unwrap(),
            plain
        );
        assert_eq!(
            decrypt_private_key(&der(SHA1_3DES_KEY), "s3cret").unwrap(),
            plain
        );
    }

    #[test]
    fn a_wrong_password_or_a_plain_key_is_refused() {
        for key in [PBES2_KEY, SHA1_3DES_KEY] {
            let err = decrypt_private_key(&der(key), "wrong").unwrap_err();
            assert!(err.contains("ssl.key.password"), "{err}");
        }
        assert!(decrypt_private_key(&der(PLAIN), "s3cret").is_err());
    }
}
