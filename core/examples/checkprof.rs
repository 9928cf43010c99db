use ftsim_core::{ids::*, op::HashSel, seq::Sequential, Op, Protocol, World};
fn main() {
    let mut s = Sequential::new(&World::new(64), Protocol::MERGED);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let t0 = std::time::Instant::now();
    let mut n = 0;
    let mut oks = 0;
    for _ in 0..20000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = x;
        let f = FnId((r >> 8) as u16 % 64);
        let t = TracerId((r >> 24) as u8 % 2);
        let kind = ProgKind::ALL[(r >> 32) as usize % 3];
        let op = match r % 12 {
            0 => Op::KlpEnable(f),
            1 => Op::KlpDisable(f),
            2 | 3 => Op::BpfLink(kind, f),
            4 | 5 => Op::BpfUnlink(kind, f),
            6 => Op::KprobeArm(f),
            7 => Op::KprobeDisarm(f),
            8 => Op::TracerSet {
                tracer: t,
                which: HashSel::Filter,
                add: true,
                func: f,
            },
            9 => Op::TracerSet {
                tracer: t,
                which: HashSel::Filter,
                add: false,
                func: f,
            },
            10 => Op::TracerRegister {
                tracer: t,
                filter: vec![f],
                notrace: vec![],
            },
            _ => Op::TracerUnregister(t),
        };
        let out = s.apply(&op);
        if out.result.is_ok() {
            oks += 1;
        }
        n += 1;
    }
    println!(
        "{} ops {:?} ok={oks} per op {:?}",
        n,
        t0.elapsed(),
        t0.elapsed() / n
    );
    let mut c: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in s.k.world().fns() {
        let _ = f;
    }
    let v = ftsim_core::check::check(&s.k);
    for x in &v {
        *c.entry(x.property.id()).or_default() += 1;
    }
    println!("{:?} list={}", c, s.k.ops_list.len());
}
