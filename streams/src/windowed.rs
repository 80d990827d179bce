//! Windowed keys: a key together with the window it was aggregated in.
