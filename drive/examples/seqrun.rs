//! Runs operations through the sequential driver and prints each outcome and call of every
//! function: `cargo run -p ftsim-drive --example seqrun -- merged 3 "bpf-link fentry f0" "klp-enable f0"`.
use ftsim_core::{op::Op, protocol::Protocol, world::World};
use ftsim_drive::{observe, seq::Sequential};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let proto = Protocol::preset(&args[0]).expect("preset");
    let n: u16 = args[1].parse().unwrap();
    let mut s = Sequential::new(&World::new(n), proto);
    s.k.trace = Some(Vec::new());
    for line in &args[2..] {
        let op: Op = line.parse().unwrap();
        let out = s.apply(&op);
        println!("{op}: {:?}", out.result);
        for e in s.k.trace.as_mut().unwrap().drain(..) {
            println!("    {:?}", e.kind);
        }
        for v in &out.violations {
            println!("  !! {v}");
        }
        for f in s.k.world().fns() {
            if let Some(c) = observe::call(&s.k, f) {
                println!("  call {f}: {}", observe::Show(&s.k, &c));
            }
        }
    }
}
