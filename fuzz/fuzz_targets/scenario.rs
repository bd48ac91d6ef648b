//! Scenario text: parsing and plan building return errors that name the file, never panic.

#![no_main]

use std::path::Path;

use inferload::scenario::{Overrides, RunPlan, Scenario};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent/scenario.toml");
    let error = match Scenario::from_toml(text, path) {
        Ok(scenario) => match RunPlan::build(scenario, path, &Overrides::default()) {
            Ok(_) => return,
            Err(error) => error,
        },
        Err(error) => error,
    };
    assert!(error.to_string().contains("scenario.toml"), "{error}");
});
