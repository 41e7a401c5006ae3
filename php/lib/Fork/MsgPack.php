<?php

declare(strict_types=1);

namespace Rrts\Master;

/** A tiny MessagePack codec: just the types the control channel carries. */
final class MsgPack
{
    private const MAX_DEPTH = 32;

    public static function encode(mixed $value): string
    {
        return match (true) {
            $value === null => "\xc0",
            $value === false => "\xc2",
            $value === true => "\xc3",
            \is_int($value) => self::encodeInt($value),
            \is_float($value) => "\xcb" . \pack('E', $value),
            \is_string($value) => self::encodeString($value),
            \is_array($value) && $value !== [] && \array_is_list($value) => self::encodeList($value),
            \is_array($value) => self::encodeMap($value),
            default => throw new \InvalidArgumentException('cannot encode ' . \get_debug_type($value)),
        };
    }

    /** Decode one value that must span all of $bytes; throws \UnexpectedValueException on anything else. */
    public static function decode(string $bytes): mixed
    {
        $at = 0;
        $value = self::read($bytes, $at, 0);
        if ($at !== \strlen($bytes)) {
            throw new \UnexpectedValueException(\sprintf('%d bytes after the msgpack value', \strlen($bytes) - $at));
        }

        return $value;
    }

    private static function encodeInt(int $n): string
    {
        if ($n >= 0) {
            return match (true) {
                $n <= 0x7f => \chr($n),
                $n <= 0xff => "\xcc" . \chr($n),
                $n <= 0xffff => "\xcd" . \pack('n', $n),
                $n <= 0xffffffff => "\xce" . \pack('N', $n),
                default => "\xcf" . \pack('J', $n),
            };
        }

        return match (true) {
            $n >= -32 => \chr($n & 0xff),
            $n >= -0x80 => "\xd0" . \chr($n & 0xff),
            $n >= -0x8000 => "\xd1" . \pack('n', $n & 0xffff),
            $n >= -0x80000000 => "\xd2" . \pack('N', $n & 0xffffffff),
            default => "\xd3" . \pack('J', $n),
        };
    }

    private static function encodeString(string $s): string
    {
        $n = \strlen($s);
        if (\preg_match('//u', $s) !== 1) {
            return match (true) {
                $n <= 0xff => "\xc4" . \chr($n),
                $n <= 0xffff => "\xc5" . \pack('n', $n),
                default => "\xc6" . \pack('N', $n),
            } . $s;
        }

        return match (true) {
            $n < 32 => \chr(0xa0 | $n),
            $n <= 0xff => "\xd9" . \chr($n),
            $n <= 0xffff => "\xda" . \pack('n', $n),
            default => "\xdb" . \pack('N', $n),
        } . $s;
    }

    private static function encodeList(array $list): string
    {
        $n = \count($list);
        $out = $n < 16 ? \chr(0x90 | $n) : ($n <= 0xffff ? "\xdc" . \pack('n', $n) : "\xdd" . \pack('N', $n));
        foreach ($list as $item) {
            $out .= self::encode($item);
        }

        return $out;
    }

    private static function encodeMap(array $map): string
    {
        $n = \count($map);
        $out = $n < 16 ? \chr(0x80 | $n) : ($n <= 0xffff ? "\xde" . \pack('n', $n) : "\xdf" . \pack('N', $n));
        foreach ($map as $key => $item) {
            $out .= self::encodeString((string) $key) . self::encode($item);
        }

        return $out;
    }

    private static function read(string $b, int &$at, int $depth): mixed
    {
        if ($depth > self::MAX_DEPTH) {
            throw new \UnexpectedValueException('msgpack nested too deep');
        }
        $type = \ord(self::take($b, $at, 1));

        return match (true) {
            $type <= 0x7f => $type,
            $type >= 0xe0 => $type - 0x100,
            $type <= 0x8f => self::readMap($b, $at, $type & 0x0f, $depth),
            $type <= 0x9f => self::readList($b, $at, $type & 0x0f, $depth),
            $type <= 0xbf => self::take($b, $at, $type & 0x1f),
            default => match ($type) {
                0xc0 => null,
                0xc2 => false,
                0xc3 => true,
                0xc4, 0xd9 => self::take($b, $at, self::uint($b, $at, 1)),
                0xc5, 0xda => self::take($b, $at, self::uint($b, $at, 2)),
                0xc6, 0xdb => self::take($b, $at, self::uint($b, $at, 4)),
                0xca => \unpack('G', self::take($b, $at, 4))[1],
                0xcb => \unpack('E', self::take($b, $at, 8))[1],
                0xcc => self::uint($b, $at, 1),
                0xcd => self::uint($b, $at, 2),
                0xce => self::uint($b, $at, 4),
                0xcf => self::uint($b, $at, 8),
                0xd0 => self::signed(self::uint($b, $at, 1), 8),
                0xd1 => self::signed(self::uint($b, $at, 2), 16),
                0xd2 => self::signed(self::uint($b, $at, 4), 32),
                0xd3 => \unpack('J', self::take($b, $at, 8))[1], // two's complement: PHP ints are int64
                0xd4 => self::readUndefined($b, $at),
                0xdc => self::readList($b, $at, self::uint($b, $at, 2), $depth),
                0xdd => self::readList($b, $at, self::uint($b, $at, 4), $depth),
                0xde => self::readMap($b, $at, self::uint($b, $at, 2), $depth),
                0xdf => self::readMap($b, $at, self::uint($b, $at, 4), $depth),
                default => throw new \UnexpectedValueException(\sprintf('unsupported msgpack type 0x%02x', $type)),
            },
        };
    }

    private static function readList(string $b, int &$at, int $n, int $depth): array
    {
        self::checkCount($b, $at, $n);
        $list = [];
        for ($i = 0; $i < $n; $i++) {
            $list[] = self::read($b, $at, $depth + 1);
        }

        return $list;
    }

    private static function readMap(string $b, int &$at, int $n, int $depth): array
    {
        self::checkCount($b, $at, 2 * $n);
        $map = [];
        for ($i = 0; $i < $n; $i++) {
            $key = self::read($b, $at, $depth + 1);
            if (!\is_string($key) && !\is_int($key)) {
                throw new \UnexpectedValueException('msgpack map key of type ' . \get_debug_type($key));
            }
            $map[$key] = self::read($b, $at, $depth + 1);
        }

        return $map;
    }

    /** msgpackr writes `undefined` as fixext 1 of type 0: nil here. Other extension types are not ours. */
    private static function readUndefined(string $b, int &$at): mixed
    {
        if (self::take($b, $at, 2) !== "\x00\x00") {
            throw new \UnexpectedValueException('msgpack extension types are not supported');
        }

        return null;
    }

    /** Every element takes at least one byte: refuse counts the bytes left cannot hold. */
    private static function checkCount(string $b, int $at, int $n): void
    {
        if ($n > \strlen($b) - $at) {
            $left = \strlen($b) - $at;
            throw new \UnexpectedValueException("msgpack container of $n elements in $left bytes");
        }
    }

    private static function uint(string $b, int &$at, int $size): int
    {
        $value = \unpack([1 => 'C', 2 => 'n', 4 => 'N', 8 => 'J'][$size], self::take($b, $at, $size))[1];
        if ($value < 0) {
            throw new \UnexpectedValueException('msgpack uint64 above PHP_INT_MAX');
        }

        return $value;
    }

    private static function signed(int $value, int $bits): int
    {
        return $value >= 1 << ($bits - 1) ? $value - (1 << $bits) : $value;
    }

    private static function take(string $b, int &$at, int $n): string
    {
        if ($at + $n > \strlen($b)) {
            throw new \UnexpectedValueException('msgpack value cut short');
        }
        $bytes = \substr($b, $at, $n);
        $at += $n;

        return $bytes;
    }
}
