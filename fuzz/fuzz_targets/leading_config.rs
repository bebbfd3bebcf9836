//! The leading config: body and frame.
#![no_main]

use bak_core::bytes::{LeadingConfig, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bak_fuzz::record_target(
        data,
        RecordType::LeadingConfig,
        LeadingConfig::parse_body,
        LeadingConfig::encode,
    );
});
