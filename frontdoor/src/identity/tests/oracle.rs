//! An outside oracle: tokens signed by PyJWT (Debian's python3-jwt) with the committed test
//! keys pass the check, so the check agrees with another implementation and not only with the
//! signer written beside it.

use std::process::Command;

use super::*;

/// Debian's interpreter, where `apt-get install python3-jwt` puts the module (a `python3` on
/// the PATH may be another installation without it).
const PYTHON: &str = "/usr/bin/python3";

const SIGNER: &str = r#"
import json, sys, jwt
alg, pem, kid, claims = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
key = open(pem, "rb").read()
print(jwt.encode(claims, key, algorithm=alg, headers={"kid": kid}))
"#;

fn pyjwt(alg: &str, pem: &str, kid: &str) -> String {
    let has_module = Command::new(PYTHON)
        .args(["-c", "import jwt"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_module,
        "this test needs PyJWT: {PYTHON} -c 'import jwt' failed; install Debian's python3-jwt \
         (apt-get install python3-jwt)"
    );
    let out = Command::new(PYTHON)
        .args(["-c", SIGNER, alg, &format!("{}/{pem}", keys_dir()), kid])
        .arg(good_claims().to_string())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "PyJWT failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn tokens_signed_by_pyjwt_pass() {
    for (alg, pem, kid) in [
        ("RS256", "rsa2048.pem", "rsa"),
        ("ES256", "p256.pem", "p256"),
    ] {
        let t = pyjwt(alg, pem, kid);
        let who = run(&t).unwrap_or_else(|e| panic!("PyJWT's {alg} token {t}: {e:?}"));
        assert_eq!(who.sub, "alice");
        // And the same token with one signature bit flipped fails, so the pass above was earned.
        let (rest, sig) = t.rsplit_once('.').expect("three parts");
        let mut sig = crate::identity::b64::decode(sig, 4096).expect("base64url");
        sig[0] ^= 0x80;
        assert_invalid(&format!("{rest}.{}", encode(&sig)), "bad signature");
    }
}
