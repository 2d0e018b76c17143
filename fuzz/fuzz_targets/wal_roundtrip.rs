#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rumdb::testing::fuzz::run("wal_roundtrip", data));
