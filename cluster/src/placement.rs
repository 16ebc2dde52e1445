//! Deterministic placement of service instances on boards.
