// Goridge v3 flag bits (byte 1) and stream bits (byte 10), as in docs/protocol.md §1.2–1.3.

export const Flag = {
  CONTROL: 0x01,
  CODEC_RAW: 0x04,
  CODEC_JSON: 0x08,
  CODEC_MSGPACK: 0x10,
  CODEC_GOB: 0x20,
  ERROR: 0x40,
  CODEC_PROTO: 0x80,
} as const;

export const Stream = {
  STREAM: 0x01,
  STOP: 0x02,
  PING: 0x04,
  PONG: 0x08,
} as const;
