#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatproto::testkit::check_client_ops(data));
