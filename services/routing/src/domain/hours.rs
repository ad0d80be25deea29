//! Business hours (being written).
