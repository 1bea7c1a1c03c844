fn main() {
    let mut buf = itoa::Buffer::new();
    let mut fbuf = ryu::Buffer::new();
    println!("{} {}", buf.format(42), fbuf.format(1.5));
    println!("{:?}", memchr::memchr(b'c', b"abc"));
}
