//! The load table in the board values: its size bound and the checks on a peer's table.

use super::tests::busy;
use super::*;
use crate::scale::MAX_LOAD_ENTRIES;

/// A full table of `MAX_LOAD_ENTRIES` entries, every field `value`, indexes ending at `last`.
fn full_table(last: u16, value: u16) -> Vec<ServiceLoad> {
    (0..MAX_LOAD_ENTRIES as u16)
        .map(|i| ServiceLoad {
            service: last - (MAX_LOAD_ENTRIES as u16 - 1) + i,
            stable: value,
            panic: value,
            peak: value,
            held: value,
        })
        .collect()
}

#[test]
fn the_worst_load_table_with_the_largest_instance_list_fits_one_datagram() {
    // The largest board of the size tests (48 instances, 24-character names) with the fullest
    // table a board sends: the last indexes of MAX_RECORDS services, every value the largest a
    // board sends, the largest bucket. It must fit the state room of a board with the longest
    // name, with the largest stamp (as `check_state_size` measures it).
    let mut values = busy(16, 3, 24);
    values.load_bucket = u32::MAX;
    let last = crate::desired::admit::MAX_RECORDS as u16 - 1;
    values.load = full_table(last, crate::scale::MAX_LOAD_VALUE);
    let state = crate::gossip::wire::StateMessage {
        generation: u64::MAX,
        version: u64::MAX,
        values: values.clone(),
    };
    let room = crate::sealed::MAX_DATAGRAM - crate::sealed::OVERHEAD - crate::sealed::MAX_NAME_LEN;
    let len = state.encode().len();
    assert!(len <= room, "{len} bytes of {room}");
    assert_eq!(BoardValues::decode(&values.encode()), Ok(values.clone()));
    // The largest values a peer could send still decode (within MAX_VALUES_BYTES).
    values.load = full_table(u16::MAX, u16::MAX);
    let len = values.encode().len();
    assert!(len <= MAX_VALUES_BYTES, "{len} bytes of {MAX_VALUES_BYTES}");
    assert_eq!(BoardValues::decode(&values.encode()), Ok(values));
}

#[test]
fn a_load_table_round_trips() {
    let mut values = busy(2, 1, 4);
    values.load_bucket = 889_000_000;
    values.load = vec![
        ServiceLoad {
            service: 0,
            stable: 3,
            panic: 9,
            peak: 12,
            held: 0,
        },
        ServiceLoad {
            service: 7,
            held: 4,
            ..ServiceLoad::default()
        },
    ];
    assert_eq!(BoardValues::decode(&values.encode()), Ok(values));
}

#[test]
fn a_longer_load_table_is_refused() {
    let mut values = busy(1, 1, 3);
    values.load = full_table(100, 1);
    values.load.insert(
        0,
        ServiceLoad {
            service: 0,
            peak: 1,
            ..ServiceLoad::default()
        },
    );
    let err = BoardValues::decode(&values.encode()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "board values carry a load table of 33 entries, more than the 32 allowed"
    );
}

#[test]
fn a_load_table_out_of_order_or_with_a_service_twice_is_refused() {
    let at = |service| ServiceLoad {
        service,
        peak: 1,
        ..ServiceLoad::default()
    };
    for (load, message) in [
        (
            vec![at(3), at(2)],
            "board values carry a load table whose service index 2 follows 3: indexes must increase",
        ),
        (
            vec![at(1), at(4), at(4)],
            "board values carry a load table whose service index 4 follows 4: indexes must increase",
        ),
    ] {
        let mut values = busy(1, 1, 3);
        values.load = load;
        let err = BoardValues::decode(&values.encode()).unwrap_err();
        assert!(matches!(err, ValuesError::Load(_)), "{err}");
        assert_eq!(err.to_string(), message);
    }
    let mut values = busy(1, 1, 3);
    values.load = vec![at(0), at(1), at(65535)];
    assert_eq!(BoardValues::decode(&values.encode()), Ok(values));
}
