//! Rates, durations, sizes and fault specs: no panic, and a parsed fault spec prints as a spec
//! that parses to the same fault.

#![no_main]

use inferload::scenario::units::{ByteSize, HumanDuration, Rate};
use inferload::serve::Fault;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(rate) = text.parse::<Rate>() {
        assert!(rate.per_second().is_finite());
        assert!(rate.per_second() > 0.0);
    }
    let _ = text.parse::<HumanDuration>();
    let _ = text.parse::<ByteSize>();
    if let Ok(fault) = text.parse::<Fault>() {
        let printed = fault.to_string();
        let again: Fault = printed.parse().expect("a printed fault spec parses");
        assert_eq!(again, fault);
    }
});
