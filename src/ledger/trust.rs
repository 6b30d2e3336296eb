//! Signed records: SSH signatures (the `ssh-keygen -Y sign` format, namespace
//! [`NAMESPACE`]) by keys listed in `.tagback.yml` `trusted_keys:`, one line
//! each in the format of git's `allowed_signers` file.
//!
//! `ssh-key` (RustCrypto) reads and writes the SSHSIG format: pure Rust, builds
//! on Rust 1.95, verifies what `ssh-keygen -Y sign` writes and the other way
//! round (tests/cli.rs checks both with the real `ssh-keygen`).

use std::path::Path;

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSH signature namespace of tagback records.
pub const NAMESPACE: &str = "tagback-record";

/// One line of `trusted_keys:`: who, and their ed25519 key.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The principals (e-mail addresses) the line names.
    pub principals: String,
    key: PublicKey,
}

/// Parse `trusted_keys:` lines (`principals [namespaces="…"] ssh-ed25519 KEY
/// [comment]`). Only ed25519 keys; a `namespaces=` option must allow
/// [`NAMESPACE`]; other options (`cert-authority`, `valid-after`, …) are
/// refused rather than ignored. Errors name the entry (1-based).
pub fn parse_trusted_keys(lines: &[String]) -> Result<Vec<TrustedKey>, String> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let mut words = line.split_whitespace();
        let principals = words
            .next()
            .ok_or_else(|| format!("trusted_keys entry {n} is empty"))?;
        let mut rest: Vec<&str> = words.collect();
        if let Some(first) = rest.first()
            && !first.starts_with("ssh-")
            && !first.starts_with("ecdsa-")
            && !first.starts_with("sk-")
        {
            for option in split_options(first) {
                match option.split_once('=') {
                    Some(("namespaces", list)) => {
                        let list = list.trim_matches('"');
                        if !list.split(',').any(|ns| ns == NAMESPACE) {
                            return Err(format!(
                                "trusted_keys entry {n} ({principals}) does not allow the namespace {NAMESPACE}"
                            ));
                        }
                    }
                    _ => {
                        return Err(format!(
                            "trusted_keys entry {n} ({principals}) has the option {option:?}, which tagback does not support; list a plain ssh-ed25519 key"
                        ));
                    }
                }
            }
            rest.remove(0);
        }
        let key_text = rest.join(" ");
        let key = PublicKey::from_openssh(&key_text).map_err(|e| {
            format!("trusted_keys entry {n} ({principals}) is not an SSH public key: {e}")
        })?;
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(format!(
                "trusted_keys entry {n} ({principals}) is a {} key; tagback trusts ssh-ed25519 keys only",
                key.algorithm()
            ));
        }
        out.push(TrustedKey {
            principals: principals.to_string(),
            key,
        });
    }
    Ok(out)
}

/// The comma-separated options of an `allowed_signers` line (commas inside
/// double quotes do not separate).
fn split_options(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// Sign `message` with the OpenSSH private key in `path`; returns the armored
/// signature (`-----BEGIN SSH SIGNATURE-----`).
pub fn sign(path: &Path, message: &[u8]) -> Result<String, String> {
    let key = PrivateKey::read_openssh_file(path)
        .map_err(|e| format!("{} is not an OpenSSH private key: {e}", path.display()))?;
    if key.is_encrypted() {
        return Err(format!(
            "{} is protected by a passphrase, which tagback does not decrypt; sign with ssh-keygen instead (see \"Trust model\" in the README)",
            path.display()
        ));
    }
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(format!(
            "{} is a {} key; tagback signs with ssh-ed25519 keys only",
            path.display(),
            key.algorithm()
        ));
    }
    key.sign(NAMESPACE, HashAlg::Sha512, message)
        .and_then(|sig| sig.to_pem(LineEnding::LF))
        .map_err(|e| format!("cannot sign with {}: {e}", path.display()))
}

/// Which trusted key signed `message` (its principals), or why none did.
pub fn verify(keys: &[TrustedKey], message: &[u8], armored: &str) -> Result<String, String> {
    let sig = SshSig::from_pem(armored.trim())
        .map_err(|e| format!("its signature is not an SSH signature: {e}"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "it is signed for the namespace {:?}, not {NAMESPACE}",
            sig.namespace()
        ));
    }
    let Some(signer) = keys.iter().find(|k| k.key.key_data() == sig.public_key()) else {
        return Err(format!(
            "it is signed by {}, which is not in trusted_keys",
            sig.public_key().fingerprint(HashAlg::Sha256)
        ));
    };
    signer.key.verify(NAMESPACE, message, &sig).map_err(|_| {
        format!(
            "its signature by {} does not match its content (edited after signing)",
            signer.principals
        )
    })?;
    Ok(signer.principals.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn allowed_signers_lines() {
        let ok = parse_trusted_keys(&[
            format!("alice@example.com {KEY} laptop"),
            format!("bob@example.com,ops@example.com namespaces=\"git,{NAMESPACE}\" {KEY}"),
        ])
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].principals, "bob@example.com,ops@example.com");
        for (line, why) in [
            (format!("a@b namespaces=\"git\" {KEY}"), "namespace"),
            (format!("a@b cert-authority {KEY}"), "does not support"),
            (
                "a@b ssh-ed25519 AAAAnotbase64".to_string(),
                "not an SSH public key",
            ),
            (String::new(), "empty"),
        ] {
            let err = parse_trusted_keys(std::slice::from_ref(&line)).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn garbage_signatures_are_refused() {
        let keys = parse_trusted_keys(&[format!("a@b {KEY}")]).unwrap();
        assert!(verify(&keys, b"m", "not a signature").is_err());
        assert!(verify(&keys, b"m", "").is_err());
    }
}
