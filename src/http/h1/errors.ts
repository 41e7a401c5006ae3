// Why an HTTP/1 request was refused by the parser: a stable code and the status Go's net/http server answers with
// (H1ParseError in src/errors.ts carries both and a message). The connection is answered with that status and closed.

/** Each code and the status Go's server sends for it (net/http server.go's readRequest and conn.serve). */
export const H1_ERROR_STATUS = {
  /** The request line is not `METHOD SP target SP HTTP/x.y` (Go: "malformed HTTP request"). */
  INVALID_REQUEST_LINE: 400,
  /** `METHOD SP target` with no version: an HTTP/0.9 request, which Go does not serve. */
  HTTP_09: 400,
  /** The version is not `HTTP/d.d` (Go: "malformed HTTP version"). */
  INVALID_VERSION: 400,
  /** A version Go parses but does not serve on HTTP/1: HTTP/0.x, HTTP/2.x but the preface, HTTP/3.x ... */
  UNSUPPORTED_VERSION: 505,
  /** `PRI * HTTP/2.0`: an HTTP/2 client with prior knowledge on an HTTP/1 port (h2c routing is the caller's). */
  H2_PREFACE: 505,
  /** The method is not a token (Go: "invalid method"). */
  INVALID_METHOD: 400,
  /** The request-target fails url.ParseRequestURI (CTL bytes, bad %-escape, bad host, not /, *, or absolute). */
  INVALID_TARGET: 400,
  /** A header line with no colon, an empty or non-token name, or a line starting with white space first. */
  INVALID_HEADER_NAME: 400,
  /** A header value with a control byte (NUL, CR, DEL, ...: Go's validHeaderValueByte). */
  INVALID_HEADER_VALUE: 400,
  /** A header continued on the next line (obs-fold): refused as RFC 9112 §5.2 allows (Go folds it). */
  OBS_FOLD: 400,
  /** A line ending in CR not followed by LF inside the header section. */
  BARE_CR: 400,
  /** The header section (request line included) is over the limit: Go's 431. */
  HEADERS_TOO_LARGE: 431,
  /** More header lines than the configured maximum. */
  TOO_MANY_HEADERS: 431,
  /** HTTP/1.1 without Host (Go: "missing required Host header"). */
  MISSING_HOST: 400,
  /** More than one Host line (Go: "too many Host headers"). */
  DUPLICATE_HOST: 400,
  /** A Host value with a byte Go's httpguts.ValidHostHeader refuses. */
  INVALID_HOST: 400,
  /** Content-Length empty or not decimal digits (Go's parseContentLength). */
  INVALID_CONTENT_LENGTH: 400,
  /** Several Content-Length lines with different values (Go: "cannot contain multiple Content-Length headers"). */
  CONFLICTING_CONTENT_LENGTH: 400,
  /** A Transfer-Encoding other than one `chunked` (Go's unsupportedTEError). */
  UNSUPPORTED_TRANSFER_ENCODING: 501,
  /** A chunk-size line that is empty, not hex, too large, or does not end in CRLF (Go's readChunkLine). */
  INVALID_CHUNK_SIZE: 400,
  /** A chunk-size line of 4096 bytes or more: Go's maxLineLength, which bounds chunk extensions. */
  CHUNK_LINE_TOO_LONG: 400,
  /** Chunk data not followed by CRLF (Go: "malformed chunked encoding"). */
  INVALID_CHUNK_END: 400,
  /** Far more chunk framing than data (Go: "chunked encoding contains too much non-data"). */
  CHUNK_OVERHEAD: 400,
  /** A malformed or oversized trailer section after the last chunk. */
  INVALID_TRAILER: 400,
} as const;

export type H1ErrorCode = keyof typeof H1_ERROR_STATUS;
