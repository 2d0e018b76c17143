//! Engine-level tests of the B-tree.
