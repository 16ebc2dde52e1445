use super::*;

#[test]
fn drops_by_reason_add_up_to_the_total_and_name_each_reason_once() {
    let d = DropCounts {
        malformed: 1,
        unauthenticated: 2,
        bad_header: 4,
        replayed: 8,
        stale_generation: 16,
        implausible_generation: 32,
        rate_limited: 64,
        unvouched_sender: 128,
        unvouched_update: 100_000,
        malformed_membership: 256,
        trimmed_update: 200_000,
        bindings_full: 512,
        refused_proof: 1024,
        refused_state: 2048,
        unknown_kind: 4096,
        refused_membership: 8192,
    };
    let reasons = d.by_reason();
    assert_eq!(reasons.iter().map(|(_, n)| n).sum::<u64>(), d.total());
    let names: std::collections::BTreeSet<&str> = reasons.iter().map(|(r, _)| *r).collect();
    assert_eq!(names.len(), reasons.len());
}

const KEY: &str = "0123456789abcdef0123456789abcdef-cluster-key";
const OTHER_KEY: &str = "fedcba9876543210fedcba9876543210-other-key";

fn pair(name: &str, generation: u64) -> (Sealer, Opener) {
    let key = SealKey::derive(KEY).expect("key");
    (
        Sealer::new(key.clone(), name, generation).expect("sealer"),
        Opener::new(key),
    )
}

#[test]
fn round_trip_carries_sender_and_payload() {
    let (mut sealer, mut opener) = pair("pi-1", 7);
    let datagram = sealer.seal(b"hello").expect("seal");
    assert_eq!(datagram.len(), OVERHEAD + "pi-1".len() + 5);
    let opened = opener.open(&datagram).expect("open");
    assert_eq!(opened.sender, "pi-1");
    assert_eq!(opened.generation, 7);
    assert_eq!(opened.payload, b"hello");
    assert!(
        !datagram.windows(5).any(|w| w == b"hello"),
        "payload is not encrypted"
    );
    assert!(
        !datagram.windows(4).any(|w| w == b"pi-1"),
        "sender name is not encrypted"
    );
}

#[test]
fn short_key_is_refused() {
    assert!(matches!(
        SealKey::derive("short"),
        Err(SealError::KeyTooShort(5))
    ));
}

#[test]
fn oversized_payload_is_refused() {
    let (mut sealer, _) = pair("pi-1", 1);
    let max = sealer.max_payload();
    assert!(sealer.seal(&vec![0; max]).is_ok());
    assert!(matches!(
        sealer.seal(&vec![0; max + 1]),
        Err(SealError::TooLarge { .. })
    ));
}

#[test]
fn wrong_key_is_dropped() {
    let (mut sealer, _) = pair("pi-1", 1);
    let mut other = Opener::new(SealKey::derive(OTHER_KEY).expect("key"));
    let datagram = sealer.seal(b"secret").expect("seal");
    assert_eq!(other.open(&datagram), Err(Rejected::Unauthenticated));
    assert_eq!(other.drops().unauthenticated, 1);
}

#[test]
fn truncated_and_tampered_datagrams_are_dropped() {
    let (mut sealer, mut opener) = pair("pi-1", 1);
    let datagram = sealer.seal(b"payload").expect("seal");
    for len in 0..datagram.len() {
        assert!(opener.open(&datagram[..len]).is_err(), "truncated to {len}");
    }
    for i in 0..datagram.len() {
        let mut bad = datagram.clone();
        bad[i] ^= 0x40;
        assert!(opener.open(&bad).is_err(), "byte {i} flipped");
    }
    assert_eq!(opener.drops().total(), 2 * datagram.len() as u64);
    // The untouched datagram still opens: failed attempts left no replay state behind.
    assert!(opener.open(&datagram).is_ok());
}

#[test]
fn replays_are_dropped() {
    let (mut sealer, mut opener) = pair("pi-1", 1);
    let first = sealer.seal(b"one").expect("seal");
    let second = sealer.seal(b"two").expect("seal");
    assert!(opener.open(&second).is_ok());
    assert!(
        opener.open(&first).is_ok(),
        "reordered within the window is fine"
    );
    assert_eq!(opener.open(&first), Err(Rejected::Replayed));
    assert_eq!(opener.open(&second), Err(Rejected::Replayed));
    assert_eq!(opener.drops().replayed, 2);
}

#[test]
fn datagrams_behind_the_window_are_dropped() {
    let (mut sealer, mut opener) = pair("pi-1", 1);
    let old = sealer.seal(b"old").expect("seal");
    for _ in 0..WINDOW {
        let datagram = sealer.seal(b"newer").expect("seal");
        assert!(opener.open(&datagram).is_ok());
    }
    assert_eq!(opener.open(&old), Err(Rejected::Replayed));
}

#[test]
fn older_generation_is_dropped_after_restart() {
    let key = SealKey::derive(KEY).expect("key");
    let mut before = Sealer::new(key.clone(), "pi-1", 1).expect("sealer");
    let mut after = Sealer::new(key.clone(), "pi-1", 2).expect("sealer");
    let mut opener = Opener::new(key);
    let recorded = before.seal(b"old life").expect("seal");
    assert!(opener.open(&before.seal(b"x").expect("seal")).is_ok());
    let restarted = after.seal(b"new life").expect("seal");
    assert!(
        opener.open(&restarted).is_ok(),
        "counter restarts with a new generation"
    );
    assert_eq!(opener.open(&recorded), Err(Rejected::StaleGeneration));
}

#[test]
fn a_generation_far_ahead_is_dropped_and_does_not_lock_the_real_sender_out() {
    let key = SealKey::derive(KEY).expect("key");
    let mut opener = Opener::new(key.clone());
    let now = 1_700_000_000_000;
    let highest = crate::plausible::highest_generation(now);
    for generation in [u64::MAX, highest + 1] {
        let mut forged = Sealer::new(key.clone(), "pi-1", generation).expect("sealer");
        let datagram = forged.seal(b"I am pi-1").expect("seal");
        assert_eq!(
            opener.open_at(&datagram, now),
            Err(Rejected::ImplausibleGeneration)
        );
    }
    assert_eq!(opener.drops().implausible_generation, 2);
    assert_eq!(opener.drops().total(), 2);
    // The real board, at its boot counter, is still heard.
    let mut real = Sealer::new(key.clone(), "pi-1", 12).expect("sealer");
    assert!(opener.open_at(&real.seal(b"x").expect("seal"), now).is_ok());
    // A generation from a board whose clock is ahead, within the bound, is taken.
    let mut ahead = Sealer::new(key, "pi-2", highest).expect("sealer");
    assert!(opener
        .open_at(&ahead.seal(b"x").expect("seal"), now)
        .is_ok());
}

#[test]
fn tracked_senders_are_bounded() {
    let key = SealKey::derive(KEY).expect("key");
    let mut opener = Opener::new(key.clone());
    for i in 0..(MAX_TRACKED_SENDERS + 10) {
        let mut sealer = Sealer::new(key.clone(), &format!("n{i}"), 1).expect("sealer");
        assert!(opener.open(&sealer.seal(b"x").expect("seal")).is_ok());
    }
    assert_eq!(opener.windows.len(), MAX_TRACKED_SENDERS);
}

#[test]
fn random_bytes_never_open() {
    use rand::{Rng, SeedableRng};
    let (_, mut opener) = pair("pi-1", 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut buf = vec![0u8; MAX_DATAGRAM + 64];
    for round in 0..20_000u32 {
        let len = rng.random_range(0..buf.len());
        rng.fill(&mut buf[..len]);
        if round % 2 == 0 && len > 0 {
            buf[0] = VERSION;
        }
        assert!(opener.open(&buf[..len]).is_err());
    }
    assert_eq!(opener.drops().total(), 20_000);
    assert_eq!(opener.drops().replayed, 0);
}
