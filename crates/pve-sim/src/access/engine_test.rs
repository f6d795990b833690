//! Behaviour tests of the engine beyond the vectors.
