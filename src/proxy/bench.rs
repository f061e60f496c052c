//! Passthrough cost of the proxy (placeholder, filled in below).
