//! The pve-operator controller: reconcilers, the privilege model and the command-line interface.
