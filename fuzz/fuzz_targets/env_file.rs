#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = dr_drill::fuzz::env_file(data) {
        panic!("{broken}");
    }
});
