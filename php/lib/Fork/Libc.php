<?php

declare(strict_types=1);

namespace Rrts\Master;

/** libc through FFI: where the extension is loaded and allowed for the CLI (ffi.enable=preload, the default). */
final class Libc
{
    /** The declared functions, or null when FFI is not loaded or not allowed here. */
    public static function declare(string $declarations): ?\FFI
    {
        if (!\extension_loaded('ffi')) {
            return null;
        }
        try {
            return \FFI::cdef($declarations);
        } catch (\Throwable) {
            return null; // ffi.enable=0
        }
    }
}
