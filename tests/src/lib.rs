//! Integration tests of the bak tools live in `tests/`.
