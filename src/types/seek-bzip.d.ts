// The parts of seek-bzip (no types of its own) that the streaming bzip2 decoder uses.
declare module "seek-bzip" {
  class Stream {
    readByte(): number
    writeByte(b: number): void
  }
  class Bunzip {
    constructor(input: Stream, output: Stream)
    static Stream: typeof Stream
    readonly reader: { read(bits: number): number }
    readonly streamCRC: number
    _init_block(): boolean
    _read_bunzip(): number
  }
  export default Bunzip
}
