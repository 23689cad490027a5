fn main() {
    static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/slim-recorder"));
    println!("{}", OBJECT.len());
}
