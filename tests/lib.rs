//! Integration tests live in `emulator/`; this crate has no library code.
