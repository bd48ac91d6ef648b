//! V2 REST inference requests as `serve` reads them (JSON, and the binary tensor extension with
//! a JSON header of a given length) and model metadata replies as the preflight reads them:
//! malformed input gives an error, never a panic.

#![no_main]

use inferload::protocol::encode::from_rest;
use inferload::protocol::metadata::ModelMetadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = inferload::protocol::check_rest_request(data);
    let _ = ModelMetadata::from_json(data);
    // The first two bytes choose the JSON header length of a binary request.
    if let [high, low, body @ ..] = data {
        let header_length = usize::from(u16::from_be_bytes([*high, *low]));
        let _ = from_rest(body, Some(header_length));
    }
});
