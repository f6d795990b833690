//! The `pve-operator` binary.

fn main() {
    println!("pve-operator: not yet implemented");
}
