//! The custom resource types of pve-operator and nothing else.
