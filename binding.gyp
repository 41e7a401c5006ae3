# node-gyp build of the native addon (src/native/rrts_native.c); `npm ci` runs it through the "install" script.
{
  "targets": [
    {
      "target_name": "rrts_native",
      "sources": ["src/native/rrts_native.c"],
      "defines": ["NAPI_VERSION=8"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-Wall", "-Wextra", "-O2"],
          "xcode_settings": { "GCC_OPTIMIZATION_LEVEL": "2", "OTHER_CFLAGS": ["-Wall", "-Wextra"] }
        },
        "Debug": {
          "cflags": ["-Wall", "-Wextra"]
        }
      }
    }
  ]
}
