//! Property tests: round trips that upstream guarantees, and no panics or input mutation anywhere.
