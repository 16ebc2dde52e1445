//! The scaling knobs of `scale` and `surge[].min`: defaults, bounds, errors, round trip.

use std::time::Duration;

use super::*;

const FILE: &str = "services/web.toml";

fn spec(extra: &str) -> Result<ServiceSpec, crate::ConfigErrors> {
    ServiceSpec::parse(FILE, &format!("name = \"web\"\nimage = \"nginx\"\n{extra}"))
}

/// The one error of a spec with `extra`, as (line, field, message); the file is checked.
fn error(extra: &str) -> (usize, String, String) {
    let errors = spec(extra).expect_err(extra).0;
    assert_eq!(errors.len(), 1, "{extra}: {errors:?}");
    let e = &errors[0];
    assert_eq!(e.file, FILE, "{extra}");
    (e.line.unwrap_or(0), e.field.clone(), e.message.clone())
}

#[test]
fn knobs_left_out_get_the_documented_defaults() {
    let s = spec("").expect("a minimal spec");
    assert_eq!(s.scale.window, defaults::SCALE_WINDOW);
    assert_eq!(s.scale.panic, defaults::SCALE_PANIC);
    assert_eq!(s.scale.hold_queue, defaults::HOLD_QUEUE);
    assert_eq!(s.scale.hold_timeout, defaults::HOLD_TIMEOUT);
    assert_eq!(s.scale.idle, defaults::SCALE_IDLE);
    // The documented values themselves.
    assert_eq!(defaults::SCALE_WINDOW, Duration::from_secs(60));
    assert_eq!(defaults::SCALE_PANIC, 200);
    assert_eq!(defaults::HOLD_QUEUE, 100);
    assert_eq!(defaults::HOLD_TIMEOUT, Duration::from_secs(30));
    assert_eq!(defaults::SCALE_IDLE, Idle::Stop);
    let s = spec("[[surge]]\ndates = [\"2026-11-27\"]\nmax = 2\n").expect("a surge");
    assert_eq!(s.surge[0].min, None);
}

#[test]
fn knobs_set_are_read_and_written_back() {
    let s = spec(
        "[scale]\nmin = 0\nmax = 4\nwindow = \"1m30s\"\npanic = 300\nhold_queue = 7\n\
         hold_timeout = \"2m\"\nidle = \"freeze\"\n\n[[surge]]\ndates = [\"2026-11-27\"]\n\
         max = 8\nmin = 2\n",
    )
    .expect("every knob set");
    assert_eq!(s.scale.window, Duration::from_secs(90));
    assert_eq!(s.scale.panic, 300);
    assert_eq!(s.scale.hold_queue, 7);
    assert_eq!(s.scale.hold_timeout, Duration::from_secs(120));
    assert_eq!(s.scale.idle, Idle::Freeze);
    assert_eq!((s.surge[0].max, s.surge[0].min), (8, Some(2)));
    let text = s.to_toml().expect("renders");
    let again = ServiceSpec::parse(FILE, &text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    assert_eq!(again, s);
    assert!(text.contains("idle = \"freeze\""), "{text}");
}

#[test]
fn the_bounds_themselves_are_accepted() {
    for (knob, low, high) in [
        ("window", "\"6s\"", "\"1h\""),
        ("panic", "110", "1000"),
        ("hold_queue", "1", "4096"),
        ("hold_timeout", "\"1s\"", "\"10m\""),
    ] {
        for value in [low, high] {
            let line = format!("scale = {{ {knob} = {value} }}\n");
            assert!(spec(&line).is_ok(), "{line}: {:?}", spec(&line));
        }
    }
    let s = spec("[[surge]]\ndates = [\"2026-11-27\"]\nmax = 3\nmin = 3\n").expect("min = max");
    assert_eq!(s.surge[0].min, Some(3));
    let s = spec("[[surge]]\ndates = [\"2026-11-27\"]\nmax = 3\nmin = 0\n").expect("min = 0");
    assert_eq!(s.surge[0].min, Some(0));
}

#[test]
fn values_out_of_bounds_are_refused_naming_the_key_and_the_bounds() {
    for (knob, value, says) in [
        ("window", "\"5s\"", "\"5s\" is out of range: use 6s to 1h"),
        (
            "window",
            "\"1h1s\"",
            "\"1h1s\" is out of range: use 6s to 1h",
        ),
        ("panic", "109", "109 is out of range: use 110 to 1000"),
        ("panic", "1001", "1001 is out of range: use 110 to 1000"),
        ("hold_queue", "0", "0 is out of range: use 1 to 4096"),
        ("hold_queue", "4097", "4097 is out of range: use 1 to 4096"),
        (
            "hold_timeout",
            "\"999ms\"",
            "\"999ms\" is out of range: use 1s to 10m",
        ),
        (
            "hold_timeout",
            "\"11m\"",
            "\"11m\" is out of range: use 1s to 10m",
        ),
    ] {
        let extra = format!("scale = {{ {knob} = {value} }}\n");
        let (line, field, message) = error(&extra);
        assert_eq!(line, 3, "{extra}");
        assert_eq!(field, format!("scale.{knob}"), "{extra}");
        assert_eq!(message, says, "{extra}");
    }
}

#[test]
fn malformed_knobs_are_refused_naming_the_key() {
    for (extra, key, says) in [
        (
            "scale = { window = 60 }\n",
            "scale.window",
            "a duration is a string",
        ),
        (
            "scale = { hold_timeout = \"soon\" }\n",
            "scale.hold_timeout",
            "soon",
        ),
        (
            "scale = { panic = \"200%\" }\n",
            "scale.panic",
            "invalid type",
        ),
        (
            "scale = { idle = \"sleep\" }\n",
            "scale.idle",
            "unknown variant `sleep`",
        ),
        (
            "scale = { idle = \"Freeze\" }\n",
            "scale.idle",
            "expected `stop` or `freeze`",
        ),
        ("scale = { hold = 5 }\n", "scale.hold", "unknown field"),
    ] {
        let (line, field, message) = error(extra);
        assert_eq!((line, field.as_str()), (3, key), "{extra}: {message}");
        assert!(message.contains(says), "{extra}: {message}");
    }
}

#[test]
fn a_surge_min_above_its_max_or_64_is_refused() {
    let (line, field, message) =
        error("scale = { max = 2 }\n[[surge]]\ndates = [\"2026-11-27\"]\nmax = 4\nmin = 5\n");
    assert_eq!((line, field.as_str()), (7, "surge[0].min"));
    assert_eq!(message, "5 is more than this entry's max (4)");
    let (line, field, message) = error("[[surge]]\ndates = [\"2026-11-27\"]\nmax = 64\nmin = 65\n");
    assert_eq!((line, field.as_str()), (6, "surge[0].min"));
    assert_eq!(message, "65 is out of range: use 0 to 64");
    // Checked even when the entry's max is wrong too.
    let errors = spec("[[surge]]\ndates = [\"2026-11-27\"]\nmax = 0\nmin = -1\n")
        .expect_err("both wrong")
        .0;
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["surge[0].max", "surge[0].min"]);
}
